"""Summaries of timing samples: median and p90 (the figures every table shows), mean, min, max."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ['ratio', 'summarize']


def summarize(samples_ms: Sequence[float]) -> dict[str, float]:
    """``{'n', 'median', 'p90', 'mean', 'min', 'max'}`` of millisecond samples (all 0 when empty)."""
    values = np.asarray(list(samples_ms), dtype=np.float64)
    if values.size == 0:
        return {'n': 0, 'median': 0.0, 'p90': 0.0, 'mean': 0.0, 'min': 0.0, 'max': 0.0}
    return {
        'n': int(values.size),
        'median': round(float(np.median(values)), 3),
        'p90': round(float(np.percentile(values, 90)), 3),
        'mean': round(float(values.mean()), 3),
        'min': round(float(values.min()), 3),
        'max': round(float(values.max()), 3),
    }


def ratio(baseline: float, candidate: float) -> float | None:
    """``baseline / candidate`` (how many times faster the candidate is); None without a candidate time."""
    if not candidate > 0:
        return None
    return round(float(baseline) / float(candidate), 3)
