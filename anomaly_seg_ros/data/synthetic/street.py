"""The static street: sky, distant skyline, ground, road with markings, sidewalks, building blocks.

Layout in road coordinates (see :mod:`.view`): the road spans ``u = 0 .. road_width``; on each
side, measured outward from the road edge, a curb, an optional grass verge, the sidewalk, and,
on urban sides, building facades set back a little; park sides have grass and trees instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .canvas import Canvas
from .textures import Textures, jitter, pick
from .view import View

__all__ = ['Block', 'Light', 'Side', 'Street', 'draw_street', 'sample_street']

SKY, BUILDING, VEGETATION, TERRAIN, ROAD, SIDEWALK = 23, 11, 21, 22, 7, 8
GROUND_LABELS = (ROAD, SIDEWALK, TERRAIN)
_Z_FAR = 600.0

_FACADE_COLORS = ((190, 180, 160), (160, 160, 165), (150, 85, 65), (215, 210, 200), (200, 185, 130),
                  (120, 100, 85), (175, 190, 200), (110, 110, 115), (205, 160, 120))
_PAVING_COLORS = ((160, 158, 152), (175, 165, 150), (150, 120, 110), (135, 138, 140), (185, 180, 170))
_GRASS_COLORS = ((85, 115, 55), (110, 125, 65), (140, 135, 85), (75, 100, 60))


@dataclass(frozen=True)
class Light:
    """Directional sun plus ambient light; :meth:`face` gives a face's brightness factor."""

    sun: tuple[float, float, float]
    ambient: float

    def face(self, normal: tuple[float, float, float]) -> float:
        direct = max(0.0, float(np.dot(self.sun, normal)))
        return self.ambient + (1.0 - self.ambient) * direct


@dataclass(frozen=True)
class Block:
    """A building block along one side of the street."""

    z0: float
    z1: float
    height: float
    setback: float
    depth: float
    color: tuple[float, float, float]
    window_style: int


@dataclass(frozen=True)
class Side:
    """One side of the street (``sign`` -1 = left, +1 = right) and its widths in metres."""

    sign: int
    edge: float
    verge: float
    sidewalk: float
    urban: bool
    blocks: tuple[Block, ...] = ()

    def u(self, d: float) -> float:
        """Road coordinate of the point ``d`` metres outward from this side's road edge."""
        return self.edge + self.sign * d

    @property
    def sidewalk_range(self) -> tuple[float, float]:
        """Distances (from the road edge) where the sidewalk lies, inner < outer."""
        return self.verge, self.verge + self.sidewalk

    @property
    def facade_d(self) -> float:
        return self.verge + self.sidewalk


@dataclass(frozen=True)
class Street:
    lanes: int
    lane_width: float
    sides: tuple[Side, Side]
    light: Light
    road_color: tuple[float, float, float]
    paving_color: tuple[float, float, float]
    grass_color: tuple[float, float, float]
    sky_top: tuple[float, float, float]
    sky_horizon: tuple[float, float, float]
    cloudiness: float
    crosswalk_z: float | None
    lane_dashes: tuple[float, float] = field(default=(3.0, 9.0))

    @property
    def road_width(self) -> float:
        return self.lanes * self.lane_width


def _sample_blocks(rng: np.random.Generator, z_start: float) -> tuple[Block, ...]:
    blocks = []
    z = z_start
    while z < 160.0:
        length = float(rng.uniform(8, 35))
        blocks.append(Block(z0=z, z1=z + length, height=float(rng.uniform(5, 28)),
                            setback=float(rng.uniform(0, 2.5)), depth=float(rng.uniform(8, 20)),
                            color=jitter(rng, pick(rng, _FACADE_COLORS), 14), window_style=int(rng.integers(4))))
        z += length + (float(rng.uniform(3, 15)) if rng.random() < 0.3 else 0.0)
    return tuple(blocks)


