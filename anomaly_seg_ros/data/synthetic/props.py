"""Street furniture and plants: poles (17) with traffic signs (20), trees and bushes (21), and the
void objects (labelId 5 "dynamic": crates, bins, carts) that the paper's data generator treats
as anomalies in training. None of these kinds is ever used as a test anomaly (see :mod:`.anomalies`).
"""
from __future__ import annotations

import numpy as np

from .canvas import Canvas
from .shapes import anchor, box_polygons, draw_box, ellipse_poly, ground_shadow
from .street import Light
from .textures import Textures, jitter, pick
from .view import View

__all__ = ['POLE', 'SIGN', 'VOID', 'VOID_KINDS', 'draw_bush', 'draw_pole', 'draw_tree', 'draw_void_object']

POLE, SIGN, VEGETATION, VOID = 17, 20, 21, 5
VOID_KINDS = ('crate', 'bin', 'cart')

_POLE_COLORS = ((120, 120, 125), (60, 70, 60), (40, 40, 45), (160, 160, 160))
_LEAF_COLORS = ((60, 95, 40), (85, 115, 45), (45, 75, 40), (100, 120, 60), (70, 90, 35))
_BIN_COLORS = ((40, 90, 50), (90, 95, 100), (30, 60, 120), (35, 35, 38), (110, 70, 40))


def draw_pole(canvas: Canvas, view: View, light: Light, tex: Textures, rng: np.random.Generator,
              u: float, z: float, toward_road: float) -> int:
    """A pole (lamp post or sign post) at ``(u, z)``; ``toward_road`` = +1/-1 lateral direction of the road."""
    a = anchor(view, u, z)
    lamp = rng.random() < 0.5
    height = float(rng.uniform(5.5, 9.0)) if lamp else float(rng.uniform(2.4, 3.6))
    width = float(rng.uniform(0.1, 0.22)) if lamp else float(rng.uniform(0.07, 0.12))
    sign = (not lamp) or rng.random() < 0.25
    sprite = canvas.sprite([a.rect(-2.6, 2.6, 0, height + 0.3)])
    if sprite is None:
        return 0
    color = np.asarray(jitter(rng, pick(rng, _POLE_COLORS), 8))
    shade = light.face((0.0, 0.0, -1.0))
    sprite.poly(a.pts([[-width / 2, 0], [width / 2, 0], [width * 0.35, height], [-width * 0.35, height]]),
                tuple(color * shade), POLE)
    if lamp:
        arm = float(rng.uniform(0.8, 2.2)) * toward_road
        top = np.array([[0, height - 0.05], [arm, height + 0.25], [arm, height + 0.12], [0, height - 0.2]])
        sprite.poly(a.pts(top), tuple(color * shade), POLE)
        sprite.poly(a.pts(ellipse_poly(arm, height + 0.1, 0.35, 0.1, 10)), tuple(color * 0.8), POLE)
    if sign:
        _draw_sign(sprite, a, rng, (height - 0.45) if not lamp else float(rng.uniform(2.4, 3.2)))
    sprite.modulate(tex.paint)
    return canvas.paste(sprite)


