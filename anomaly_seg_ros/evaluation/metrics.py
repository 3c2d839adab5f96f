"""Pixel metrics: anomaly AP / FPR95 / AUROC (Fishyscapes convention) and semantic IoU.

Anomaly labels: 0 in-distribution, 1 anomaly, any other value (usually 255, void) is ignored.
Anomaly is the positive class; a higher score means "more anomalous".

Definitions (all fractions in [0, 1]; thresholds are the distinct score values, no interpolation):

* ``ap``: average precision, sum over thresholds t (descending) of (R(t) - R(t_prev)) * P(t), the
  step-wise area under the precision-recall curve; equals scikit-learn's
  ``average_precision_score``.
* ``auroc``: trapezoidal area under the ROC curve through (0, 0); equals ``roc_auc_score``.
* ``fpr95``: the false positive rate at the first threshold (scanning from the highest score
  down) where the true positive rate reaches 0.95, i.e. the smallest FPR among the operating
  points with TPR >= 0.95. With ``fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)`` it is
  ``fpr[np.argmax(tpr >= 0.95)]``. (``drop_intermediate=True`` may drop that very point.)

Degenerate inputs give NaN with a :class:`MetricWarning`, never an exception, so that a dataset
evaluation (and per-frame statistics) keep going: no anomaly pixels -> all three NaN; no inlier
pixels -> ``ap`` = 1 (every detection is correct) and ``fpr95``, ``auroc`` NaN; nothing left after
ignoring -> all NaN. All-equal scores are not degenerate: one threshold, ``ap`` = anomaly base
rate, ``auroc`` = 0.5, ``fpr95`` = 1. Non-finite scores and shape mismatches raise ``ValueError``.

Memory: :class:`AnomalyMetricAccumulator` keeps, per distinct score value, the counts of anomaly
and inlier pixels, which is exact (and stays exact for quantized scores, e.g. uint8 heatmaps,
however many pixels). When the number of distinct values exceeds ``exact_limit`` (default 2**20,
about 25 MB) it switches to a fixed histogram of ``bins`` (default 2**20) equal-width bins over
``score_range`` (default [0, 1], widened to the scores seen so far), 16 MB whatever the dataset
size; each bin then acts as one threshold. For maps in [0, 1] the bin width is 1e-6; on 3 million
pixels the results differ from scikit-learn's by about 1e-6. Scores that fall outside the histogram
range later are clipped into the end bins (counted in ``clipped_pixels``, with a warning).
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

__all__ = [
    'DEFAULT_BINS',
    'DEFAULT_EXACT_LIMIT',
    'TPR_TARGET',
    'AnomalyCurves',
    'AnomalyMetricAccumulator',
    'AnomalyMetrics',
    'MetricWarning',
    'anomaly_metrics',
]

DEFAULT_EXACT_LIMIT = 1 << 20
DEFAULT_BINS = 1 << 20
TPR_TARGET = 0.95


class MetricWarning(UserWarning):
    """A metric is undefined for the given pixels (one class only, nothing left after ignoring)."""


@dataclass(frozen=True)
class AnomalyMetrics(Mapping):
    """Anomaly detection metrics of a set of pixels; also a read-only mapping name -> value.

    ``ap``, ``fpr95``, ``auroc`` are fractions (NaN where undefined); the counts are pixels;
    ``exact`` is False where the histogram approximation was used.
    """

    ap: float
    fpr95: float
    auroc: float
    anomaly_pixels: int
    inlier_pixels: int
    ignored_pixels: int
    clipped_pixels: int = 0
    exact: bool = True

    def __getitem__(self, key: str) -> float | int | bool:
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def to_dict(self) -> dict[str, float | int | bool | None]:
        """Plain JSON-ready dict (NaN -> None)."""
        return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in self.items()}


@dataclass(frozen=True)
class AnomalyCurves:
    """Operating points in order of decreasing threshold (one per distinct score or bin).

    thresholds: (N,) float64 score at which each point starts (lower bin edge in histogram mode).
    tps, fps: (N,) int64 cumulative anomaly / inlier pixels scored >= the threshold.
    """

    thresholds: np.ndarray
    tps: np.ndarray
    fps: np.ndarray

    @property
    def precision(self) -> np.ndarray:
        return self.tps / np.maximum(self.tps + self.fps, 1)

    @property
    def recall(self) -> np.ndarray:
        """Also the true positive rate."""
        return self.tps / max(int(self.tps[-1]) if self.tps.size else 0, 1)

    @property
    def fpr(self) -> np.ndarray:
        return self.fps / max(int(self.fps[-1]) if self.fps.size else 0, 1)

    def subsample(self, max_points: int = 2000) -> AnomalyCurves:
        """At most ``max_points`` points (first and last kept), for plotting."""
        n = self.thresholds.size
        if n <= max_points:
            return self
        index = np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))
        return AnomalyCurves(self.thresholds[index], self.tps[index], self.fps[index])


def _metrics_from_curves(curves: AnomalyCurves, ignored: int, clipped: int, exact: bool) -> AnomalyMetrics:
    positives = int(curves.tps[-1]) if curves.tps.size else 0
    negatives = int(curves.fps[-1]) if curves.fps.size else 0
    nan = float('nan')
    ap = fpr95 = auroc = nan
    if positives == 0:
        what = 'no pixels left after ignoring' if negatives == 0 else 'no anomaly pixels'
        warnings.warn(f'anomaly metrics undefined: {what}; AP, FPR95 and AUROC are NaN', MetricWarning,
                      stacklevel=3)
    else:
        recall = curves.tps / positives
        precision = curves.tps / (curves.tps + curves.fps)
        ap = float(np.sum(np.diff(recall, prepend=0.0) * precision))
        if negatives == 0:
            warnings.warn('anomaly metrics: no inlier pixels; FPR95 and AUROC are NaN', MetricWarning,
                          stacklevel=3)
        else:
            fpr = curves.fps / negatives
            fpr95 = float(fpr[int(np.argmax(recall >= TPR_TARGET))])
            tpr = np.concatenate(([0.0], recall))
            fpr = np.concatenate(([0.0], fpr))
            auroc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2.0)
    return AnomalyMetrics(ap, fpr95, auroc, positives, negatives, ignored, clipped, exact)


def _flatten_pair(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate one score/label pair; returns (kept scores f64, kept is-anomaly bool, ignored count)."""
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    if scores.shape != labels.shape:
        raise ValueError(f'scores {scores.shape} and labels {labels.shape} must have the same shape')
    if scores.dtype.kind not in 'biuf':
        raise ValueError(f'scores must be numeric, got dtype {scores.dtype}')
    scores = scores.reshape(-1)
    labels = labels.reshape(-1)
    keep = (labels == 0) | (labels == 1)
    kept = scores[keep].astype(np.float64, copy=False)
    if kept.size and not np.all(np.isfinite(kept)):
        raise ValueError(f'scores hold {int(np.count_nonzero(~np.isfinite(kept)))} non-finite values')
    return kept, labels[keep] == 1, int(keep.size - np.count_nonzero(keep))


