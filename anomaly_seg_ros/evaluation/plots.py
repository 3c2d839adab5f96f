"""Evaluation figures: PR and ROC curves (matplotlib, Agg canvas, no pyplot state) and a grid of
the worst and best frames (the package's own colormaps via :mod:`..visualization`)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..visualization import colorize_heatmap, contact_sheet, overlay
from .metrics import TPR_TARGET, AnomalyCurves, AnomalyMetrics

__all__ = ['ground_truth_image', 'save_curves', 'save_frame_grid']


def _figure() -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    figure = Figure(figsize=(6.0, 5.0), dpi=120)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot(1, 1, 1)


def _pct(value: float) -> str:
    return 'n/a' if np.isnan(value) else f'{100 * value:.1f}%'


def save_curves(curves: Mapping[str, AnomalyCurves], metrics: Mapping[str, AnomalyMetrics], out_dir: str | Path,
                title: str = '') -> dict[str, Path]:
    """Write ``pr_curves.png`` (precision over recall, AP in the legend) and ``roc_curves.png``
    (TPR over FPR, AUROC and FPR95 in the legend, the 95% TPR line dashed), one line per cue."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {'pr': out / 'pr_curves.png', 'roc': out / 'roc_curves.png'}

    figure, axes = _figure()
    for cue, curve in curves.items():
        if curve.tps.size and curve.tps[-1] > 0:
            # Precision p_i holds over (r_{i-1}, r_i]: the area under these steps is the AP.
            recall = np.concatenate(([0.0], curve.recall))
            precision = np.concatenate((curve.precision[:1], curve.precision))
            axes.step(recall, precision, where='pre', label=f'{cue} (AP {_pct(metrics[cue].ap)})')
    axes.set(xlabel='recall', ylabel='precision', xlim=(0, 1), ylim=(0, 1.02),
             title=f'precision-recall {title}'.strip())
    axes.grid(alpha=0.3)
    axes.legend(loc='upper right', fontsize='small')
    figure.savefig(paths['pr'])

    figure, axes = _figure()
    for cue, curve in curves.items():
        if curve.tps.size and curve.tps[-1] > 0 and curve.fps[-1] > 0:
            m = metrics[cue]
            axes.plot(np.concatenate(([0.0], curve.fpr)), np.concatenate(([0.0], curve.recall)),
                      label=f'{cue} (AUROC {_pct(m.auroc)}, FPR95 {_pct(m.fpr95)})')
    axes.axhline(TPR_TARGET, color='gray', linestyle='--', linewidth=0.8)
    axes.plot([0, 1], [0, 1], color='lightgray', linewidth=0.8)
    axes.set(xlabel='false positive rate', ylabel='true positive rate', xlim=(0, 1), ylim=(0, 1.02),
             title=f'ROC {title}'.strip())
    axes.grid(alpha=0.3)
    axes.legend(loc='lower right', fontsize='small')
    figure.savefig(paths['roc'])
    return paths


def ground_truth_image(labels: np.ndarray) -> np.ndarray:
    """HxW uint8 0/1/255 -> HxWx3 uint8: inlier dark gray, anomaly orange, ignored black."""
    image = np.zeros(labels.shape + (3,), dtype=np.uint8)
    image[labels == 0] = (70, 70, 70)
    image[labels == 1] = (255, 140, 0)
    return image


def save_frame_grid(worst: Sequence[Any], best: Sequence[Any], path: str | Path,
                    colormap: str = 'turbo') -> Path:
    """One row per frame (worst first, then best): image, overlay, heatmap, ground truth.

    Examples are :class:`~.evaluate.FrameExample` (name, ap, image, heatmap, labels).
    """
    rows, titles = [], []
    for kind, examples in (('worst', worst), ('best', best)):
        for rank, example in enumerate(examples, 1):
            heat = colorize_heatmap(example.heatmap, colormap)
            rows.append([example.image, overlay(example.image, heat), heat, ground_truth_image(example.labels)])
            titles.append([f'{kind} {rank}: {example.name}', f'AP {_pct(example.ap)}', 'anomaly score',
                           'ground truth'])
    if not rows:
        raise ValueError('no frames to draw')
    sheet = contact_sheet(rows, titles, tile_size=rows[0][0].shape[:2])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise OSError(f'cannot write {path}')
    return path
