"""Painter's-algorithm canvas that draws the image and its label maps together.

Every object is first drawn into a :class:`Sprite` (its bounding box: RGB plus a per-pixel
labelId, 0 = empty) and then pasted onto the :class:`Canvas` in back-to-front order. A pasted
pixel takes the sprite's colour, labelId, instance id and anomaly flag at once, so the image and
the label maps agree pixel for pixel whatever occludes what.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ['Canvas', 'Sprite']

_SHIFT = 4                      # cv2 fixed-point bits: sub-pixel accurate polygons
_ONE = float(1 << _SHIFT)
Color = Sequence[float]


class Sprite:
    """A drawing surface over the frame region ``[x0, x1) x [y0, y1)`` (frame pixel coordinates).

    Attributes:
        rgb: (h, w, 3) float32 colour, 0..255 nominal (shading may exceed it; clipped at the end).
        label: (h, w) uint8 labelId per pixel, 0 where nothing is drawn.
    """

    __slots__ = ('x0', 'y0', 'rgb', 'label')

    def __init__(self, x0: int, y0: int, x1: int, y1: int) -> None:
        self.x0, self.y0 = x0, y0
        self.rgb = np.zeros((y1 - y0, x1 - x0, 3), dtype=np.float32)
        self.label = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)

    @property
    def shape(self) -> tuple[int, int]:
        return self.label.shape[0], self.label.shape[1]

    def _fixed(self, points: np.ndarray) -> np.ndarray:
        pts = (np.asarray(points, dtype=np.float64).reshape(-1, 2) - (self.x0, self.y0)) * _ONE
        return np.round(np.clip(pts, -1e8, 1e8)).astype(np.int32)

    def _fixed_list(self, polygons: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
        if isinstance(polygons, np.ndarray) and polygons.ndim == 3:
            return list(self._fixed(polygons).reshape(polygons.shape[0], polygons.shape[1], 2))
        return [self._fixed(p) for p in polygons]

    def polys(self, polygons: Sequence[np.ndarray] | np.ndarray, color: Color, label: int) -> None:
        """Fill polygons (a list of (K, 2) arrays or one (N, K, 2) array, frame coordinates)."""
        if not len(polygons):
            return
        pts = self._fixed_list(polygons)
        cv2.fillPoly(self.rgb, pts, tuple(float(c) for c in color), cv2.LINE_8, _SHIFT)
        cv2.fillPoly(self.label, pts, int(label), cv2.LINE_8, _SHIFT)

    def poly(self, polygon: np.ndarray, color: Color, label: int) -> None:
        self.polys([polygon], color, label)

    def ellipse(self, center: Sequence[float], axes: Sequence[float], angle: float, color: Color,
                label: int) -> None:
        """Filled ellipse; ``axes`` are half-axes in pixels, ``angle`` in degrees."""
        c, a = self._ellipse_args(center, axes)
        cv2.ellipse(self.rgb, c, a, float(angle), 0, 360, tuple(float(v) for v in color), -1, cv2.LINE_8, _SHIFT)
        cv2.ellipse(self.label, c, a, float(angle), 0, 360, int(label), -1, cv2.LINE_8, _SHIFT)

    def _ellipse_args(self, center: Sequence[float], axes: Sequence[float]) -> tuple[tuple[int, int], tuple[int, int]]:
        c = self._fixed(np.asarray(center))[0]
        a = np.round(np.maximum(np.asarray(axes, dtype=np.float64), 0.5) * _ONE).astype(int)
        return (int(c[0]), int(c[1])), (int(a[0]), int(a[1]))

    def decal_polys(self, polygons: Sequence[np.ndarray] | np.ndarray, color: Color) -> None:
        """Paint polygons in colour only, inside what is already drawn (labels unchanged)."""
        if not len(polygons):
            return
        temp = np.zeros(self.shape, dtype=np.uint8)
        cv2.fillPoly(temp, self._fixed_list(polygons), 1, cv2.LINE_8, _SHIFT)
        self._decal(temp, color)

    def decal_ellipse(self, center: Sequence[float], axes: Sequence[float], angle: float, color: Color) -> None:
        temp = np.zeros(self.shape, dtype=np.uint8)
        c, a = self._ellipse_args(center, axes)
        cv2.ellipse(temp, c, a, float(angle), 0, 360, 1, -1, cv2.LINE_8, _SHIFT)
        self._decal(temp, color)

    def _decal(self, temp: np.ndarray, color: Color) -> None:
        where = (temp > 0) & (self.label > 0)
        self.rgb[where] = np.asarray(color, dtype=np.float32)

    def carve_ellipse(self, center: Sequence[float], axes: Sequence[float], angle: float) -> None:
        """Erase an ellipse (a hole: the background shows through, with its own labels)."""
        c, a = self._ellipse_args(center, axes)
        cv2.ellipse(self.label, c, a, float(angle), 0, 360, 0, -1, cv2.LINE_8, _SHIFT)

    def modulate(self, factor: np.ndarray, where: np.ndarray | None = None) -> None:
        """Multiply the colour by a frame-sized factor field ((H, W) or (H, W, 3)), cropped to the sprite."""
        h, w = self.shape
        crop = factor[self.y0:self.y0 + h, self.x0:self.x0 + w]
        if crop.ndim == 2:
            crop = crop[:, :, None]
        if where is None:
            self.rgb *= crop
        else:
            self.rgb[where] *= np.broadcast_to(crop, self.rgb.shape)[where]

    def vertical_gradient(self, top: float, bottom: float) -> None:
        """Multiply the colour by a linear ramp from ``top`` (first row) to ``bottom`` (last row)."""
        h = self.shape[0]
        self.rgb *= np.linspace(top, bottom, h, dtype=np.float32)[:, None, None]


class Canvas:
    """The frame being drawn: image, labelIds, instance ids and anomaly flags.

    Attributes:
        image: (H, W, 3) float32 RGB, 0..255 nominal.
        label: (H, W) uint8 Cityscapes labelIds (0 until painted).
        instance: (H, W) int32, ``labelId*1000+k`` on instance pixels, else 0.
        anomaly: (H, W) bool, pixels of anomaly objects.
    """

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.image = np.zeros((height, width, 3), dtype=np.float32)
        self.label = np.zeros((height, width), dtype=np.uint8)
        self.instance = np.zeros((height, width), dtype=np.int32)
        self.anomaly = np.zeros((height, width), dtype=bool)

    def sprite(self, points: Sequence[np.ndarray] | np.ndarray, margin: int = 2) -> Sprite | None:
        """A sprite over the bounding box of ``points`` (clipped to the frame), or None if off-frame."""
        pts = np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in points]) \
            if isinstance(points, (list, tuple)) else np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if not len(pts) or not np.isfinite(pts).all():
            return None
        x0 = max(int(np.floor(pts[:, 0].min())) - margin, 0)
        y0 = max(int(np.floor(pts[:, 1].min())) - margin, 0)
        x1 = min(int(np.ceil(pts[:, 0].max())) + margin + 1, self.width)
        y1 = min(int(np.ceil(pts[:, 1].max())) + margin + 1, self.height)
        if x1 <= x0 or y1 <= y0:
            return None
        return Sprite(x0, y0, x1, y1)

    def full_sprite(self) -> Sprite:
        return Sprite(0, 0, self.width, self.height)

    def paste(self, sprite: Sprite | None, instance_id: int = 0, anomaly: bool = False) -> int:
        """Paint the sprite's drawn pixels over the frame; returns how many pixels it covered."""
        if sprite is None:
            return 0
        mask = sprite.label > 0
        count = int(np.count_nonzero(mask))
        if not count:
            return 0
        h, w = sprite.shape
        region = (slice(sprite.y0, sprite.y0 + h), slice(sprite.x0, sprite.x0 + w))
        np.copyto(self.image[region], sprite.rgb, where=mask[:, :, None])
        np.copyto(self.label[region], sprite.label, where=mask)
        np.copyto(self.instance[region], np.int32(instance_id), where=mask)
        np.copyto(self.anomaly[region], anomaly, where=mask)
        return count

    def darken(self, polygon: np.ndarray, factor: float, labels: Sequence[int]) -> None:
        """Multiply the image by ``factor`` inside ``polygon`` on pixels whose labelId is in ``labels``.

        Shadows: they change the look of the ground, not its labels.
        """
        sprite = self.sprite([polygon], margin=1)
        if sprite is None:
            return
        sprite.poly(polygon, (0, 0, 0), 1)
        h, w = sprite.shape
        region = (slice(sprite.y0, sprite.y0 + h), slice(sprite.x0, sprite.x0 + w))
        where = (sprite.label > 0) & np.isin(self.label[region], np.asarray(labels, dtype=np.uint8))
        self.image[region][where] *= np.float32(factor)
