"""Semantic segmentation metrics: per-class IoU and mIoU from a confusion matrix.

Ground-truth pixels equal to ``ignore_index`` (255) are skipped. Predictions outside
``0..num_classes-1`` on a valid ground-truth pixel count as misses of that pixel's class.
IoU_c = TP_c / (TP_c + FP_c + FN_c); a class absent from both ground truth and prediction has an
undefined IoU (NaN) and is left out of the mean, as in the Cityscapes evaluation.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..labels import IGNORE_INDEX

__all__ = ['ConfusionMatrix', 'SemanticMetrics', 'semantic_metrics']


@dataclass(frozen=True)
class SemanticMetrics:
    """miou and pixel_accuracy are fractions (NaN without valid pixels); iou: (num_classes,) float64."""

    miou: float
    iou: np.ndarray
    pixel_accuracy: float
    valid_pixels: int

    def to_dict(self, class_names: Sequence[str] | None = None) -> dict[str, object]:
        """JSON-ready dict (NaN -> None); per-class IoU keyed by class name when given."""
        names = list(class_names) if class_names is not None else [str(i) for i in range(self.iou.size)]

        def clean(value: float) -> float | None:
            return None if np.isnan(value) else float(value)

        return {
            'miou': clean(self.miou),
            'pixel_accuracy': clean(self.pixel_accuracy),
            'valid_pixels': self.valid_pixels,
            'iou': {name: clean(v) for name, v in zip(names, self.iou)},
        }


class ConfusionMatrix:
    """Accumulates a (num_classes, num_classes + 1) confusion matrix; the last column = invalid prediction."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        if num_classes < 1:
            raise ValueError(f'num_classes must be positive, got {num_classes}')
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.matrix = np.zeros((self.num_classes, self.num_classes + 1), dtype=np.int64)

    def update(self, prediction: np.ndarray, target: np.ndarray) -> None:
        """Add one map pair: integer arrays of the same shape (train ids; ``target`` may hold ignore)."""
        prediction = np.asarray(prediction)
        target = np.asarray(target)
        if prediction.shape != target.shape:
            raise ValueError(f'prediction {prediction.shape} and target {target.shape} must have the same shape')
        target = target.reshape(-1).astype(np.int64)
        prediction = prediction.reshape(-1).astype(np.int64)
        valid = (target >= 0) & (target < self.num_classes) & (target != self.ignore_index)
        target = target[valid]
        prediction = prediction[valid]
        k = self.num_classes
        prediction = np.where((prediction >= 0) & (prediction < k), prediction, k)
        self.matrix += np.bincount(target * (k + 1) + prediction, minlength=k * (k + 1)).reshape(k, k + 1)

    def used_classes(self) -> int:
        """1 + the largest class id present in ground truth or prediction (at least 1)."""
        k = self.num_classes
        used = np.flatnonzero(self.matrix[:, :k].sum(axis=0) + self.matrix.sum(axis=1))
        return int(used[-1]) + 1 if used.size else 1

    def cropped(self, num_classes: int) -> ConfusionMatrix:
        """The matrix over classes ``0..num_classes-1``; predictions of higher ids become invalid."""
        if not 1 <= num_classes <= self.num_classes:
            raise ValueError(f'num_classes must be in 1..{self.num_classes}, got {num_classes}')
        out = ConfusionMatrix(num_classes, self.ignore_index)
        out.matrix[:, :num_classes] = self.matrix[:num_classes, :num_classes]
        out.matrix[:, num_classes] = self.matrix[:num_classes, num_classes:].sum(axis=1)
        return out

    def compute(self) -> SemanticMetrics:
        k = self.num_classes
        tp = np.diag(self.matrix[:, :k]).astype(np.float64)
        gt_total = self.matrix.sum(axis=1).astype(np.float64)
        pred_total = self.matrix[:, :k].sum(axis=0).astype(np.float64)
        union = gt_total + pred_total - tp
        with np.errstate(invalid='ignore', divide='ignore'):
            iou = np.where(union > 0, tp / np.where(union > 0, union, 1.0), np.nan)
        valid = int(gt_total.sum())
        miou = float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else float('nan')
        accuracy = float(tp.sum() / valid) if valid else float('nan')
        return SemanticMetrics(miou, iou, accuracy, valid)


def semantic_metrics(prediction: np.ndarray | Sequence[np.ndarray], target: np.ndarray | Sequence[np.ndarray],
                     num_classes: int, ignore_index: int = IGNORE_INDEX) -> SemanticMetrics:
    """mIoU, per-class IoU and pixel accuracy of train-id maps (arrays or lists of per-image arrays)."""
    matrix = ConfusionMatrix(num_classes, ignore_index)
    if isinstance(prediction, np.ndarray) and isinstance(target, np.ndarray):
        matrix.update(prediction, target)
    else:
        predictions, targets = list(prediction), list(target)
        if len(predictions) != len(targets):
            raise ValueError(f'{len(predictions)} predictions but {len(targets)} targets')
        for p, t in zip(predictions, targets):
            matrix.update(p, t)
    return matrix.compute()
