"""Anomaly objects of the synthetic anomaly test split: kinds never seen in training scenes.

Training scenes contain the void kinds of :mod:`.props` (crates, bins, carts); the objects here
(animals, rocks, tyres, traffic cones, boxes with loud patterns, sacks) never appear in train or
val, so a detector has to find them without having seen them.
"""
from __future__ import annotations

import cv2
import numpy as np

from .canvas import Canvas, Sprite
from .shapes import Anchor, anchor, box_polygons, draw_box, ellipse_poly, ground_shadow
from .street import Light
from .textures import Textures, jitter, pick
from .view import View

__all__ = ['ANOMALY_KINDS', 'draw_anomaly']

ANOMALY_KINDS = ('animal', 'rock', 'tyre', 'cone', 'box', 'sack')
_MARK = 1          # sprite label of anomaly pixels; the scene stores them as labelId 0 ("unlabeled")

_FUR = ((120, 80, 45), (30, 28, 26), (225, 220, 210), (150, 140, 130), (190, 150, 100), (90, 60, 40))
_ROCK = ((125, 122, 118), (140, 120, 95), (95, 90, 88), (170, 160, 140), (110, 95, 80))
_LOUD = ((230, 40, 160), (40, 220, 230), (250, 220, 30), (140, 40, 200), (60, 230, 80), (250, 120, 20))
_SACK = ((35, 80, 190), (20, 20, 22), (230, 230, 225), (60, 130, 60), (200, 60, 40))


def draw_anomaly(canvas: Canvas, view: View, light: Light, tex: Textures, rng: np.random.Generator,
                 u: float, z: float, kind: str) -> int:
    """Draw an anomaly object of ``kind`` (in :data:`ANOMALY_KINDS`) at ``(u, z)``; returns pixels drawn."""
    a = anchor(view, u, z)
    if kind == 'box':
        return _draw_box(canvas, view, light, tex, rng, u, z)
    extent = {'animal': 2.2, 'rock': 1.4, 'tyre': 0.9, 'cone': 0.6, 'sack': 1.0}[kind]
    sprite = canvas.sprite([a.rect(-extent, extent, 0, 2.0 * extent)])
    if sprite is None:
        return 0
    shade = light.face((0.0, 0.0, -1.0))
    footprint = {'animal': 1.2, 'rock': 1.0, 'tyre': 0.7, 'cone': 0.4, 'sack': 0.8}[kind]
    ground_shadow(canvas, view, u, z - 0.1, footprint, footprint * 0.6, 0.3)
    if kind == 'animal':
        _animal(sprite, a, rng, shade)
        sprite.modulate(tex.rough)
    elif kind == 'rock':
        _rock(sprite, a, rng, shade)
        sprite.modulate(tex.rough)
    elif kind == 'tyre':
        _tyre(sprite, view, a, rng, u, z, shade)
    elif kind == 'cone':
        _cone(sprite, a, rng, shade)
        sprite.modulate(tex.paint)
    else:
        _sack(sprite, a, rng, shade)
        sprite.modulate(tex.paint)
    return canvas.paste(sprite, anomaly=True)


