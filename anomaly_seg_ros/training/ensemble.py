"""``tune-ensemble``: the ensemble weights by grid search (paper Sec. 3.3).

Candidates: every vector of ``{0,1,2,3}^4`` except all-zero, normalized to sum 1, duplicates of an
earlier normalized vector dropped (order: dissimilarity, entropy, perceptual difference, softmax
distance). Criteria (``criterion``), on the validation split, ties broken by the higher AP:

- ``lowest_fpr95``: the lowest FPR95, as in the paper.
- ``lowest_fpr95_keeping_ap``: the lowest FPR95 among the vectors whose AP is at least the best single
  cue's, so the ensemble is never worse than one of its cues on AP (the best-AP cue alone is always a
  candidate). Where one cue is far stronger than the others, the paper's criterion can buy a small FPR95
  gain with a large AP loss; this one does not.

Validation data: the pipeline's own cue maps on the validation frames (the deployed path), with the
data generator's source-B labels (void objects 1, ground-truth ignore 255, the rest 0), or the
dataset's anomaly labels where it has them. The anomaly test split is refused: tuning on it would
make the reported test figures meaningless.

Speed: the four cue maps are computed once per frame; every weight vector is then scored from them
by one matrix product per pixel chunk, its scores quantized to ``bins`` levels and counted into a
per-vector histogram of anomaly and inlier pixels (memory: vectors x bins counts, whatever the
number of frames). AP / FPR95 / AUROC follow :mod:`..evaluation.metrics` exactly on the quantized
scores (the histogram bins are the thresholds).
"""
from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data import SYNTHETIC_ANOMALY_SPLIT, Sample, open_dataset_for_model
from ..errors import DatasetError
from ..evaluation import TPR_TARGET, iter_cue_maps
from ..model_config import load_model_config
from ..stages import ENSEMBLE_ORDER
from .common import Timer
from .config import ENSEMBLE_CRITERIA
from .data_generator import void_anomaly_labels
from .model_dir import record_stage

__all__ = ['EnsembleResult', 'GridScorer', 'VoidLabelledFrames', 'criterion_of', 'histogram_metrics', 'select_best',
           'training_data_of', 'tune_ensemble', 'weight_grid']

_CHUNK = 1 << 15


def weight_grid(values: Sequence[int] = (0, 1, 2, 3)) -> np.ndarray:
    """(V, 4) float64 candidate weight vectors: ``values``^4 without all-zero, normalized, deduplicated."""
    seen: set[tuple[float, ...]] = set()
    vectors = []
    for combo in itertools.product(values, repeat=4):
        total = float(sum(combo))
        if total <= 0:
            continue
        vector = tuple(round(v / total, 12) for v in combo)
        if vector in seen:
            continue
        seen.add(vector)
        vectors.append([v / total for v in combo])
    return np.asarray(vectors, dtype=np.float64)


def histogram_metrics(pos: np.ndarray, neg: np.ndarray) -> dict[str, np.ndarray]:
    """AP, FPR95, AUROC per row of (V, bins) anomaly / inlier pixel counts per score bin (bin = threshold).

    Same definitions as :mod:`..evaluation.metrics`; NaN where a row has no anomaly (or no inlier) pixel.
    """
    tps = np.cumsum(pos[:, ::-1], axis=1).astype(np.float64)
    fps = np.cumsum(neg[:, ::-1], axis=1).astype(np.float64)
    positives, negatives = tps[:, -1:], fps[:, -1:]
    with np.errstate(invalid='ignore', divide='ignore'):
        recall = tps / positives
        precision = tps / np.maximum(tps + fps, 1.0)
        ap = np.sum(np.diff(recall, axis=1, prepend=0.0) * precision, axis=1)
        fpr = fps / negatives
        first = np.argmax(recall >= TPR_TARGET, axis=1)
        fpr95 = fpr[np.arange(len(fpr)), first]
        tpr0 = np.concatenate([np.zeros_like(recall[:, :1]), recall], axis=1)
        fpr0 = np.concatenate([np.zeros_like(fpr[:, :1]), fpr], axis=1)
        auroc = np.sum(np.diff(fpr0, axis=1) * (tpr0[:, 1:] + tpr0[:, :-1]), axis=1) / 2.0
    nan = positives[:, 0] == 0
    ap[nan] = np.nan
    fpr95[nan | (negatives[:, 0] == 0)] = np.nan
    auroc[nan | (negatives[:, 0] == 0)] = np.nan
    return {'ap': ap, 'fpr95': fpr95, 'auroc': auroc}


