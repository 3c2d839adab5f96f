"""Instance objects: cars (labelId 26) and people (labelId 24)."""
from __future__ import annotations

import numpy as np

from .canvas import Canvas, Sprite
from .shapes import anchor, box_polygons, draw_box, ellipse_poly, ground_shadow
from .street import Light
from .textures import Textures, jitter, pick
from .view import View

__all__ = ['CAR', 'PERSON', 'draw_car', 'draw_person']

CAR, PERSON = 26, 24

_CAR_COLORS = ((225, 225, 225), (25, 25, 30), (150, 152, 158), (160, 25, 30), (30, 60, 140), (40, 90, 60),
               (200, 170, 60), (95, 95, 100), (120, 60, 30), (230, 230, 220), (60, 70, 90))
_SKIN = ((235, 195, 165), (200, 150, 110), (150, 100, 70), (95, 65, 45), (225, 180, 140))
_HAIR = ((30, 25, 20), (80, 50, 25), (150, 110, 60), (200, 180, 120), (120, 120, 120))
_CLOTHES = ((30, 30, 35), (200, 200, 200), (40, 60, 120), (150, 30, 40), (60, 100, 60), (210, 170, 70),
            (120, 90, 70), (90, 90, 100), (230, 120, 40), (60, 140, 180), (170, 60, 130))


def draw_car(canvas: Canvas, view: View, light: Light, tex: Textures, rng: np.random.Generator,
             u: float, z: float, facing_away: bool, instance_id: int) -> int:
    """A car whose nearest end is at depth ``z``, centred on road coordinate ``u``; returns pixels drawn."""
    kind = int(rng.integers(3))                      # 0 sedan, 1 hatchback, 2 van/SUV
    length = float(rng.uniform(3.8, 4.9)) + (0.3 if kind == 2 else 0.0)
    width = float(rng.uniform(1.65, 1.95))
    height = float(rng.uniform(1.4, 1.55)) + (0.35 if kind == 2 else 0.0)
    color = np.asarray(jitter(rng, pick(rng, _CAR_COLORS), 10))
    body_top = 0.45 * height + 0.3
    near_end = (0.22, 0.06, 0.04)[kind] if facing_away else (0.3, 0.25, 0.12)[kind]
    cabin_len = length * ((0.45, 0.62, 0.8)[kind])
    body = box_polygons(view, u, z, width, length, 0.28, body_top)
    cabin = box_polygons(view, u, z + near_end * length, width - 0.18, cabin_len, body_top, height)
    wheel_z = (z + 0.75, z + length - 0.8)
    tyres = [box_polygons(view, u + dx, zw - 0.32, 0.22, 0.64, 0.0, 0.62)
             for zw in wheel_z[:1] for dx in (-width / 2 + 0.13, width / 2 - 0.13)]
    everything = [p for faces in [body, cabin, *tyres] for _, p in faces]
    sprite = canvas.sprite(everything)
    if sprite is None:
        return 0
    ground_shadow(canvas, view, u, z - 0.1, width + 0.3, length + 0.2, 0.45 + 0.3 * (1 - light.ambient),
                  round_shape=False)
    dark = (22.0, 22.0, 24.0)
    for faces in tyres:
        draw_box(sprite, faces, light, dark, CAR)
    draw_box(sprite, body, light, color, CAR)
    draw_box(sprite, cabin, light, color * 0.97, CAR)
    _car_details(sprite, view, light, rng, body, cabin, (u, z, width, length, body_top), facing_away, color)
    sprite.modulate(tex.paint)
    return canvas.paste(sprite, instance_id=instance_id)


def _car_details(sprite: Sprite, view: View, light: Light, rng: np.random.Generator, body: list, cabin: list,
                 size: tuple[float, float, float, float, float], facing_away: bool, color: np.ndarray) -> None:
    """Windows, lamps, bumper, plate and the wheels of the visible flank."""
    u, z, width, length, y_hi = size
    glass = np.asarray(jitter(rng, (45, 55, 65), 8)) * (0.8 + 0.4 * light.ambient)
    for kind, poly in cabin:
        if kind == 'top':
            continue
        center = poly.mean(axis=0)
        inset = center + 0.8 * (poly - center)
        inset[:, 1] = np.minimum(inset[:, 1], center[1] + 0.85 * (poly[:, 1].max() - center[1]))
        sprite.decal_polys([inset], tuple(glass * (1.1 if kind == 'back' else 0.9)))
    x = float(view.world_x(u, z))
    y_lo = 0.28
    lamp = (200.0, 25.0, 25.0) if facing_away else (235.0, 230.0, 200.0)
    lamps, grille = [], []
    for x0, x1 in ((x - width / 2 + 0.05, x - width / 2 + 0.4), (x + width / 2 - 0.4, x + width / 2 - 0.05)):
        lamps.append(view.project(np.array([x0, x1, x1, x0]), np.array([y_hi - 0.25, y_hi - 0.25, y_hi - 0.08,
                                                                         y_hi - 0.08]), z))
    grille.append(view.project(np.array([x - width / 2, x + width / 2, x + width / 2, x - width / 2]),
                               np.array([y_lo, y_lo, y_lo + 0.15, y_lo + 0.15]), z))
    plate = view.project(np.array([x - 0.26, x + 0.26, x + 0.26, x - 0.26]),
                         np.array([y_lo + 0.18, y_lo + 0.18, y_lo + 0.3, y_lo + 0.3]), z)
    sprite.decal_polys(grille, tuple(color * 0.35))
    sprite.decal_polys(lamps, lamp)
    sprite.decal_polys([plate], (225.0, 225.0, 215.0))
    # Side wheels on the visible flank.
    side = [(k, p) for k, p in body if k.startswith('side')]
    if side:
        xs = x + (width / 2 if side[0][0] == 'side+' else -width / 2)
        for zw in (z + 0.8, z + length - 0.8):
            t = np.linspace(0, 2 * np.pi, 14, endpoint=False)
            wheel = view.project(np.full(14, xs), 0.32 + 0.32 * np.sin(t), zw + 0.32 * np.cos(t))
            hub = view.project(np.full(14, xs), 0.32 + 0.14 * np.sin(t), zw + 0.14 * np.cos(t))
            sprite.polys([wheel], (22.0, 22.0, 24.0), CAR)
            sprite.decal_polys([hub], (120.0, 120.0, 125.0))