def _animal(sprite: Sprite, a: Anchor, rng: np.random.Generator, shade: float) -> None:
    height = float(rng.choice([rng.uniform(0.45, 0.8), rng.uniform(0.9, 1.25), rng.uniform(1.3, 1.7)]))
    facing = float(rng.choice([-1.0, 1.0]))
    squash = float(rng.uniform(0.45, 1.0))               # foreshortening of a turned animal
    body_l, body_h = 1.15 * height * squash, 0.42 * height
    leg_h = 0.5 * height
    fur = np.asarray(jitter(rng, pick(rng, _FUR), 12)) * shade
    legs = []
    for x in (-0.38, -0.26, 0.26, 0.38):
        lx = x * body_l * 1.1
        top = leg_h + 0.1 * height
        legs.append(a.pts([[lx - 0.035 * height, 0], [lx + 0.035 * height, 0], [lx + 0.04 * height, top],
                           [lx - 0.04 * height, top]]))
    sprite.polys(legs, tuple(fur * 0.85), _MARK)
    body_cy = leg_h + body_h / 2
    sprite.poly(a.pts(ellipse_poly(0, body_cy, body_l / 2, body_h / 2, 20)), tuple(fur), _MARK)
    nx = facing * body_l * 0.42
    head_x, head_y = nx + facing * 0.18 * height, body_cy + 0.32 * height
    sprite.poly(a.pts([[nx - 0.1 * height, body_cy], [nx + 0.1 * height, body_cy + 0.05 * height],
                       [head_x + 0.05 * height * facing, head_y], [head_x - 0.08 * height * facing, head_y]]),
                tuple(fur), _MARK)
    sprite.poly(a.pts(ellipse_poly(head_x + facing * 0.06 * height, head_y, 0.14 * height, 0.09 * height, 14)),
                tuple(fur * 1.05), _MARK)
    for dx in (-0.05, 0.05):                           # ears
        ex = head_x + dx * height
        sprite.poly(a.pts([[ex - 0.03 * height, head_y + 0.05 * height], [ex + 0.03 * height, head_y + 0.05 * height],
                           [ex, head_y + 0.16 * height]]), tuple(fur * 0.9), _MARK)
    tail_x = -facing * body_l * 0.5
    sprite.poly(a.pts([[tail_x, body_cy + 0.1 * height], [tail_x - facing * 0.2 * height, body_cy - 0.15 * height],
                       [tail_x - facing * 0.16 * height, body_cy - 0.18 * height], [tail_x, body_cy + 0.03 * height]]),
                tuple(fur * 0.8), _MARK)
    if rng.random() < 0.4:                             # patches (cow-like)
        patch = (235.0, 232.0, 225.0) if fur.mean() < 100 else (30.0, 28.0, 26.0)
        for _ in range(int(rng.integers(2, 6))):
            sprite.decal_polys([a.pts(ellipse_poly(float(rng.uniform(-0.4, 0.4)) * body_l,
                                                   body_cy + float(rng.uniform(-0.3, 0.3)) * body_h,
                                                   float(rng.uniform(0.06, 0.18)) * body_l,
                                                   float(rng.uniform(0.15, 0.35)) * body_h, 10))], patch)
    sprite.vertical_gradient(1.1, 0.8)


def _rock(sprite: Sprite, a: Anchor, rng: np.random.Generator, shade: float) -> None:
    width = float(rng.uniform(0.25, 1.3))
    n = int(rng.integers(8, 14))
    t = np.sort(rng.uniform(0, np.pi, n))
    r = 0.5 * width * rng.uniform(0.75, 1.2, n)
    pts = np.stack([r * np.cos(t), r * np.sin(t) * float(rng.uniform(0.55, 1.1))], axis=1)
    pts = np.concatenate([[[0.5 * width * 1.05, 0.0]], pts, [[-0.5 * width * 1.05, 0.0]]])
    color = np.asarray(jitter(rng, pick(rng, _ROCK), 10)) * shade
    sprite.poly(a.pts(pts), tuple(color), _MARK)
    for _ in range(int(rng.integers(1, 4))):           # cracks and facets
        c = pts[int(rng.integers(1, n))] * float(rng.uniform(0.2, 0.7))
        sprite.decal_polys([a.pts([c, c + rng.normal(0, 0.12 * width, 2), c + rng.normal(0, 0.12 * width, 2)])],
                           tuple(color * float(rng.uniform(0.6, 0.85))))
    sprite.vertical_gradient(1.2, 0.75)


def _tyre(sprite: Sprite, view: View, a: Anchor, rng: np.random.Generator, u: float, z: float,
          shade: float) -> None:
    radius = float(rng.uniform(0.28, 0.42))
    rubber = jitter(rng, (28, 28, 30), 4)
    if rng.random() < 0.5:                             # standing, facing the camera; background in the hole
        sprite.poly(a.pts(ellipse_poly(0, radius, radius, radius, 24)), rubber, _MARK)
        sprite.decal_polys([a.pts(ellipse_poly(0, radius, 0.75 * radius, 0.75 * radius, 24))],
                           tuple(np.asarray(rubber) * 1.6 * shade))
        if rng.random() < 0.5:
            sprite.decal_polys([a.pts(ellipse_poly(0, radius, 0.55 * radius, 0.55 * radius, 20))],
                               tuple(np.array([150.0, 150.0, 155.0]) * shade))
        else:
            sprite.carve_ellipse(a.point(0, radius), (0.5 * radius * a.s, 0.5 * radius * a.s), 0)
        return
    x = float(view.world_x(u, z + radius))
    t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    stack = int(rng.integers(1, 4))
    for level in range(stack):                         # lying tyres, possibly stacked
        y0, y1 = 0.22 * level, 0.22 * (level + 1)
        low = view.project(x + radius * np.cos(t), y0, z + radius + radius * np.sin(t))
        top = view.project(x + radius * np.cos(t), y1, z + radius + radius * np.sin(t))
        hull = cv2.convexHull(np.concatenate([low, top]).astype(np.float32))[:, 0, :]
        sprite.poly(hull, rubber, _MARK)
        hole = view.project(x + 0.55 * radius * np.cos(t), y1, z + radius + 0.55 * radius * np.sin(t))
        sprite.decal_polys([top], tuple(np.asarray(rubber) * 1.4 * shade))
        sprite.decal_polys([hole], tuple(np.asarray(rubber) * 0.5))


