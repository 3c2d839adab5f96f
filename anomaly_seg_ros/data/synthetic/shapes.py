"""Drawing helpers shared by the scene objects: upright billboards, lit boxes, ground shadows."""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .canvas import Canvas, Sprite
from .street import GROUND_LABELS, Light
from .view import View, box_faces

__all__ = ['Anchor', 'Footprint', 'anchor', 'box_polygons', 'draw_box', 'ellipse_poly', 'ground_shadow']

_FACE_NORMALS = {'back': (0.0, 0.0, -1.0), 'top': (0.0, 1.0, 0.0), 'side-': (-1.0, 0.0, 0.0),
                 'side+': (1.0, 0.0, 0.0)}


class Anchor(NamedTuple):
    """An upright object's foot point in pixels and its scale (pixels per metre)."""

    col: float
    row: float
    s: float

    def pts(self, xy: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """Object-local metres (x right, y up from the ground) -> (N, 2) pixel coordinates."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return np.stack([self.col + self.s * xy[:, 0], self.row - self.s * xy[:, 1]], axis=1)

    def rect(self, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
        return self.pts([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])

    def point(self, x: float, y: float) -> tuple[float, float]:
        return self.col + self.s * x, self.row - self.s * y


class Footprint(NamedTuple):
    """Ground rectangle an object occupies (road coordinates), for non-overlapping placement."""

    u0: float
    u1: float
    z0: float
    z1: float

    def overlaps(self, other: Footprint, margin: float = 0.3) -> bool:
        return (self.u0 < other.u1 + margin and other.u0 < self.u1 + margin
                and self.z0 < other.z1 + margin and other.z0 < self.z1 + margin)


def anchor(view: View, u: float, z: float) -> Anchor:
    col, row = view.road_point(u, z)[0]
    return Anchor(float(col), float(row), view.scale(z))


def ellipse_poly(cx: float, cy: float, rx: float, ry: float, n: int = 16, start: float = 0.0,
                 stop: float = 2 * np.pi) -> np.ndarray:
    """(n, 2) points on an ellipse (in whatever units the caller uses)."""
    t = np.linspace(start, stop, n, endpoint=stop - start < 2 * np.pi - 1e-9)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def box_polygons(view: View, u: float, z: float, width: float, length: float, y0: float, y1: float
                 ) -> list[tuple[str, np.ndarray]]:
    """Visible faces of a box centred laterally on road coordinate ``u``, from depth ``z`` on."""
    x = float(view.world_x(u, z))
    return box_faces(view, x - width / 2, x + width / 2, y0, y1, z, z + length)


def draw_box(sprite: Sprite, faces: list[tuple[str, np.ndarray]], light: Light, color: Sequence[float],
             label: int) -> None:
    """Fill a box's visible faces, each shaded by the light on its normal."""
    color = np.asarray(color, dtype=np.float64)
    for kind, poly in faces:
        sprite.poly(poly, tuple(color * light.face(_FACE_NORMALS[kind])), label)


def ground_shadow(canvas: Canvas, view: View, u: float, z: float, width: float, length: float,
                  strength: float, round_shape: bool = True) -> None:
    """Darken the ground under an object (contact shadow): ``strength`` 0 (none) .. 1 (black).

    The shadow is an ellipse (or, with ``round_shape=False``, a rectangle) on the ground spanning
    ``width`` across and ``length`` along the street from depth ``z``.
    """
    z = max(z, 0.3)
    if round_shape:
        t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        poly = view.road_point(u + 0.5 * width * np.cos(t), z + 0.5 * length * (1 + np.sin(t)))
    else:
        poly = view.band(u - width / 2, u + width / 2, z, z + length, n=4)
    canvas.darken(poly, 1.0 - strength, GROUND_LABELS)