def draw_person(canvas: Canvas, view: View, light: Light, tex: Textures, rng: np.random.Generator,
                u: float, z: float, instance_id: int) -> int:
    """A pedestrian standing or walking at road coordinates ``(u, z)``; returns pixels drawn."""
    a = anchor(view, u, z)
    h = float(rng.uniform(1.55, 1.95)) if rng.random() > 0.1 else float(rng.uniform(1.05, 1.4))
    view_kind = int(rng.integers(3))                 # 0 front, 1 back, 2 side
    half = 0.19 * h / 1.75 if view_kind != 2 else 0.12 * h / 1.75
    stride = float(rng.uniform(0, 0.18)) * h / 1.75 if view_kind == 2 else 0.0
    sprite = canvas.sprite([a.rect(-0.5, 0.5, 0, h * 1.02)])
    if sprite is None:
        return 0
    ground_shadow(canvas, view, u, z - 0.15, 0.55, 0.5, 0.35)
    skin = jitter(rng, pick(rng, _SKIN), 6)
    shirt = np.asarray(jitter(rng, pick(rng, _CLOTHES), 15))
    pants = np.asarray(jitter(rng, pick(rng, _CLOTHES), 15))
    shade = light.face((0.0, 0.0, -1.0))
    hip, shoulder = 0.48 * h, 0.81 * h
    legs = [a.pts([[-half + 0.01 - stride, 0], [-0.01 - stride, 0], [0.0, hip], [-half + 0.02, hip]]),
            a.pts([[0.01 + stride, 0], [half - 0.01 + stride, 0], [half - 0.02, hip], [0.0, hip]])]
    sprite.polys(legs, tuple(pants * shade), PERSON)
    shoes = [a.rect(-half + 0.01 - stride - 0.02, -0.01 - stride + 0.02, 0, 0.05),
             a.rect(0.01 + stride - 0.02, half - 0.01 + stride + 0.02, 0, 0.05)]
    sprite.polys(shoes, (30.0, 28.0, 26.0), PERSON)
    coat = rng.random() < 0.25
    bottom = 0.3 * h if coat else hip - 0.04 * h
    torso = a.pts([[-half - 0.01, bottom], [half + 0.01, bottom], [half + 0.02, shoulder], [-half - 0.02, shoulder]])
    sprite.poly(torso, tuple(shirt * shade), PERSON)
    arm_w = 0.055 * h / 1.75
    swing = float(rng.uniform(-0.08, 0.08))
    for sign in ((-1, 1) if view_kind != 2 else (1,)):
        top_x = sign * (half + 0.01) if view_kind != 2 else 0.0
        hand = (top_x + sign * 0.03 + swing * (1 if sign > 0 else -1), hip - 0.06 * h)
        arm = a.pts([[top_x - arm_w, shoulder], [top_x + arm_w, shoulder], [hand[0] + arm_w, hand[1]],
                     [hand[0] - arm_w, hand[1]]])
        sprite.poly(arm, tuple(shirt * shade * 0.9), PERSON)
        sprite.poly(a.pts(ellipse_poly(hand[0], hand[1] - 0.02 * h, arm_w * 1.1, 0.035 * h, 8)), skin, PERSON)
    neck = a.rect(-0.03 * h / 1.75, 0.03 * h / 1.75, shoulder - 0.01, shoulder + 0.05 * h)
    sprite.poly(neck, skin, PERSON)
    head = a.pts(ellipse_poly(0.0, 0.915 * h, 0.062 * h, 0.075 * h, 14))
    sprite.poly(head, skin, PERSON)
    hair = jitter(rng, pick(rng, _HAIR), 8)
    if view_kind == 1:
        sprite.decal_polys([head], hair)
    else:
        cap = a.pts(ellipse_poly(0.0, 0.925 * h, 0.066 * h, 0.07 * h, 10, 0.0, np.pi))
        sprite.polys([cap], hair, PERSON)
    if rng.random() < 0.3:   # bag or backpack
        bag = jitter(rng, pick(rng, _CLOTHES), 15)
        bx = float(rng.choice([-1.0, 1.0])) * (half + 0.06)
        sprite.poly(a.rect(bx - 0.09, bx + 0.09, hip - 0.1, hip + 0.18), bag, PERSON)
    sprite.modulate(tex.rough)
    return canvas.paste(sprite, instance_id=instance_id)
