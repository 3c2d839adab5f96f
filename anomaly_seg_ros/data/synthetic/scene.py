"""One synthetic driving frame: street, objects in depth order, camera effects.

Each frame is a pure function of ``(seed, split, index)`` (:func:`render_frame`), so frames can
be generated independently, in any order, and resumed. Train/val and anomaly-test frames come
from the same scene distribution; only the anomaly split adds anomaly objects.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import cv2
import numpy as np

from .anomalies import ANOMALY_KINDS, draw_anomaly
from .canvas import Canvas
from .props import VOID, VOID_KINDS, draw_bush, draw_pole, draw_tree, draw_void_object
from .shapes import Footprint
from .street import Street, draw_street, sample_street
from .textures import Textures, pick
from .things import CAR, PERSON, draw_car, draw_person
from .view import View

__all__ = ['SPLITS', 'SyntheticFrame', 'frame_rng', 'render_frame']

SPLITS = ('train', 'val', 'anomaly_test')
_SPLIT_CODES = {'train': 1, 'val': 2, 'anomaly_test': 3}
_MAX_ATTEMPTS = 8

Draw = Callable[[Canvas], int]


class SyntheticFrame(NamedTuple):
    """A rendered frame.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        label_ids: (H, W) uint8 Cityscapes labelIds: classes of ``labels.SYNTHETIC``, 5 on void
            objects, 0 on anomaly objects (anomaly split only).
        instance_ids: (H, W) int32, ``labelId*1000+k`` on cars and people, else the labelId.
        anomaly: (H, W) uint8, 1 on anomaly objects, 255 on void objects, 0 elsewhere.
    """

    image: np.ndarray
    label_ids: np.ndarray
    instance_ids: np.ndarray
    anomaly: np.ndarray


def frame_rng(seed: int, split: str, index: int, attempt: int = 0) -> np.random.Generator:
    """The random generator of one frame, derived from ``(seed, split, index, attempt)`` only."""
    if split not in _SPLIT_CODES:
        raise ValueError(f'unknown synthetic split {split!r}; choose one of {", ".join(SPLITS)}')
    return np.random.default_rng([int(seed), _SPLIT_CODES[split], int(index), int(attempt)])


def render_frame(seed: int, split: str, index: int, width: int = 512, height: int = 256) -> SyntheticFrame:
    """Render frame ``index`` of ``split`` for ``seed`` at ``width`` x ``height`` (deterministic).

    Anomaly-split frames are re-drawn (with the next attempt number) until their anomaly objects
    cover a visible area, so every anomaly frame has positives.
    """
    if width < 32 or height < 16:
        raise ValueError(f'synthetic frames need at least 32x16 pixels, got {width}x{height}')
    with_anomalies = split == 'anomaly_test'
    min_pixels = max(24, int(0.0008 * width * height))
    frame = None
    for attempt in range(_MAX_ATTEMPTS):
        frame = _render(frame_rng(seed, split, index, attempt), width, height, with_anomalies)
        if not with_anomalies or np.count_nonzero(frame.anomaly == 1) >= min_pixels:
            break
    assert frame is not None
    return frame


def _render(rng: np.random.Generator, width: int, height: int, with_anomalies: bool) -> SyntheticFrame:
    view, street = sample_street(rng, width, height)
    tex = Textures(rng, height, width)
    canvas = Canvas(width, height)
    draw_street(canvas, view, street, tex, rng)
    items: list[tuple[float, Draw]] = []
    taken: list[Footprint] = []
    if with_anomalies:
        _plan_anomalies(rng, view, street, tex, items, taken)
    _plan_objects(rng, view, street, tex, items, taken)
    for _, draw in sorted(items, key=lambda item: -item[0]):
        draw(canvas)
    label = canvas.label
    label[canvas.anomaly] = 0
    instance = np.where(canvas.instance > 0, canvas.instance, label.astype(np.int32))
    anomaly = np.zeros(label.shape, dtype=np.uint8)
    anomaly[label == VOID] = 255
    anomaly[canvas.anomaly] = 1
    return SyntheticFrame(_camera_effects(canvas.image, rng), label, instance, anomaly)


def _place(rng: np.random.Generator, taken: list[Footprint], sample: Callable[[], tuple[float, float]],
           half_width: float, length: float, tries: int = 10) -> tuple[float, float] | None:
    """Sample ``(u, z)`` until its footprint is free; None after ``tries`` failures."""
    for _ in range(tries):
        u, z = sample()
        fp = Footprint(u - half_width, u + half_width, z, z + length)
        if not any(fp.overlaps(other) for other in taken):
            taken.append(fp)
            return u, z
    return None


def _plan_anomalies(rng: np.random.Generator, view: View, street: Street, tex: Textures,
                    items: list[tuple[float, Draw]], taken: list[Footprint]) -> None:
    z_near = max(0.9 * view.z_bottom, 2.0)
    for _ in range(int(rng.integers(1, 4))):
        kind = str(pick(rng, ANOMALY_KINDS))
        if rng.random() < 0.65:
            def sample(r=rng):
                return float(r.uniform(0.4, street.road_width - 0.4)), float(z_near + r.uniform(0, 1) ** 1.3 * 40)
        else:
            side = street.sides[int(rng.integers(2))]

            def sample(r=rng, side=side):
                return side.u(float(r.uniform(0.3, side.facade_d + 1.5))), float(z_near + r.uniform(0, 1) ** 1.3 * 30)
        spot = _place(rng, taken, sample, 0.8, 1.5)
        if spot is not None:
            items.append((spot[1], _bind(draw_anomaly, view, street, tex, rng, spot, kind)))


def _plan_objects(rng: np.random.Generator, view: View, street: Street, tex: Textures,
                  items: list[tuple[float, Draw]], taken: list[Footprint]) -> None:
    lanes, lane_w, road_w = street.lanes, street.lane_width, street.road_width
    camera_lane = int(view.camera_u // lane_w)
    z_near = max(0.9 * view.z_bottom, 2.0)
    # Void objects (labelId 5): the paper's source of training anomalies.
    for _ in range(int(rng.integers(2, 6)) if rng.random() < 0.92 else 0):
        kind = str(pick(rng, VOID_KINDS))
        where = rng.random()
        side = street.sides[int(rng.integers(2))]

        def sample(r=rng, side=side, where=where):
            z = float(z_near + r.uniform(0, 1) ** 1.6 * 35)
            if where < 0.55 and side.sidewalk > 0:
                lo, hi = side.sidewalk_range
                return side.u(float(r.uniform(lo + 0.3, hi))), z
            if where < 0.8:
                return side.u(-float(r.uniform(0.3, 1.5))), z
            return float(r.uniform(0.5, road_w - 0.5)), z
        spot = _place(rng, taken, sample, 0.6, 1.0)
        if spot is not None:
            items.append((spot[1], _bind(draw_void_object, view, street, tex, rng, spot, kind)))
    # Cars in lanes (oncoming on the left half) and parked at the road edges.
    car_ids = iter(range(CAR * 1000, CAR * 1000 + 1000))
    for _ in range(int(rng.integers(1, 10))):
        if rng.random() < 0.7:
            lane = int(rng.integers(lanes))
            zmin = 8.0 if lane == camera_lane else max(0.6 * view.z_bottom, 2.5)
            away = lane >= lanes // 2

            def sample(r=rng, lane=lane, zmin=zmin):
                return (lane + 0.5) * lane_w + float(r.normal(0, 0.2)), float(zmin + r.uniform(0, 1) ** 1.6 * 75)
        else:
            side = street.sides[int(rng.integers(2))]
            away = bool(rng.random() < 0.5)

            def sample(r=rng, side=side):
                return side.u(-1.1), float(3.0 + r.uniform(0, 1) ** 1.3 * 60)
        spot = _place(rng, taken, sample, 1.0, 5.0)
        if spot is not None:
            items.append((spot[1], _bind(draw_car, view, street, tex, rng, spot, away, next(car_ids))))
    # People on the sidewalks, a few crossing the road.
    person_ids = iter(range(PERSON * 1000, PERSON * 1000 + 1000))
    for _ in range(int(rng.integers(0, 8))):
        side = street.sides[int(rng.integers(2))]
        if rng.random() < 0.15 or side.sidewalk <= 0:
            def sample(r=rng):
                return float(r.uniform(0.5, road_w - 0.5)), float(r.uniform(max(z_near, 4.0), 40.0))
        else:
            def sample(r=rng, side=side):
                lo, hi = side.sidewalk_range
                return side.u(float(r.uniform(lo + 0.3, hi + 1.0))), float(z_near + r.uniform(0, 1) ** 1.2 * 50)
        spot = _place(rng, taken, sample, 0.3, 0.5)
        if spot is not None:
            items.append((spot[1], _bind(draw_person, view, street, tex, rng, spot, next(person_ids))))
    for side in street.sides:
        _plan_side(rng, view, street, tex, side, items, taken)


def _plan_side(rng: np.random.Generator, view: View, street: Street, tex: Textures, side,
               items: list[tuple[float, Draw]], taken: list[Footprint]) -> None:
    toward_road = -float(side.sign)
    if side.sidewalk > 0:
        z = float(rng.uniform(2.0, 15.0))
        while z < 110:
            u = side.u(side.verge + float(rng.uniform(0.3, 0.6)))
            taken.append(Footprint(u - 0.2, u + 0.2, z, z + 0.3))
            items.append((z, _bind(draw_pole, view, street, tex, rng, (u, z), toward_road)))
            z += float(rng.uniform(12, 35))
    if side.urban:
        if side.sidewalk > 0 and rng.random() < 0.4:
            z = float(rng.uniform(2.0, 10.0))
            while z < 90:
                spot = _place(rng, taken, lambda z=z: (side.u(side.facade_d - 0.8), z), 0.3, 0.5, tries=1)
                if spot is not None:
                    items.append((z, _bind(draw_tree, view, street, tex, rng, spot)))
                z += float(rng.uniform(8, 16))
        return
    if rng.random() < 0.5:
        z0 = float(rng.uniform(2.0, 10.0))
        items.append((z0, _bind(draw_bush, view, street, tex, rng, (side.u(side.facade_d + 1.0), z0),
                                float(rng.uniform(5, 30)))))
    for _ in range(int(rng.integers(4, 13))):
        u = side.u(side.facade_d + float(rng.uniform(1.5, 14.0)))
        z = float(rng.uniform(3.0, 90.0))
        items.append((z, _bind(draw_tree, view, street, tex, rng, (u, z))))


def _bind(fn: Callable[..., int], view: View, street: Street, tex: Textures, rng: np.random.Generator,
          spot: tuple[float, float], *extra) -> Draw:
    """A draw call with its own random stream, so drawing order does not change any object."""
    child = np.random.default_rng(rng.integers(0, 2**63 - 1))
    u, z = spot

    def draw(canvas: Canvas) -> int:
        return fn(canvas, view, street.light, tex, child, u, z, *extra)
    return draw


def _camera_effects(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exposure, white balance, vignetting, optics blur, sensor noise, gamma -> HxWx3 uint8."""
    h, w = image.shape[:2]
    gain = np.float32(rng.uniform(0.8, 1.2)) * rng.normal(1.0, 0.04, 3).astype(np.float32)
    image = image * gain
    vignette = float(rng.uniform(0.0, 0.35))
    if vignette > 0.02:
        yy = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
        xx = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
        image *= (1 - vignette * 0.5 * (xx * xx + yy * yy))[:, :, None]
    if rng.random() < 0.6:
        image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.4, 0.9)))
    image += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(rng.uniform(1.0, 5.0))
    out = np.clip(image, 0, 255).astype(np.uint8)
    gamma = float(rng.uniform(0.85, 1.15))
    lut = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma + 0.5, 0, 255).astype(np.uint8)
    return cv2.LUT(out, lut)