def _cone(sprite: Sprite, a: Anchor, rng: np.random.Generator, shade: float) -> None:
    h = float(rng.uniform(0.45, 0.9))
    base = 0.32 * h
    orange = np.asarray(jitter(rng, (235, 95, 25), 10)) * shade
    sprite.poly(a.rect(-base, base, 0, 0.05 * h), tuple(orange * 0.5), _MARK)
    sprite.poly(a.pts([[-0.6 * base, 0.05 * h], [0.6 * base, 0.05 * h], [0.08 * base, h], [-0.08 * base, h]]),
                tuple(orange), _MARK)
    for y0, y1 in ((0.45, 0.55), (0.68, 0.76))[: int(rng.integers(1, 3))]:
        w0, w1 = 0.6 * base * (1 - y0 * 0.9), 0.6 * base * (1 - y1 * 0.9)
        sprite.decal_polys([a.pts([[-w0, y0 * h], [w0, y0 * h], [w1, y1 * h], [-w1, y1 * h]])],
                           tuple(np.array([235.0, 235.0, 235.0]) * shade))


def _sack(sprite: Sprite, a: Anchor, rng: np.random.Generator, shade: float) -> None:
    width = float(rng.uniform(0.4, 1.0))
    n = 16
    t = np.linspace(0, np.pi, n)
    r = 0.5 * width * (1 + 0.12 * rng.standard_normal(n))
    pts = np.stack([r * np.cos(t), r * np.sin(t) * float(rng.uniform(0.6, 1.2))], axis=1)
    color = np.asarray(jitter(rng, pick(rng, _SACK), 12)) * shade
    sprite.poly(a.pts(pts), tuple(color), _MARK)
    for _ in range(int(rng.integers(1, 4))):           # folds and glossy highlights
        c = pts[int(rng.integers(2, n - 2))] * 0.5
        sprite.decal_polys([a.pts(ellipse_poly(c[0], c[1], 0.08 * width, 0.03 * width, 8))],
                           tuple(np.clip(color * 1.6 + 30, 0, 255)))
    sprite.vertical_gradient(1.15, 0.8)


def _draw_box(canvas: Canvas, view: View, light: Light, tex: Textures, rng: np.random.Generator,
              u: float, z: float) -> int:
    size = float(rng.uniform(0.3, 1.2))
    faces = box_polygons(view, u, z, size * float(rng.uniform(0.8, 1.8)), size * float(rng.uniform(0.6, 1.3)),
                         0.0, size * float(rng.uniform(0.5, 1.2)))
    sprite = canvas.sprite([p for _, p in faces])
    if sprite is None:
        return 0
    ground_shadow(canvas, view, u, z, size * 1.5, size, 0.4)
    c1 = np.asarray(jitter(rng, pick(rng, _LOUD), 15))
    c2 = np.asarray(jitter(rng, pick(rng, _LOUD + ((20, 20, 20), (240, 240, 240))), 15))
    draw_box(sprite, faces, light, c1, _MARK)
    h, w = sprite.shape
    yy, xx = np.mgrid[0:h, 0:w]
    period = max(2.0, 0.12 * view.scale(z))
    pattern = int(rng.integers(3))
    if pattern == 0:
        on = ((xx + yy) // period) % 2 == 0
    elif pattern == 1:
        on = ((xx // period + yy // period) % 2) == 0
    else:
        on = (yy // period) % 2 == 0
    on &= sprite.label > 0
    sprite.rgb[on] = c2 * 0.6 + sprite.rgb[on] * 0.4 * (c2.mean() / 255 + 0.5)
    sprite.modulate(tex.paint)
    return canvas.paste(sprite, anomaly=True)