def _draw_sign(sprite, a, rng: np.random.Generator, y: float) -> None:
    kind = int(rng.integers(4))
    r = float(rng.uniform(0.3, 0.45))
    red, white, blue = (200.0, 30.0, 35.0), (235.0, 235.0, 230.0), (30.0, 70.0, 160.0)
    if kind == 0:                                    # round: red ring, white disc
        sprite.poly(a.pts(ellipse_poly(0, y, r, r, 18)), red, SIGN)
        sprite.decal_polys([a.pts(ellipse_poly(0, y, 0.75 * r, 0.75 * r, 18))], white)
    elif kind == 1:                                  # triangle, point up
        tri = np.array([[-r, y - 0.8 * r], [r, y - 0.8 * r], [0, y + 0.9 * r]])
        sprite.poly(a.pts(tri), red, SIGN)
        sprite.decal_polys([a.pts(0.6 * (tri - [0, y]) + [0, y - 0.1 * r])], white)
    elif kind == 2:                                  # blue rectangle with a white arrow
        sprite.poly(a.rect(-r, r, y - 0.8 * r, y + 0.8 * r), blue, SIGN)
        sprite.decal_polys([a.pts([[-0.2 * r, y - 0.5 * r], [0.2 * r, y - 0.5 * r], [0.2 * r, y + 0.1 * r],
                                   [0.45 * r, y + 0.1 * r], [0, y + 0.6 * r], [-0.45 * r, y + 0.1 * r],
                                   [-0.2 * r, y + 0.1 * r]])], white)
    else:                                            # octagon (stop)
        sprite.poly(a.pts(ellipse_poly(0, y, r, r, 8, np.pi / 8, np.pi / 8 + 2 * np.pi)), red, SIGN)
        sprite.decal_polys([a.rect(-0.55 * r, 0.55 * r, y - 0.12 * r, y + 0.12 * r)], white)


def draw_tree(canvas: Canvas, view: View, light: Light, tex: Textures, rng: np.random.Generator,
              u: float, z: float) -> int:
    """A tree (trunk and crown are both vegetation, as in Cityscapes) at ``(u, z)``."""
    a = anchor(view, u, z)
    height = float(rng.uniform(4.0, 11.0))
    crown_r = height * float(rng.uniform(0.22, 0.35))
    trunk_top = height - 1.2 * crown_r
    sprite = canvas.sprite([a.rect(-2.0 * crown_r, 2.0 * crown_r, 0, height + 1.6 * crown_r)])
    if sprite is None:
        return 0
    trunk_w = max(0.12, 0.03 * height)
    sprite.poly(a.pts([[-trunk_w, 0], [trunk_w, 0], [trunk_w * 0.6, trunk_top + crown_r * 0.5],
                       [-trunk_w * 0.6, trunk_top + crown_r * 0.5]]), jitter(rng, (85, 65, 45), 10), VEGETATION)
    leaf = np.asarray(jitter(rng, pick(rng, _LEAF_COLORS), 10))
    shade = 0.75 + 0.35 * light.ambient
    for _ in range(int(rng.integers(4, 9))):
        cx = float(np.clip(rng.normal(0, 0.45), -0.9, 0.9)) * crown_r
        cy = trunk_top + crown_r + float(np.clip(rng.normal(0, 0.35), -0.6, 0.6)) * crown_r
        rx = crown_r * float(rng.uniform(0.5, 0.85))
        brightness = shade * float(rng.uniform(0.8, 1.15)) * (1.1 if cy > trunk_top + crown_r else 0.9)
        sprite.poly(a.pts(ellipse_poly(cx, cy, rx, rx * float(rng.uniform(0.75, 1.0)), 16)),
                    tuple(leaf * brightness), VEGETATION)
    sprite.modulate(tex.foliage)
    return canvas.paste(sprite)


def draw_bush(canvas: Canvas, view: View, light: Light, tex: Textures, rng: np.random.Generator,
              u: float, z: float, length: float) -> int:
    """A hedge: a box of foliage along the street."""
    faces = box_polygons(view, u, z, float(rng.uniform(0.6, 1.4)), length, 0.0, float(rng.uniform(0.5, 1.6)))
    sprite = canvas.sprite([p for _, p in faces])
    if sprite is None:
        return 0
    draw_box(sprite, faces, light, jitter(rng, pick(rng, _LEAF_COLORS), 10), VEGETATION)
    sprite.modulate(tex.foliage)
    return canvas.paste(sprite)


