"""Noise fields and colour helpers for the synthetic scenes (vectorized; a few ms per frame)."""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ['Textures', 'jitter', 'pick', 'smooth_noise']


def smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """(H, W) float32 band-limited noise with features about ``cell`` pixels wide, std about 1."""
    gh = max(int(round(height / cell)), 1) + 2
    gw = max(int(round(width / cell)), 1) + 2
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    field = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    std = float(field.std())
    return field / std if std > 1e-6 else field


class Textures:
    """Per-frame multiplicative texture fields over the whole frame (float32, mean about 1).

    Each material modulates its sprites with one of these fields, cropped to the sprite, so a
    texture is continuous across the objects of one material and differs from frame to frame.
    """

    def __init__(self, rng: np.random.Generator, height: int, width: int) -> None:
        scale = width / 512.0
        fine = rng.standard_normal((height, width)).astype(np.float32)
        mid = smooth_noise(rng, height, width, 6 * scale)
        coarse = smooth_noise(rng, height, width, 40 * scale)
        blotch = smooth_noise(rng, height, width, 14 * scale)
        self.fine = fine
        # Asphalt: grain plus large worn patches.
        self.asphalt = 1 + 0.07 * fine + 0.06 * coarse + 0.03 * mid
        # Concrete / paving.
        self.paving = 1 + 0.05 * fine + 0.05 * mid + 0.04 * coarse
        # Plaster / facades.
        self.plaster = 1 + 0.03 * fine + 0.05 * coarse + 0.03 * blotch
        # Foliage: strong mid-frequency light/dark clumps.
        self.foliage = np.clip(1 + 0.12 * fine + 0.28 * mid + 0.12 * blotch, 0.3, 2.0)
        # Grass / terrain.
        self.grass = np.clip(1 + 0.12 * fine + 0.12 * mid + 0.10 * coarse, 0.4, 1.8)
        # Painted surfaces of objects (cars, signs): mild.
        self.paint = 1 + 0.025 * fine + 0.02 * blotch
        # Fabric / fur / rock: grainy.
        self.rough = np.clip(1 + 0.10 * fine + 0.12 * mid, 0.5, 1.6)
        # Sky: clouds.
        self.clouds = np.clip(coarse * 0.7 + blotch * 0.3, -3, 3)


def jitter(rng: np.random.Generator, color: Sequence[float], amount: float = 12.0) -> tuple[float, float, float]:
    """A colour with independent per-channel noise (std ``amount``), clipped to 0..255."""
    c = np.clip(np.asarray(color, dtype=np.float64) + rng.normal(0, amount, 3), 0, 255)
    return float(c[0]), float(c[1]), float(c[2])


def pick(rng: np.random.Generator, options: Sequence) -> object:
    """One element of ``options``, uniformly."""
    return options[int(rng.integers(len(options)))]
