"""The synthetic camera: a pinhole over a flat street, with a slightly curving road.

World frame: ``x`` to the right, ``y`` up from the ground, ``z`` forward (metres). Road frame:
lateral ``u`` across the street (``u = 0`` is the road's left edge), depth ``z``; the road
bends as ``x = u - camera_u + curve * z**2``. Image: pixel ``(col, row)``, row 0 at the top.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ['View', 'box_faces']


@dataclass(frozen=True)
class View:
    """Camera intrinsics and street geometry of one frame.

    Attributes:
        width, height: image size in pixels.
        focal: focal length in pixels.
        cx: principal point column.
        horizon: row of the horizon (the camera looks level).
        cam_height: camera height above the ground (m).
        camera_u: the camera's lateral position in road coordinates (m).
        curve: road curvature coefficient (1/m); lateral drift ``curve * z**2``.
    """

    width: int
    height: int
    focal: float
    cx: float
    horizon: float
    cam_height: float
    camera_u: float
    curve: float

    @property
    def z_bottom(self) -> float:
        """Depth (m) of the ground seen at the image's bottom row."""
        return self.focal * self.cam_height / (self.height - self.horizon)

    def world_x(self, u: np.ndarray | float, z: np.ndarray | float) -> np.ndarray:
        """World ``x`` of road coordinates ``(u, z)``."""
        z = np.asarray(z, dtype=np.float64)
        return np.asarray(u, dtype=np.float64) - self.camera_u + self.curve * z * z

    def project(self, x: np.ndarray | float, y: np.ndarray | float, z: np.ndarray | float) -> np.ndarray:
        """World points -> (N, 2) float64 pixel coordinates (col, row); ``z`` must be > 0."""
        x, y, z = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64),
                                      np.asarray(z, np.float64))
        col = self.cx + self.focal * x / z
        row = self.horizon + self.focal * (self.cam_height - y) / z
        return np.stack([col.ravel(), row.ravel()], axis=1)

    def road_point(self, u: np.ndarray | float, z: np.ndarray | float, y: np.ndarray | float = 0.0) -> np.ndarray:
        """Road coordinates (and height ``y``) -> (N, 2) pixel coordinates."""
        return self.project(self.world_x(u, z), y, z)

    def scale(self, z: float) -> float:
        """Pixels per metre at depth ``z``."""
        return self.focal / z

    def band(self, u0: float, u1: float, z0: float, z1: float, n: int = 24, y: float = 0.0) -> np.ndarray:
        """Polygon (2n, 2) of the ground strip ``u0..u1`` between depths ``z0 < z1`` (following the bend)."""
        z = np.geomspace(z0, z1, n)
        left = self.road_point(u0, z, y)
        right = self.road_point(u1, z[::-1], y)
        return np.concatenate([left, right])

    def wall(self, u: float, z0: float, z1: float, y0: float, y1: float, n: int = 8) -> np.ndarray:
        """Polygon (2n, 2) of a vertical wall along the street at lateral ``u``, heights ``y0..y1``."""
        z = np.geomspace(z0, z1, n)
        return np.concatenate([self.road_point(u, z, y0), self.road_point(u, z[::-1], y1)])


def box_faces(view: View, x0: float, x1: float, y0: float, y1: float, z0: float, z1: float
              ) -> list[tuple[str, np.ndarray]]:
    """Visible faces of an axis-aligned world box as ``(kind, (4, 2) polygon)``.

    Kinds: ``'back'`` (the face at ``z0``, facing the camera), ``'side-'`` / ``'side+'`` (the face
    at ``x0`` / ``x1``, normal -x / +x, when it faces the camera), ``'top'`` (when the box is below
    the camera). Faces of a convex box do not overlap in the image, so they can be filled in any
    order; their union is the box.
    """
    faces = []

    def quad(xs, ys, zs):
        return view.project(np.asarray(xs), np.asarray(ys), np.asarray(zs))

    faces.append(('back', quad([x0, x1, x1, x0], [y0, y0, y1, y1], [z0] * 4)))
    if x0 > 0:
        faces.append(('side-', quad([x0, x0, x0, x0], [y0, y0, y1, y1], [z0, z1, z1, z0])))
    elif x1 < 0:
        faces.append(('side+', quad([x1, x1, x1, x1], [y0, y0, y1, y1], [z0, z1, z1, z0])))
    if y1 < view.cam_height:
        faces.append(('top', quad([x0, x1, x1, x0], [y1] * 4, [z0, z0, z1, z1])))
    return faces
