"""Pasting real object cutouts into road frames where an obstacle would stand (outlier exposure).

One call places 1-3 objects of an :class:`~.objects.ObjectBank` on the drivable surface of a frame
(road, sidewalk: the pixels of its semantic map), the base of each object on that surface. The size
follows the perspective of a flat road: an object of height ``r`` (relative to the camera's height
above the road) standing ``d`` rows below the horizon is ``r * d`` rows high, so objects near the
horizon are a few pixels and near ones large; ``r`` is drawn log-uniformly over a wide range. Each
object may be flipped, has its brightness and colour balance moved towards the frame around it,
feathered alpha edges and, sometimes, a soft contact shadow under its base. Far objects are pasted
first, so nearer ones occlude them.

Everything is drawn from the ``numpy`` generator given, so a seed gives the same frame. Labels: the
pasted pixels (alpha > 0.5) are anomalies; the feathered band (alpha in (0.1, 0.5]) is ignored.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from ..labels import IGNORE_INDEX, LabelSet
from .objects import ObjectBank

__all__ = [
    'SURFACE_CLASS_NAMES',
    'VOID_POLICIES',
    'PasteResult',
    'PasteSettings',
    'Placement',
    'paste_objects',
    'pasted_anomaly_labels',
    'surface_mask',
    'write_pasted_set',
    'write_sheet',
]

# Classes an obstacle stands on (Cityscapes and CamVid names, compared case-insensitively).
SURFACE_CLASS_NAMES = ('road', 'sidewalk', 'pavement', 'parking')
# What void pixels (unlabelled in the ground truth) become in the labels: ignored, or anomalies (the
# paper's source B, which on CamVid teaches "object borders are anomalies").
VOID_POLICIES = ('ignore', 'anomaly')
_ANOMALY_ALPHA = 0.5
_IGNORE_ALPHA = 0.1


@dataclass(frozen=True)
class PasteSettings:
    """How objects are placed; sizes are fractions of the frame height, so they hold at any resolution."""

    count: tuple[int, int] = (1, 3)                     # objects per frame, inclusive
    relative_height: tuple[float, float] = (0.12, 2.0)  # object height / camera height, log-uniform
    min_height: float = 0.02                            # smallest object (5 px of a 256-row frame)
    max_height: float = 0.55
    flip_probability: float = 0.5
    color_match: tuple[float, float] = (0.3, 0.8)       # strength of the move towards the frame's colours
    shadow_probability: float = 0.5
    horizon_quantile: float = 0.02                      # of the surface rows: where the road ends


class Placement(NamedTuple):
    """One pasted object: bank index, category, base point (x, y), size (h, w) in pixels, flipped."""

    index: int
    category: str
    x: int
    y: int
    height: int
    width: int
    flipped: bool


class PasteResult(NamedTuple):
    """image: HxWx3 uint8 RGB with the objects; alpha: HxW float32 coverage in [0, 1]; placements."""

    image: np.ndarray
    alpha: np.ndarray
    placements: list[Placement]

    @property
    def anomaly(self) -> np.ndarray:
        return self.alpha > _ANOMALY_ALPHA

    @property
    def uncertain(self) -> np.ndarray:
        """The feathered band: neither clearly object nor clearly background."""
        return (self.alpha > _IGNORE_ALPHA) & ~self.anomaly


def surface_mask(semantic: np.ndarray, label_set: LabelSet) -> np.ndarray:
    """HxW bool: pixels of the label set's surface classes (:data:`SURFACE_CLASS_NAMES`)."""
    ids = [i for i, name in enumerate(label_set.class_names) if name.lower() in SURFACE_CLASS_NAMES]
    return np.isin(semantic, ids)