def draw_void_object(canvas: Canvas, view: View, light: Light, tex: Textures, rng: np.random.Generator,
                     u: float, z: float, kind: str) -> int:
    """A void object (labelId 5) of ``kind`` in :data:`VOID_KINDS` at ``(u, z)``; returns pixels drawn."""
    if kind == 'crate':
        size = float(rng.uniform(0.4, 1.0))
        stacked = rng.random() < 0.3
        faces = box_polygons(view, u, z, size * float(rng.uniform(0.9, 1.4)), size, 0.0, size)
        faces2 = box_polygons(view, u, z + 0.05, size * 0.9, size * 0.9, size, 1.9 * size) if stacked else []
        sprite = canvas.sprite([p for _, p in faces + faces2])
        if sprite is None:
            return 0
        ground_shadow(canvas, view, u, z, size * 1.4, size, 0.4)
        wood = np.asarray(jitter(rng, (150, 110, 65), 15))
        for f in (faces, faces2):
            draw_box(sprite, f, light, wood, VOID)
            for kind_f, poly in f:           # dark gaps between slats
                if kind_f == 'top':
                    continue
                for t in (0.3, 0.62):
                    p0 = poly[0] + t * (poly[3] - poly[0])
                    p1 = poly[1] + t * (poly[2] - poly[1])
                    d = 0.06 * (poly[3] - poly[0])
                    sprite.decal_polys([np.array([p0, p1, p1 + d, p0 + d])], tuple(wood * 0.45))
        sprite.modulate(tex.rough)
        return canvas.paste(sprite)
    a = anchor(view, u, z)
    if kind == 'bin':
        w, h = float(rng.uniform(0.5, 0.8)), float(rng.uniform(0.85, 1.25))
        sprite = canvas.sprite([a.rect(-w, w, 0, h + 0.2)])
        if sprite is None:
            return 0
        ground_shadow(canvas, view, u, z, w * 1.2, w, 0.4)
        color = np.asarray(jitter(rng, pick(rng, _BIN_COLORS), 10)) * light.face((0.0, 0.0, -1.0))
        sprite.poly(a.pts([[-w / 2, 0.05], [w / 2, 0.05], [w / 2 + 0.03, h], [-w / 2 - 0.03, h]]), tuple(color), VOID)
        sprite.poly(a.rect(-w / 2 - 0.06, w / 2 + 0.06, h - 0.02, h + 0.1), tuple(color * 0.75), VOID)
        for x in (-w / 2 + 0.08, w / 2 - 0.08):
            sprite.poly(a.pts(ellipse_poly(x, 0.07, 0.07, 0.07, 10)), (25.0, 25.0, 25.0), VOID)
        sprite.modulate(tex.paint)
        return canvas.paste(sprite)
    # cart: a wire basket on wheels with a handle; the background shows between the wires.
    w, h = float(rng.uniform(0.5, 0.9)), float(rng.uniform(0.9, 1.1))
    sprite = canvas.sprite([a.rect(-w, w, 0, h + 0.1)])
    if sprite is None:
        return 0
    metal = (170.0, 170.0, 175.0) if rng.random() < 0.6 else jitter(rng, (180, 40, 40), 15)
    bar = max(0.025, 1.2 / a.s)
    rails = []
    for y in np.linspace(0.45, h - 0.1, 5):
        rails.append(a.rect(-w / 2, w / 2, y - bar / 2, y + bar / 2))
    for x in np.linspace(-w / 2, w / 2, 6):
        rails.append(a.rect(x - bar / 2, x + bar / 2, 0.42, h - 0.1))
    rails.append(a.rect(-w / 2 - 0.05, w / 2 + 0.05, h - 0.02, h + 0.03))          # handle
    for x in (-w / 2 + 0.05, w / 2 - 0.05):
        rails.append(a.rect(x - bar / 2, x + bar / 2, 0.08, 0.45))                  # legs
    sprite.polys(rails, metal, VOID)
    for x in (-w / 2 + 0.05, w / 2 - 0.05):
        sprite.poly(a.pts(ellipse_poly(x, 0.06, 0.06, 0.06, 10)), (25.0, 25.0, 25.0), VOID)
    return canvas.paste(sprite)