def select_best(fpr95: np.ndarray, ap: np.ndarray, min_ap: float | None = None) -> int:
    """Index of the lowest FPR95, ties broken by the highest AP, then by order (NaN ranks last).

    ``min_ap``: only vectors with at least this AP are eligible (the others rank after them).
    """
    key_fpr = np.where(np.isnan(fpr95), np.inf, fpr95)
    key_ap = np.where(np.isnan(ap), -np.inf, ap)
    below = np.zeros(len(ap), bool) if min_ap is None else key_ap < min_ap
    return int(np.lexsort((-key_ap, key_fpr, below))[0])


class GridScorer:
    """Per-vector histograms of ensemble scores over many frames (memory: 2 x V x bins int64)."""

    def __init__(self, weights: np.ndarray, bins: int = 4096) -> None:
        self.weights = np.asarray(weights, dtype=np.float32)
        self.bins = int(bins)
        vectors = self.weights.shape[0]
        self.pos = np.zeros((vectors, self.bins), dtype=np.int64)
        self.neg = np.zeros((vectors, self.bins), dtype=np.int64)
        self._offsets = (np.arange(vectors, dtype=np.int64) * self.bins)[:, None]

    def update(self, cues: np.ndarray, labels: np.ndarray) -> None:
        """cues: (4, H, W) float in [0, 1] in :data:`~..stages.ENSEMBLE_ORDER`; labels: (H, W) 0/1/other."""
        keep = (labels == 0) | (labels == 1)
        values = np.asarray(cues, dtype=np.float32)[:, keep]
        anomalous = labels[keep] == 1
        size = self.pos.size
        for start in range(0, values.shape[1], _CHUNK):
            scores = self.weights @ values[:, start:start + _CHUNK]
            index = np.clip((scores * self.bins).astype(np.int64), 0, self.bins - 1) + self._offsets
            is_pos = anomalous[start:start + _CHUNK]
            self.pos += np.bincount(index[:, is_pos].ravel(), minlength=size).reshape(self.pos.shape)
            self.neg += np.bincount(index[:, ~is_pos].ravel(), minlength=size).reshape(self.neg.shape)

    def metrics(self) -> dict[str, np.ndarray]:
        return histogram_metrics(self.pos, self.neg)


@dataclass
class EnsembleResult:
    """The chosen weights (normalized), their validation figures, and the ranking."""

    weights: tuple[float, float, float, float]
    fpr95: float
    ap: float
    auroc: float
    frames: int
    candidates: int
    seconds: float
    top: list[dict[str, Any]] = field(default_factory=list)
    single_cues: dict[str, dict[str, float]] = field(default_factory=dict)

    def summary(self) -> str:
        w = ', '.join(f'{name} {v:.3f}' for name, v in zip(ENSEMBLE_ORDER, self.weights))
        return (f'ensemble: {self.candidates} weight vectors scored on {self.frames} validation frames in '
                f'{self.seconds:.1f}s; chosen ({w}): FPR95 {self.fpr95:.4f}, AP {self.ap:.4f}, AUROC {self.auroc:.4f}')


class VoidLabelledFrames:
    """A dataset whose samples carry evaluation labels: the dataset's own anomaly labels, else the
    data generator's source-B labels from the void mask and the semantic ground truth."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset
        self.label_set = getattr(dataset, 'label_set', None)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Sample:
        sample = self.dataset[index]
        if sample.anomaly is not None:
            return sample
        if sample.void is None or sample.semantic is None:
            raise DatasetError(f'frame {sample.name}: no anomaly labels and no void/semantic ground truth to derive '
                               'them from; tune the ensemble on a split with void labels (e.g. Cityscapes val)')
        return sample._replace(anomaly=void_anomaly_labels(sample.void, sample.semantic))


def training_data_of(model_dir: str | Path, dataset: str | None = None,
                     root: str | Path | None = None) -> tuple[str, Path]:
    """``(dataset, root)``: the given ones, else those the model was trained on (its provenance)."""
    if dataset and root:
        return dataset, Path(root)
    model = load_model_config(model_dir)
    data = (model.provenance.get('config') or {}).get('data') or model.provenance.get('data') or {}
    dataset = dataset or data.get('dataset')
    root = root or data.get('root')
    if not dataset or not root:
        raise DatasetError(f'{Path(model_dir) / "model.yaml"} does not record its training dataset; pass --dataset '
                           'and --root')
    return str(dataset), Path(root)


def criterion_of(model_dir: str | Path) -> str:
    """The ensemble criterion ``model_dir`` was trained with (its provenance), else the paper's."""
    config = load_model_config(model_dir).provenance.get('config') or {}
    criterion = (config.get('ensemble') or {}).get('criterion', 'lowest_fpr95')
    return criterion if criterion in ENSEMBLE_CRITERIA else 'lowest_fpr95'