def _resize_premultiplied(rgba: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(HxWx3 float32 RGB, HxW float32 alpha) of a cutout at (height, width), resized with premultiplied
    alpha so the black outside the object does not bleed into its edges."""
    alpha = rgba[..., 3].astype(np.float32) / 255
    rgb = rgba[..., :3].astype(np.float32) * alpha[..., None]
    shrinking = height < rgba.shape[0]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    rgb = cv2.resize(rgb, (width, height), interpolation=interpolation)
    alpha = cv2.resize(alpha, (width, height), interpolation=interpolation)
    rgb = rgb / np.maximum(alpha, 1e-3)[..., None]
    return np.clip(rgb, 0, 255), np.clip(alpha, 0, 1)


def _feather(alpha: np.ndarray, height: int) -> np.ndarray:
    """Soften polygon edges: a blur of about 1% of the object's height (at least 0.6 px)."""
    sigma = max(0.6, 0.012 * height)
    return cv2.GaussianBlur(alpha, (0, 0), sigma)


def _match_colors(rgb: np.ndarray, alpha: np.ndarray, surround: np.ndarray, strength: float) -> np.ndarray:
    """Move the object's brightness and colour balance towards ``surround`` (Nx3 RGB) by ``strength``."""
    weight = alpha.sum()
    if weight < 1 or surround.size == 0:
        return rgb
    object_mean = (rgb * alpha[..., None]).reshape(-1, 3).sum(0) / weight + 1.0
    frame_mean = surround.reshape(-1, 3).astype(np.float32).mean(0) + 1.0
    brightness = float(np.clip(frame_mean.mean() / object_mean.mean(), 0.4, 2.5))
    balance = (frame_mean / frame_mean.mean()) / (object_mean / object_mean.mean())
    gain = (1 - strength) + strength * brightness * (1 + 0.5 * (balance - 1))
    return np.clip(rgb * gain, 0, 255)


def _shadow(shape: tuple[int, int], x: int, y: int, width: int, strength: float) -> np.ndarray:
    """HxW float32 darkening factor in [1 - strength, 1]: a blurred ellipse under the base point."""
    mask = np.zeros(shape, dtype=np.float32)
    axes = (max(1, int(0.55 * width)), max(1, int(0.12 * width)))
    cv2.ellipse(mask, (int(x), int(y)), axes, 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(0.8, 0.15 * width))
    return 1 - strength * mask


def _horizon(surface: np.ndarray, quantile: float) -> float:
    rows = np.nonzero(surface)[0]
    if rows.size == 0:
        return 0.4 * surface.shape[0]
    return float(np.quantile(rows, quantile))


def paste_objects(image: np.ndarray, surface: np.ndarray, bank: ObjectBank, rng: np.random.Generator,
                  settings: PasteSettings | None = None) -> PasteResult:
    """Paste objects of ``bank`` onto the ``surface`` pixels of ``image`` (see the module docstring).

    Args:
        image: HxWx3 uint8 RGB.
        surface: HxW bool, where a base may stand (:func:`surface_mask`); a frame without surface gets its
            objects in its lower half.
        rng: draws everything (objects, places, sizes, flips, colours, shadows).
    Returns:
        The frame with the objects, their coverage and the placements.
    """
    settings = settings or PasteSettings()
    height, width = image.shape[:2]
    if surface.shape != (height, width):
        raise ValueError(f'surface {surface.shape} and image {image.shape[:2]} differ in size')
    horizon = _horizon(surface, settings.horizon_quantile)
    rows, cols = np.nonzero(surface & (np.arange(height)[:, None] > horizon + 1))
    if rows.size == 0:  # no road seen: anywhere in the lower half
        rows, cols = np.nonzero(np.ones((height, width), bool) & (np.arange(height)[:, None] >= height // 2))
        horizon = 0.4 * height
    count = int(rng.integers(settings.count[0], settings.count[1] + 1))
    draws = []
    for _ in range(count):
        pick = int(rng.integers(rows.size))
        y, x = int(rows[pick]), int(cols[pick])
        low, high = np.log(settings.relative_height[0]), np.log(settings.relative_height[1])
        relative = math.exp(float(rng.uniform(low, high)))
        object_height = relative * max(y - horizon, 1.0)
        object_height = int(round(np.clip(object_height, settings.min_height * height, settings.max_height * height)))
        draws.append((y, x, max(object_height, 2), int(rng.integers(len(bank))),
                      bool(rng.random() < settings.flip_probability),
                      float(rng.uniform(*settings.color_match)),
                      float(rng.uniform(0.25, 0.5)) if rng.random() < settings.shadow_probability else 0.0))
    out = image.astype(np.float32)
    coverage = np.zeros((height, width), dtype=np.float32)
    placements = []
    for y, x, object_height, index, flipped, strength, shadow in sorted(draws):  # far (small y) first
        rgba = bank.rgba(index)
        object_width = max(2, int(round(object_height * rgba.shape[1] / rgba.shape[0])))
        rgb, alpha = _resize_premultiplied(rgba, object_height, object_width)
        if flipped:
            rgb, alpha = rgb[:, ::-1], alpha[:, ::-1]
        alpha = _feather(alpha, object_height)
        top, left = y - object_height + 1, x - object_width // 2
        # The part of the object inside the frame.
        t0, l0 = max(top, 0), max(left, 0)
        t1, l1 = min(top + object_height, height), min(left + object_width, width)
        if t1 <= t0 or l1 <= l0:
            continue
        rgb = rgb[t0 - top:t1 - top, l0 - left:l1 - left]
        alpha = alpha[t0 - top:t1 - top, l0 - left:l1 - left]
        margin = object_height
        surround = image[max(0, t0 - margin):min(height, t1 + margin), max(0, l0 - margin):min(width, l1 + margin)]
        rgb = _match_colors(rgb, alpha, surround, strength)
        if shadow:
            out *= _shadow((height, width), x, y, object_width, shadow)[..., None]
        region = out[t0:t1, l0:l1]
        out[t0:t1, l0:l1] = region * (1 - alpha[..., None]) + rgb * alpha[..., None]
        coverage[t0:t1, l0:l1] = np.maximum(coverage[t0:t1, l0:l1], alpha)
        placements.append(Placement(index, bank.cutouts[index].category, x, y, object_height, object_width, flipped))
    return PasteResult(np.clip(out + 0.5, 0, 255).astype(np.uint8), coverage, placements)


def pasted_anomaly_labels(result: PasteResult, void: np.ndarray | None = None,
                          void_policy: str = 'ignore') -> np.ndarray:
    """HxW uint8 labels of a pasted frame: 1 on the objects, 255 on their feathered band and (``void_policy``
    'ignore') on the ground truth's void pixels, 1 on void with 'anomaly', else 0."""
    if void_policy not in VOID_POLICIES:
        raise ValueError(f'unknown void policy {void_policy!r}; policies: {VOID_POLICIES}')
    labels = np.zeros(result.alpha.shape, dtype=np.uint8)
    if void is not None:
        labels[void] = IGNORE_INDEX if void_policy == 'ignore' else 1
    labels[result.uncertain] = IGNORE_INDEX
    labels[result.anomaly] = 1
    return labels


def write_pasted_set(dataset: object, bank: ObjectBank, out: str | Path, seed: int,
                     settings: PasteSettings | None = None, void_policy: str = 'ignore',
                     progress: Callable = lambda iterable, **_: iterable) -> Path:
    """Write every frame of ``dataset`` (a reader with semantic labels) with objects of ``bank`` pasted, as a
    ``folder`` anomaly set: ``out/images/<name>.png``, ``out/labels/<name>.png`` (0/1/255, see
    :func:`pasted_anomaly_labels`) and ``out/pasted.json`` (settings, objects, placements per frame).
    Frame ``i`` draws from ``(seed, i)``, so the set is the same on every machine."""
    out = Path(out)
    settings = settings or PasteSettings()
    label_set = getattr(dataset, 'label_set', None)
    if label_set is None:
        raise ValueError('pasting needs a dataset with semantic labels (where the road is)')
    partial = out.with_name(out.name + '.partial')
    (partial / 'images').mkdir(parents=True, exist_ok=True)
    (partial / 'labels').mkdir(parents=True, exist_ok=True)
    frames = {}
    for index in progress(range(len(dataset)), desc=f'paste {bank.part} objects', unit='frame'):  # type: ignore[arg-type]
        sample = dataset[index]  # type: ignore[index]
        if sample.semantic is None:
            raise ValueError(f'frame {sample.name} has no semantic labels: cannot tell where the road is')
        result = paste_objects(sample.image, surface_mask(sample.semantic, label_set), bank,
                               np.random.default_rng([int(seed), index]), settings)
        labels = pasted_anomaly_labels(result, sample.void, void_policy)
        cv2.imwrite(str(partial / 'images' / f'{sample.name}.png'), cv2.cvtColor(result.image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(partial / 'labels' / f'{sample.name}.png'), labels)
        frames[sample.name] = [p._asdict() for p in result.placements]
    description = {'seed': seed, 'settings': asdict(settings), 'void_policy': void_policy,
                   'source': {'kind': type(dataset).__name__, 'root': str(getattr(dataset, 'root', '')),
                              'split': getattr(dataset, 'split', None)},
                   'objects': bank.describe(), 'frames': frames}
    (partial / 'pasted.json').write_text(json.dumps(description, indent=1))
    if out.exists():
        import shutil
        shutil.rmtree(out)
    partial.rename(out)
    return out


def write_sheet(folder: str | Path, count: int = 12, columns: int = 3, width: int = 480) -> Path:
    """``folder/sheet.jpg``: the first ``count`` frames of a pasted set, each with its labels drawn over it
    (objects red, ignored pixels grey), ``columns`` frames a row, each ``width`` pixels wide."""
    folder = Path(folder)
    names = sorted(p.stem for p in (folder / 'images').glob('*.png'))[:count]
    if not names:
        raise ValueError(f'no image in {folder / "images"}')
    tiles = []
    for name in names:
        image = cv2.imread(str(folder / 'images' / f'{name}.png'))
        labels = cv2.imread(str(folder / 'labels' / f'{name}.png'), cv2.IMREAD_GRAYSCALE)
        marked = image.copy()
        marked[labels == IGNORE_INDEX] = (marked[labels == IGNORE_INDEX] * 0.5 + 64).astype(np.uint8)
        marked[labels == 1] = (marked[labels == 1] * 0.4 + np.array([0, 0, 153])).astype(np.uint8)
        pair = np.concatenate([image, marked], axis=0)
        scale = width / pair.shape[1]
        tiles.append(cv2.resize(pair, (width, int(round(pair.shape[0] * scale))), interpolation=cv2.INTER_AREA))
    height = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, height - t.shape[0]), (0, 0), (0, 0))) for t in tiles]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % columns)
    rows = [np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)]
    path = folder / 'sheet.jpg'
    cv2.imwrite(str(path), np.concatenate(rows, axis=0), [cv2.IMWRITE_JPEG_QUALITY, 88])
    return path