def sample_street(rng: np.random.Generator, width: int, height: int) -> tuple[View, Street]:
    """Draw the camera and the street layout of one frame."""
    lanes = int(rng.choice([2, 2, 3, 4]))
    lane_width = float(rng.uniform(2.9, 3.7))
    camera_lane = int(rng.integers(lanes // 2, lanes)) if lanes > 2 else int(rng.integers(0, 2))
    view = View(width=width, height=height, focal=width * float(rng.uniform(0.95, 1.2)),
                cx=width / 2 + float(rng.normal(0, 0.02 * width)),
                horizon=height * float(rng.uniform(0.36, 0.5)), cam_height=float(rng.uniform(1.25, 1.7)),
                camera_u=(camera_lane + 0.5) * lane_width + float(rng.normal(0, 0.25)),
                curve=float(rng.normal(0, 0.0015)))
    road_width = lanes * lane_width
    sides = []
    for sign, edge in ((-1, 0.0), (1, road_width)):
        urban = bool(rng.random() < 0.75)
        sides.append(Side(sign=sign, edge=edge, verge=float(rng.uniform(0.3, 2.5)) if rng.random() < 0.3 else 0.0,
                          sidewalk=float(rng.uniform(1.5, 4.5)) if rng.random() < 0.9 else 0.0, urban=urban,
                          blocks=_sample_blocks(rng, float(rng.uniform(-5, 6) if urban else rng.uniform(50, 110)))))
    elevation = float(rng.uniform(0.25, 1.0))
    azimuth = float(rng.uniform(-np.pi, np.pi))
    sun = (np.cos(elevation) * np.sin(azimuth), np.sin(elevation), -np.cos(elevation) * np.cos(azimuth))
    overcast = float(rng.random())
    light = Light(sun=(float(sun[0]), float(sun[1]), float(sun[2])),
                  ambient=float(np.clip(0.35 + 0.5 * overcast + rng.normal(0, 0.05), 0.3, 0.95)))
    gray = float(rng.uniform(70, 115))
    sky_top = (np.array([60, 110, 185]) * (1 - overcast) + np.array([165, 170, 180]) * overcast)
    return view, Street(
        lanes=lanes, lane_width=lane_width, sides=(sides[0], sides[1]), light=light,
        road_color=jitter(rng, (gray, gray, gray * 1.02), 4),
        paving_color=jitter(rng, pick(rng, _PAVING_COLORS), 10),
        grass_color=jitter(rng, pick(rng, _GRASS_COLORS), 10),
        sky_top=jitter(rng, sky_top, 10), sky_horizon=jitter(rng, (200, 208, 215), 8),
        cloudiness=float(rng.uniform(0, 1)),
        crosswalk_z=float(rng.uniform(1.3 * view.z_bottom, 25)) if rng.random() < 0.25 else None,
        lane_dashes=(float(rng.uniform(2, 4)), float(rng.uniform(6, 10))))


def draw_street(canvas: Canvas, view: View, street: Street, tex: Textures, rng: np.random.Generator) -> None:
    """Sky, skyline, ground, road and sidewalks, then buildings far to near."""
    _draw_sky(canvas, view, street, tex)
    _draw_skyline(canvas, view, street, rng)
    _draw_ground(canvas, view, street, tex)
    _draw_road(canvas, view, street, tex, rng)
    for side in street.sides:
        _draw_sidewalk(canvas, view, street, side, tex, rng)
    blocks = [(b, side) for side in street.sides for b in side.blocks]
    for block, side in sorted(blocks, key=lambda bs: -bs[0].z0):
        _draw_block(canvas, view, street, side, block, tex, rng)


def _draw_sky(canvas: Canvas, view: View, street: Street, tex: Textures) -> None:
    rows = min(int(np.ceil(view.horizon)) + 2, canvas.height)
    sprite = canvas.full_sprite()
    sprite.label[:rows] = SKY
    t = np.linspace(0, 1, rows, dtype=np.float32)[:, None, None] ** 0.7
    sky = (1 - t) * np.asarray(street.sky_top, np.float32) + t * np.asarray(street.sky_horizon, np.float32)
    clouds = np.clip(tex.clouds[:rows] - (1.2 - street.cloudiness * 1.4), 0, 1)[:, :, None]
    sprite.rgb[:rows] = sky * (1 - clouds) + np.float32(235) * clouds
    canvas.paste(sprite)


def _draw_skyline(canvas: Canvas, view: View, street: Street, rng: np.random.Generator) -> None:
    scale = canvas.width / 512.0
    xs, x = [], -2.0
    while x < canvas.width + 2:
        w = float(rng.uniform(4, 30)) * scale
        xs.append((x, x + w, float(rng.uniform(1, 14)) * scale, rng.random() < 0.55))
        x += w
    base = view.horizon + 1.0
    sprite = canvas.sprite([np.array([[0, base - 16 * scale], [canvas.width, base + 1]])])
    if sprite is None:
        return
    haze = np.asarray(street.sky_horizon, np.float64)
    for is_building, label, color in ((True, BUILDING, (120, 125, 135)), (False, VEGETATION, (70, 95, 60))):
        polys = [np.array([[a, base], [b, base], [b, base - h], [a, base - h]]) for a, b, h, bld in xs
                 if bld == is_building]
        sprite.polys(polys, tuple(0.45 * np.asarray(color) + 0.55 * haze), label)
    canvas.paste(sprite)


def _draw_ground(canvas: Canvas, view: View, street: Street, tex: Textures) -> None:
    top = int(np.floor(view.horizon))
    sprite = canvas.sprite([np.array([[0, top], [canvas.width, canvas.height]])], margin=0)
    assert sprite is not None
    sprite.label[:] = TERRAIN
    sprite.rgb[:] = np.asarray(street.grass_color, np.float32)
    sprite.modulate(tex.grass)
    canvas.paste(sprite)


def _draw_road(canvas: Canvas, view: View, street: Street, tex: Textures, rng: np.random.Generator) -> None:
    z0 = 0.5 * view.z_bottom
    road = view.band(0.0, street.road_width, z0, _Z_FAR, n=40)
    sprite = canvas.sprite([road])
    if sprite is None:
        return
    sprite.poly(road, street.road_color, ROAD)
    # Repaired patches and darker wheel tracks.
    patches = []
    for _ in range(int(rng.integers(0, 4))):
        u = float(rng.uniform(0, street.road_width - 1))
        z = float(rng.uniform(z0, 40))
        patches.append(view.band(u, u + float(rng.uniform(0.5, 2.5)), z, z + float(rng.uniform(1, 6)), n=3))
    sprite.decal_polys(patches, tuple(0.8 * np.asarray(street.road_color)))
    sprite.modulate(tex.asphalt)
    paint = (230.0, 230.0, 225.0)
    marks, dash, gap = [], street.lane_dashes[0], street.lane_dashes[1]
    zs = np.arange(z0 + float(rng.uniform(0, gap)), 160.0, dash + gap)
    for k in range(1, street.lanes):
        u = k * street.lane_width
        marks += [view.band(u - 0.07, u + 0.07, z, z + dash, n=3) for z in zs]
    for u in (0.25, street.road_width - 0.25):
        if rng.random() < 0.7:
            marks.append(view.band(u - 0.07, u + 0.07, z0, 250.0, n=30))
    if street.crosswalk_z is not None:
        zc = street.crosswalk_z
        marks += [view.band(u, u + 0.5, zc, zc + 3.0, n=3) for u in np.arange(0.5, street.road_width - 0.5, 1.0)]
    sprite.decal_polys(marks, tuple(np.asarray(paint) * float(rng.uniform(0.75, 1.0))))
    sprite.modulate(tex.paint)
    canvas.paste(sprite)


def _draw_sidewalk(canvas: Canvas, view: View, street: Street, side: Side, tex: Textures,
                   rng: np.random.Generator) -> None:
    z0 = 0.5 * view.z_bottom
    inner, outer = side.sidewalk_range
    outer_ext = outer + (3.0 if side.urban else 0.0)
    polys = [view.band(side.u(0), side.u(0.2), z0, _Z_FAR, n=30)]                   # curb top
    walls = [view.wall(side.u(0), z0, _Z_FAR, 0.0, 0.13, n=30)]                       # curb face
    if side.sidewalk > 0:
        polys.append(view.band(side.u(inner), side.u(outer_ext), z0, _Z_FAR, n=30))
    sprite = canvas.sprite(polys + walls)
    if sprite is None:
        return
    curb = tuple(np.clip(np.asarray(street.paving_color) * 1.1, 0, 255))
    sprite.polys(polys, street.paving_color, SIDEWALK)
    sprite.polys(polys[:1], curb, SIDEWALK)
    sprite.polys(walls, tuple(np.asarray(curb) * street.light.face((-side.sign, 0.0, 0.0))), SIDEWALK)
    if side.sidewalk > 0:
        step = float(rng.uniform(0.5, 1.2))
        joints = [view.band(side.u(inner), side.u(outer_ext), z, z + 0.05, n=2)
                  for z in np.arange(max(z0, 1.0), 35.0, step)]
        sprite.decal_polys(joints, tuple(0.75 * np.asarray(street.paving_color)))
    sprite.modulate(tex.paving)
    canvas.paste(sprite)


def _draw_block(canvas: Canvas, view: View, street: Street, side: Side, block: Block, tex: Textures,
                rng: np.random.Generator) -> None:
    u = side.u(side.facade_d + block.setback)
    z0 = max(block.z0, 0.8)
    if block.z1 <= z0:
        return
    facade = view.wall(u, z0, block.z1, 0.0, block.height, n=10)
    u_back = u + side.sign * block.depth
    end = view.road_point(np.array([u, u_back, u_back, u]), z0, np.array([0.0, 0.0, block.height, block.height]))
    sprite = canvas.sprite([facade, end])
    if sprite is None:
        return
    light = street.light
    side_light = light.face((-float(side.sign), 0.0, 0.0))
    end_light = light.face((0.0, 0.0, -1.0))
    color = np.asarray(block.color)
    sprite.poly(facade, tuple(color * side_light), BUILDING)
    sprite.poly(end, tuple(color * end_light), BUILDING)
    # Windows: a grid on the facade in (z, height) and on the end wall in (u, height).
    style = block.window_style
    col_step, floor_h = (3.5, 3.2) if style != 3 else (2.0, 3.0)
    win_w, win_h = (1.3, 1.6) if style != 3 else (1.7, 2.3)
    floors = np.arange(floor_h * 0.9 if style == 2 else 1.0, block.height - 1.5, floor_h)
    glass = np.array([60, 75, 95]) if style != 3 else np.array([95, 130, 150])
    panes, frames = _window_grid(view, u, side.sign, z0, block, floors, col_step, win_w, win_h)
    if style != 3:
        sprite.decal_polys(frames, tuple(np.clip(color * 1.15 + 20, 0, 255) * side_light))
    lit = rng.random(len(panes)) < float(rng.uniform(0.1, 0.5))      # curtains, reflections
    sprite.decal_polys(panes[~lit], tuple(glass * (0.7 + 0.3 * side_light)))
    sprite.decal_polys(panes[lit], tuple(np.clip(glass * 1.6 + 25, 0, 255) * (0.7 + 0.3 * side_light)))
    if rng.random() < 0.6:                                            # shop fronts and doors at street level
        step = float(rng.uniform(4.0, 7.0))
        starts = np.arange(max(block.z0, 1.0) + 0.5, block.z1 - 2.5, step)
        widths = rng.uniform(1.2, 3.5, len(starts))
        zq = starts[:, None] + widths[:, None] * np.array([0.0, 1.0, 1.0, 0.0])
        yq = np.broadcast_to(np.array([0.05, 0.05, 2.6, 2.6]), zq.shape)
        shops = view.road_point(u, zq, yq).reshape(-1, 4, 2)
        sprite.decal_polys(shops, tuple(jitter(rng, (50, 55, 60), 15)))
    # Cornice along the top of the facade.
    sprite.decal_polys([view.wall(u, z0, block.z1, block.height - 0.4, block.height, n=6)],
                       tuple(color * 0.7 * side_light))
    sprite.modulate(tex.plaster)
    canvas.paste(sprite)
    _cast_block_shadow(canvas, view, street, side, block, u, z0)


def _window_grid(view: View, u: float, sign: int, z0: float, block: Block, floors: np.ndarray,
                 col_step: float, win_w: float, win_h: float) -> tuple[np.ndarray, np.ndarray]:
    """Window panes and frames as (N, 4, 2) polygons: facade grid in (z, y), end-wall grid in (u, y)."""
    zs = np.arange(max(block.z0 + 1.2, 1.5), block.z1 - 1.2, col_step)
    us = np.arange(1.5, block.depth - 1.5, col_step)
    corner_a = np.array([0.0, 1.0, 1.0, 0.0])       # along the wall, in window widths
    corner_h = np.array([0.0, 0.0, 1.0, 1.0])       # up, in window heights
    grow_a = np.array([-1.0, 1.0, 1.0, -1.0]) * 0.12
    grow_h = np.array([-1.0, -1.0, 1.0, 1.0]) * 0.12
    zz, yy = (a.reshape(-1, 1) for a in np.meshgrid(zs, floors))
    face_z = zz + win_w * corner_a
    face_y = yy + win_h * corner_h
    panes = view.road_point(u, face_z, face_y).reshape(-1, 4, 2)
    frames = view.road_point(u, face_z + grow_a, face_y + grow_h).reshape(-1, 4, 2)
    du, ye = (a.reshape(-1, 1) for a in np.meshgrid(us, floors))
    end_u = u + sign * (du + win_w * corner_a)
    end = view.road_point(end_u, z0, ye + win_h * corner_h).reshape(-1, 4, 2)
    return np.concatenate([panes, end]), frames


def _cast_block_shadow(canvas: Canvas, view: View, street: Street, side: Side, block: Block,
                       u: float, z0: float) -> None:
    """Shadow of a building onto the street when the sun is behind it (seen from the street)."""
    sx, sy, _ = street.light.sun
    if sx * side.sign <= 0.05:      # sun on the street side of this block: its shadow falls behind it
        return
    length = min(block.height * abs(sx) / max(sy, 0.15), 25.0)
    shadow = view.band(u, u - side.sign * length, z0, block.z1, n=8)
    canvas.darken(shadow, 0.55 + 0.35 * street.light.ambient, GROUND_LABELS)