def tune_ensemble(model_dir: str | Path, dataset: str, root: str | Path, split: str | None = 'val',
                  grid: Sequence[int] = (0, 1, 2, 3), limit: int | None = None, bins: int = 4096,
                  backend: str = 'torch', device: str | None = None, write: bool = True, show_progress: bool = True,
                  log: Callable[[str], None] = print, criterion: str = 'lowest_fpr95') -> EnsembleResult:
    """Grid-search the ensemble weights of ``model_dir`` on a validation split; writes them to model.yaml.

    ``criterion``: a key of :data:`ENSEMBLE_CRITERIA`.

    Raises:
        DatasetError: the split is the synthetic anomaly test split, or has no usable labels/pixels.
        ValueError: an unknown criterion.
    """
    if criterion not in ENSEMBLE_CRITERIA:
        raise ValueError(f'unknown ensemble criterion {criterion!r}; known: {sorted(ENSEMBLE_CRITERIA)}')
    from ..pipeline import AnomalyPipeline
    if split == SYNTHETIC_ANOMALY_SPLIT:
        raise DatasetError(f'refusing to tune the ensemble on the anomaly test split {split!r}: the test figures '
                           'would no longer be a test; use the validation split (--split val)')
    timer = Timer()
    model = load_model_config(model_dir)
    frames = VoidLabelledFrames(open_dataset_for_model(dataset, root, split, model.label_set))
    weights = weight_grid(grid)
    scorer = GridScorer(weights, bins)
    count = 0
    with AnomalyPipeline.from_model_dir(model_dir, backend=backend, device=device) as pipeline:
        for _, sample, maps, _ in iter_cue_maps(pipeline, frames, ENSEMBLE_ORDER, False, limit, show_progress,
                                                'tune ensemble'):
            scorer.update(np.stack([maps[c] for c in ENSEMBLE_ORDER]), sample.anomaly)
            count += 1
    if not scorer.pos.sum():
        raise DatasetError(f'no anomaly (void) pixel in {count} frames of {dataset} {split}; the grid search needs '
                           'anomaly labels')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        metrics = scorer.metrics()
    order = np.lexsort((-np.nan_to_num(metrics['ap'], nan=-1.0), np.nan_to_num(metrics['fpr95'], nan=np.inf)))
    top = [{'weights': [round(float(v), 4) for v in weights[i]], **{k: float(metrics[k][i]) for k in metrics}}
           for i in order[:5]]
    singles = {}
    for k, name in enumerate(ENSEMBLE_ORDER):
        unit = np.zeros(4)
        unit[k] = 1.0
        i = int(np.flatnonzero(np.all(np.isclose(weights, unit), axis=1))[0])
        singles[name] = {m: float(metrics[m][i]) for m in metrics}
    min_ap = None
    if criterion == 'lowest_fpr95_keeping_ap':
        # The grid always holds the single cues (unit vectors), so the best-AP cue itself is eligible.
        min_ap = max(float(np.nan_to_num(cue['ap'], nan=-np.inf)) for cue in singles.values())
    best = select_best(metrics['fpr95'], metrics['ap'], min_ap)
    chosen = tuple(float(v) for v in weights[best])
    result = EnsembleResult(chosen, float(metrics['fpr95'][best]), float(metrics['ap'][best]),  # type: ignore[arg-type]
                            float(metrics['auroc'][best]), count, len(weights), timer.elapsed, top, singles)
    if write:
        record_stage(model_dir, 'ensemble', {
            'weights': [round(v, 6) for v in chosen], 'criterion': ENSEMBLE_CRITERIA[criterion],
            'validation': {'dataset': dataset, 'split': split, 'frames': count, 'fpr95': result.fpr95,
                           'ap': result.ap, 'auroc': result.auroc, 'bins': bins},
            'grid': list(grid), 'candidates': len(weights), 'top': top, 'single_cues': singles,
            'time_s': round(timer.elapsed, 1)}, ensemble_weights=chosen)
    log(result.summary())
    return result