class AnomalyMetricAccumulator:
    """Accumulates anomaly scores and labels image by image; memory bounded (see module doc).

    Args:
        exact_limit: most distinct score values kept exactly before switching to the histogram.
        bins: histogram bins once switched.
        score_range: (low, high) of the histogram; widened to include the scores seen before the
            switch. ``None``: (0, 1) widened the same way.
    """

    def __init__(self, exact_limit: int = DEFAULT_EXACT_LIMIT, bins: int = DEFAULT_BINS,
                 score_range: tuple[float, float] | None = None) -> None:
        if exact_limit < 1 or bins < 1:
            raise ValueError(f'exact_limit and bins must be positive, got {exact_limit}, {bins}')
        low, high = score_range if score_range is not None else (0.0, 1.0)
        if not (np.isfinite(low) and np.isfinite(high) and high > low):
            raise ValueError(f'score_range must be finite with high > low, got {score_range}')
        self.exact_limit = int(exact_limit)
        self.bins = int(bins)
        self._range = (float(low), float(high))
        # exact state: sorted distinct values with per-value counts
        self._values = np.empty(0, np.float64)
        self._pos = np.empty(0, np.int64)
        self._neg = np.empty(0, np.int64)
        # histogram state (None while exact)
        self._hist_pos: np.ndarray | None = None
        self._hist_neg: np.ndarray | None = None
        self._ignored = 0
        self._clipped = 0
        self._clip_warned = False

    @property
    def exact(self) -> bool:
        return self._hist_pos is None

    @property
    def score_range(self) -> tuple[float, float]:
        return self._range

    def update(self, scores: np.ndarray, labels: np.ndarray) -> None:
        """Add one image (or any batch): ``scores`` float/int array, ``labels`` same shape, 0/1/other."""
        kept, positive, ignored = _flatten_pair(scores, labels)
        self._ignored += ignored
        if kept.size == 0:
            return
        if not self.exact:
            assert self._hist_pos is not None and self._hist_neg is not None
            self._check_range(kept)
            index = self._bin_index(kept)
            self._hist_pos += np.bincount(index[positive], minlength=self.bins)
            self._hist_neg += np.bincount(index[~positive], minlength=self.bins)
            return
        values, inverse = np.unique(kept, return_inverse=True)
        inverse = inverse.reshape(-1)
        pos = np.bincount(inverse, weights=positive.astype(np.float64), minlength=values.size).astype(np.int64)
        neg = np.bincount(inverse, minlength=values.size).astype(np.int64) - pos
        self._add_counts(values, pos, neg)

    def _add_counts(self, values: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> None:
        """Add ``pos``/``neg`` pixels at score ``values`` (1-D, same length)."""
        if not self.exact:
            assert self._hist_pos is not None and self._hist_neg is not None
            index = self._bin_index(values)
            self._hist_pos += np.bincount(index, weights=pos, minlength=self.bins).astype(np.int64)
            self._hist_neg += np.bincount(index, weights=neg, minlength=self.bins).astype(np.int64)
            return
        if self._values.size:
            merged, inverse = np.unique(np.concatenate((self._values, values)), return_inverse=True)
            inverse = inverse.reshape(-1)
            new_pos = np.zeros(merged.size, np.int64)
            new_neg = np.zeros(merged.size, np.int64)
            n_old = self._values.size
            new_pos[inverse[:n_old]] += self._pos
            new_neg[inverse[:n_old]] += self._neg
            new_pos[inverse[n_old:]] += pos  # values are distinct within one call
            new_neg[inverse[n_old:]] += neg
            values, pos, neg = merged, new_pos, new_neg
        self._values, self._pos, self._neg = values, pos, neg
        if values.size > self.exact_limit:
            self._switch_to_histogram()

    def _switch_to_histogram(self) -> None:
        low = min(self._range[0], float(self._values[0]))
        high = max(self._range[1], float(self._values[-1]))
        self._range = (low, high)
        index = self._bin_index(self._values)
        self._hist_pos = np.bincount(index, weights=self._pos, minlength=self.bins).astype(np.int64)
        self._hist_neg = np.bincount(index, weights=self._neg, minlength=self.bins).astype(np.int64)
        self._values = np.empty(0, np.float64)
        self._pos = np.empty(0, np.int64)
        self._neg = np.empty(0, np.int64)

    def _bin_index(self, values: np.ndarray) -> np.ndarray:
        low, high = self._range
        scaled = (values - low) * (self.bins / (high - low))
        return np.clip(scaled, 0, self.bins - 1).astype(np.int64)

    def _check_range(self, kept: np.ndarray) -> None:
        low, high = self._range
        outside = int(np.count_nonzero((kept < low) | (kept > high)))
        if outside:
            self._clipped += outside
            if not self._clip_warned:
                self._clip_warned = True
                warnings.warn(f'{outside} scores outside the histogram range [{low:g}, {high:g}] were clipped '
                              'into its end bins; pass score_range to AnomalyMetricAccumulator',
                              MetricWarning, stacklevel=4)

    def curves(self) -> AnomalyCurves:
        """Operating points for PR and ROC curves (decreasing threshold)."""
        if self.exact:
            thresholds, pos, neg = self._values[::-1], self._pos[::-1], self._neg[::-1]
        else:
            assert self._hist_pos is not None and self._hist_neg is not None
            low, high = self._range
            edges = low + (high - low) * np.arange(self.bins, dtype=np.float64) / self.bins
            used = (self._hist_pos + self._hist_neg) > 0
            thresholds, pos, neg = edges[used][::-1], self._hist_pos[used][::-1], self._hist_neg[used][::-1]
        return AnomalyCurves(np.ascontiguousarray(thresholds), np.cumsum(pos), np.cumsum(neg))

    def compute(self) -> AnomalyMetrics:
        """AP, FPR95, AUROC and pixel counts of everything added so far."""
        return _metrics_from_curves(self.curves(), self._ignored, self._clipped, self.exact)

    def merge(self, other: AnomalyMetricAccumulator) -> None:
        """Add another accumulator's pixels (e.g. from a worker process).

        Exact where both are exact; a histogram-mode ``other`` contributes its bins' lower edges.
        """
        curves = other.curves()
        pos = np.diff(curves.tps, prepend=0)
        neg = np.diff(curves.fps, prepend=0)
        if curves.thresholds.size:
            if not self.exact:
                self._check_range(curves.thresholds)
            self._add_counts(curves.thresholds[::-1].copy(), pos[::-1].copy(), neg[::-1].copy())
        self._ignored += other._ignored
        self._clipped += other._clipped


def _pairs(scores: np.ndarray | Sequence[np.ndarray], labels: np.ndarray | Sequence[np.ndarray]
           ) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    if isinstance(scores, np.ndarray) and isinstance(labels, np.ndarray):
        return [(scores, labels)]
    if isinstance(scores, np.ndarray) or isinstance(labels, np.ndarray):
        raise ValueError('pass scores and labels both as arrays or both as lists of per-image arrays')
    scores, labels = list(scores), list(labels)
    if len(scores) != len(labels):
        raise ValueError(f'{len(scores)} score maps but {len(labels)} label maps')
    return zip(scores, labels)


def anomaly_metrics(scores: np.ndarray | Sequence[np.ndarray], labels: np.ndarray | Sequence[np.ndarray],
                    exact_limit: int = DEFAULT_EXACT_LIMIT, bins: int = DEFAULT_BINS,
                    score_range: tuple[float, float] | None = None) -> AnomalyMetrics:
    """AP, FPR95 and AUROC of per-pixel anomaly ``scores`` against ``labels`` (0 / 1 / ignored).

    Both arguments are arrays of the same (any) shape, or lists of per-image arrays (pairwise same
    shape). See the module docstring for the exact definitions and degenerate cases.
    """
    accumulator = AnomalyMetricAccumulator(exact_limit=exact_limit, bins=bins, score_range=score_range)
    for image_scores, image_labels in _pairs(scores, labels):
        accumulator.update(image_scores, image_labels)
    return accumulator.compute()
