"""Pictures of the pipeline's outputs: label colors, heatmaps, overlays, contact sheets. numpy and OpenCV only.

Used by the node (colorized topics), the demo, evaluation and the README figures, so a map looks
the same everywhere. Colormaps and label palettes are 256-entry RGB tables, applied to 2-D maps by
OpenCV's table lookup (``cv2.applyColorMap`` with the table as a user colormap).
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import cv2
import numpy as np

from .labels import LabelSet

__all__ = [
    'COLORMAPS',
    'colorize_heatmap',
    'colorize_labels',
    'contact_sheet',
    'label_tile',
    'overlay',
]

COLORMAPS: dict[str, int] = {
    'turbo': cv2.COLORMAP_TURBO,
    'jet': cv2.COLORMAP_JET,
    'inferno': cv2.COLORMAP_INFERNO,
    'magma': cv2.COLORMAP_MAGMA,
    'plasma': cv2.COLORMAP_PLASMA,
    'viridis': cv2.COLORMAP_VIRIDIS,
    'hot': cv2.COLORMAP_HOT,
    'gray': -1,
}


@cache
def _lut(colormap: str) -> np.ndarray:
    """(256, 3) uint8 RGB lookup table of a named colormap."""
    if colormap not in COLORMAPS:
        raise ValueError(f'unknown colormap {colormap!r}; choose one of {", ".join(COLORMAPS)}')
    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    if COLORMAPS[colormap] < 0:
        return np.repeat(ramp, 3, axis=1)
    bgr = cv2.applyColorMap(ramp, COLORMAPS[colormap]).reshape(256, 3)
    lut = np.ascontiguousarray(bgr[:, ::-1])
    lut.setflags(write=False)
    return lut


def colorize_heatmap(values: np.ndarray, colormap: str = 'turbo',
                     value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """HxW float map -> HxWx3 uint8 RGB; values outside ``value_range`` saturate."""
    low, high = float(value_range[0]), float(value_range[1])
    if not high > low:
        raise ValueError(f'value_range must have high > low, got {value_range}')
    scaled = np.subtract(values, np.float32(low), dtype=np.float32)
    np.multiply(scaled, np.float32(255.0 / (high - low)), out=scaled)
    index = np.clip(scaled, 0.0, 255.0, out=scaled).astype(np.uint8)
    if index.ndim != 2:
        return _lut(colormap)[index]
    # OpenCV's table lookup with our RGB table as the "user colormap": ~8x faster than lut[index]
    # (2.1 vs 16 ms at 2048x1024), same values.
    return cv2.applyColorMap(index, _lut(colormap).reshape(256, 1, 3))


def colorize_labels(train_ids: np.ndarray, label_set: LabelSet) -> np.ndarray:
    """HxW uint8 train ids -> HxWx3 uint8 RGB in the label set's colors; ignore pixels are black."""
    ids = np.asarray(train_ids, dtype=np.uint8)
    palette = label_set.palette
    if ids.ndim != 2:
        return palette[ids]
    # As in colorize_heatmap: the palette as OpenCV's "user colormap", 0.65 vs 3.7 ms (np.take) at 2048x1024.
    return cv2.applyColorMap(ids, palette.reshape(256, 1, 3))


def overlay(rgb: np.ndarray, heatmap_rgb: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a colorized map over a camera frame of the same size: (1-alpha)*rgb + alpha*heatmap."""
    if rgb.shape != heatmap_rgb.shape:
        heatmap_rgb = cv2.resize(heatmap_rgb, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    return cv2.addWeighted(rgb, 1.0 - alpha, heatmap_rgb, alpha, 0.0)


def label_tile(image: np.ndarray, text: str) -> np.ndarray:
    """A copy of an RGB image with ``text`` written in its top-left corner on a dark band."""
    tile = np.ascontiguousarray(image).copy()
    scale = max(0.35, tile.shape[1] / 900.0)
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    band = min(tile.shape[0], height + baseline + 6)
    tile[:band, : min(tile.shape[1], width + 8)] //= 3
    cv2.putText(tile, text, (4, height + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def contact_sheet(rows: Sequence[Sequence[np.ndarray]], titles: Sequence[Sequence[str]] | None = None,
                  tile_size: tuple[int, int] | None = None, gap: int = 2) -> np.ndarray:
    """Grid of RGB images (rows of tiles) as one HxWx3 uint8 image.

    Tiles are resized to ``tile_size`` = (H, W) (default: the first tile's size); grayscale tiles
    are expanded to RGB. ``titles`` (same nesting as ``rows``) are written on the tiles.
    """
    if not rows or not rows[0]:
        raise ValueError('contact_sheet needs at least one tile')
    height, width = tile_size or rows[0][0].shape[:2]
    columns = max(len(row) for row in rows)
    sheet = np.full((len(rows) * (height + gap) - gap, columns * (width + gap) - gap, 3), 255, dtype=np.uint8)
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            tile = np.asarray(tile)
            if tile.ndim == 2:
                tile = np.repeat(tile[:, :, None], 3, axis=2)
            if tile.shape[:2] != (height, width):
                tile = cv2.resize(tile, (width, height), interpolation=cv2.INTER_AREA)
            if titles is not None and c < len(titles[r]) and titles[r][c]:
                tile = label_tile(tile, titles[r][c])
            y, x = r * (height + gap), c * (width + gap)
            sheet[y:y + height, x:x + width] = tile
    return sheet
