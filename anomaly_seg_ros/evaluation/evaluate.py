"""Dataset evaluation of an :class:`~..pipeline.AnomalyPipeline`: the framework and each single cue.

:func:`evaluate_dataset` runs the pipeline on every frame, accumulates AP / FPR95 / AUROC of the
ensemble (``anomaly``) and of each cue (dissimilarity, entropy, softmax distance, perceptual
difference) over all labelled pixels, mIoU where the dataset has semantic ground truth in the
model's label set, per-frame AP of the ensemble, and keeps thumbnails of the best and worst
frames. Memory does not grow with the dataset (see :mod:`.metrics`), apart from one small record
per frame.

The building blocks are public for other tools (ensemble tuning, ablation tables):
:func:`iter_cue_maps` yields each frame's cue maps with its labels; :class:`CueMetrics` accumulates
metrics for any set of named score maps.
"""
from __future__ import annotations

import heapq
import itertools
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import DatasetError
from ..labels import IGNORE_INDEX, class_mapping
from .metrics import (
    DEFAULT_BINS,
    DEFAULT_EXACT_LIMIT,
    AnomalyCurves,
    AnomalyMetricAccumulator,
    AnomalyMetrics,
    MetricWarning,
)
from .semantic import ConfusionMatrix, SemanticMetrics

__all__ = [
    'CUES',
    'CueMetrics',
    'EvaluationReport',
    'FrameExample',
    'FrameScore',
    'evaluate_dataset',
    'evaluate_semantic',
    'iter_cue_maps',
]

# The full framework first, then the single cues (paper Table 3 ablation).
CUES = ('anomaly', 'dissimilarity', 'entropy', 'softmax_distance', 'perceptual_difference')
_THUMBNAIL_WIDTH = 384


class CueMetrics:
    """One :class:`AnomalyMetricAccumulator` per named score map, fed frame by frame.

    ``update({'entropy': HxW float, ...}, anomaly_labels HxW uint8 0/1/255)``; ``compute()`` gives
    ``{cue: AnomalyMetrics}`` (warnings about undefined metrics are left to the caller).
    """

    def __init__(self, cues: Sequence[str] = CUES, exact_limit: int = DEFAULT_EXACT_LIMIT,
                 bins: int = DEFAULT_BINS) -> None:
        self.cues = tuple(cues)
        self.accumulators = {c: AnomalyMetricAccumulator(exact_limit=exact_limit, bins=bins) for c in self.cues}

    def update(self, maps: Mapping[str, np.ndarray], labels: np.ndarray) -> None:
        for cue in self.cues:
            self.accumulators[cue].update(maps[cue], labels)

    def compute(self) -> dict[str, AnomalyMetrics]:
        return {cue: acc.compute() for cue, acc in self.accumulators.items()}

    def curves(self, max_points: int = 2000) -> dict[str, AnomalyCurves]:
        return {cue: acc.curves().subsample(max_points) for cue, acc in self.accumulators.items()}


def _result_maps(result: Any, names: Sequence[str]) -> dict[str, np.ndarray]:
    maps = {}
    for name in names:
        value = getattr(result, name, None)
        if value is None:
            raise ValueError(f'the pipeline returned no {name!r} map')
        maps[name] = value
    return maps


def iter_cue_maps(pipeline: Any, dataset: Any, cues: Sequence[str] = CUES, semantic: bool = False,
                  limit: int | None = None, progress: bool = True, description: str = 'evaluating'
                  ) -> Iterator[tuple[int, Any, dict[str, np.ndarray], Any]]:
    """Run ``pipeline`` on the frames of ``dataset`` (the first ``limit``).

    Yields ``(index, sample, maps, result)``: ``maps`` = {cue: HxW float32 in [0, 1]} (plus
    ``'semantic'`` HxW uint8 when ``semantic``) at the size of the sample's labels (the image size);
    ``result`` is the pipeline's :class:`~..pipeline.PipelineResult` (timings).
    ``pipeline`` needs ``process(rgb, outputs=..., output_size=...)``; ``dataset`` is indexable with
    ``len`` and returns :class:`~..data.sample.Sample`.
    """
    total = len(dataset) if limit is None else min(limit, len(dataset))
    outputs = list(cues) + (['semantic'] if semantic else [])
    indices: Any = range(total)
    if progress:
        from tqdm import tqdm
        indices = tqdm(indices, desc=description, unit='frame', dynamic_ncols=True)
    for index in indices:
        sample = dataset[index]
        label = sample.anomaly if sample.anomaly is not None else sample.semantic
        size = label.shape[:2] if label is not None else sample.image.shape[:2]
        result = pipeline.process(sample.image, outputs=outputs, output_size=tuple(size))
        yield index, sample, _result_maps(result, outputs), result


@dataclass(frozen=True)
class FrameScore:
    """Per-frame figures: ensemble AP (NaN without anomaly pixels), pixel counts, pipeline time."""

    index: int
    name: str
    ap: float
    anomaly_pixels: int
    inlier_pixels: int
    total_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {'index': self.index, 'name': self.name, 'ap': None if np.isnan(self.ap) else self.ap,
                'anomaly_pixels': self.anomaly_pixels, 'inlier_pixels': self.inlier_pixels,
                'total_ms': round(self.total_ms, 3)}


@dataclass(frozen=True)
class FrameExample:
    """Thumbnails of one frame for the best/worst grid: image HxWx3 uint8, heatmap HxW float32,
    labels HxW uint8 (0/1/255)."""

    name: str
    ap: float
    image: np.ndarray
    heatmap: np.ndarray
    labels: np.ndarray


def _thumbnail(sample: Any, heatmap: np.ndarray, ap: float) -> FrameExample:
    height, width = heatmap.shape
    scale = min(1.0, _THUMBNAIL_WIDTH / width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = sample.image if sample.image.shape[:2] == (height, width) else \
        cv2.resize(sample.image, (width, height), interpolation=cv2.INTER_AREA)
    return FrameExample(sample.name, ap, cv2.resize(image, size, interpolation=cv2.INTER_AREA),
                        cv2.resize(heatmap, size, interpolation=cv2.INTER_AREA),
                        cv2.resize(sample.anomaly, size, interpolation=cv2.INTER_NEAREST))


@dataclass
class EvaluationReport:
    """Everything :func:`evaluate_dataset` measured; metrics are fractions (NaN where undefined)."""

    dataset: str
    num_frames: int
    metrics: dict[str, AnomalyMetrics]
    curves: dict[str, AnomalyCurves]
    frames: list[FrameScore]
    best: list[FrameExample] = field(default_factory=list)
    worst: list[FrameExample] = field(default_factory=list)
    semantic: SemanticMetrics | None = None
    class_names: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        times = np.array([f.total_ms for f in self.frames], dtype=np.float64)
        return {
            'dataset': self.dataset,
            'frames': self.num_frames,
            **self.info,
            'metrics': {cue: m.to_dict() for cue, m in self.metrics.items()},
            'semantic': None if self.semantic is None else self.semantic.to_dict(self.class_names or None),
            'pipeline_ms': {'mean': float(times.mean()), 'p50': float(np.median(times))} if times.size else None,
            'per_frame': [f.to_dict() for f in self.frames],
        }

    def format_table(self) -> str:
        """The terminal table: one row per cue, AP / FPR95 / AUROC in percent."""
        def pct(value: float) -> str:
            return '    n/a' if np.isnan(value) else f'{100 * value:7.2f}'

        rows = [f'{"cue":<24}{"AP %":>8}{"FPR95 %":>10}{"AUROC %":>10}', '-' * 52]
        for cue, m in self.metrics.items():
            label = 'anomaly (framework)' if cue == 'anomaly' else cue
            rows.append(f'{label:<24} {pct(m.ap)}   {pct(m.fpr95)}   {pct(m.auroc)}')
        any_metrics = next(iter(self.metrics.values()), None)
        if any_metrics is not None:
            rows.append(f'{self.num_frames} frames, {any_metrics.anomaly_pixels} anomaly / '
                        f'{any_metrics.inlier_pixels} inlier / {any_metrics.ignored_pixels} ignored pixels'
                        + ('' if any_metrics.exact else ' (histogram mode)'))
        if self.semantic is not None:
            rows.append(f'semantic: mIoU {100 * self.semantic.miou:.2f}%, pixel accuracy '
                        f'{100 * self.semantic.pixel_accuracy:.2f}%')
        return '\n'.join(rows)

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write metrics.json, pr_curves.png, roc_curves.png and frames.png; returns the paths."""
        import json

        from .plots import save_curves, save_frame_grid
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {'json': out / 'metrics.json'}
        paths['json'].write_text(json.dumps(self.to_dict(), indent=2) + '\n')
        paths.update(save_curves(self.curves, self.metrics, out, title=self.dataset))
        if self.best or self.worst:
            paths['frames'] = save_frame_grid(self.worst, self.best, out / 'frames.png')
        return paths


def evaluate_dataset(pipeline: Any, dataset: Any, limit: int | None = None, out_dir: str | Path | None = None,
                     cues: Sequence[str] = CUES, semantic: bool = True, num_examples: int = 4,
                     progress: bool = True, name: str | None = None, exact_limit: int = DEFAULT_EXACT_LIMIT,
                     bins: int = DEFAULT_BINS) -> EvaluationReport:
    """Evaluate ``pipeline`` on ``dataset`` (anomaly labels required; semantic optional).

    Args:
        pipeline: an AnomalyPipeline (or anything with its ``process`` and ``label_set``).
        dataset: a reader from :func:`~..data.open_dataset` (``len``, indexing, ``Sample``).
        limit: evaluate only the first ``limit`` frames.
        out_dir: where :meth:`EvaluationReport.save` writes the JSON and figures (``None``: nothing).
        cues: score maps to evaluate (pipeline output names).
        semantic: also compute mIoU where samples have a semantic map in the model's label set.
        num_examples: best and worst frames kept for the grid.
    Raises:
        DatasetError: no frame has anomaly labels.
    """
    metrics = CueMetrics(cues, exact_limit=exact_limit, bins=bins)
    label_set = getattr(pipeline, 'label_set', None)
    dataset_labels = getattr(dataset, 'label_set', None)
    semantic = bool(semantic and label_set is not None
                    and (dataset_labels is None or dataset_labels.class_names == label_set.class_names))
    matrix = ConfusionMatrix(label_set.num_classes, IGNORE_INDEX) if semantic else None
    frames: list[FrameScore] = []
    best: list[tuple[float, int, FrameExample]] = []   # min-heap on AP: the best frames
    worst: list[tuple[float, int, FrameExample]] = []  # min-heap on -AP: the worst frames
    tiebreak = itertools.count()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', category=MetricWarning)  # per-frame NaN AP is expected
        for index, sample, maps, result in iter_cue_maps(pipeline, dataset, cues, semantic, limit, progress,
                                                         f'eval {name or ""}'.strip()):
            if matrix is not None and sample.semantic is not None:
                matrix.update(maps['semantic'], sample.semantic)
            if sample.anomaly is None:
                continue
            metrics.update(maps, sample.anomaly)
            frame = AnomalyMetricAccumulator(exact_limit=exact_limit, bins=bins)
            frame.update(maps[cues[0]], sample.anomaly)
            m = frame.compute()
            frames.append(FrameScore(index, sample.name, m.ap, m.anomaly_pixels, m.inlier_pixels,
                                     float(result.timings_ms.get('total', float('nan')))))
            if num_examples > 0 and not np.isnan(m.ap):
                heaps = [(h, k) for h, k in ((best, m.ap), (worst, -m.ap)) if _enters(h, k, num_examples)]
                if heaps:  # build the thumbnail only for a frame that enters a heap
                    example = _thumbnail(sample, maps[cues[0]], m.ap)
                    for heap, key in heaps:
                        _push(heap, (key, next(tiebreak), example), num_examples)
    if not frames:
        raise DatasetError(f'no frame of {name or "the dataset"} has anomaly labels (0 inlier / 1 anomaly); '
                           'evaluate an anomaly set (road_anomaly, fishyscapes, folder with labels/, '
                           'synthetic split anomaly_test)')
    report = EvaluationReport(
        dataset=name or type(dataset).__name__,
        num_frames=len(frames),
        metrics=metrics.compute(),
        curves=metrics.curves(),
        frames=frames,
        best=[e for _, _, e in sorted(best, key=lambda t: -t[0])],
        worst=[e for _, _, e in sorted(worst, key=lambda t: -t[0])],
        semantic=matrix.compute() if matrix is not None and matrix.matrix.sum() else None,
        class_names=tuple(label_set.class_names) if label_set is not None else (),
    )
    if out_dir is not None:
        report.info['files'] = {k: str(v) for k, v in report.save(out_dir).items()}
    return report


def _enters(heap: list[tuple[float, int, FrameExample]], key: float, size: int) -> bool:
    return len(heap) < size or key > heap[0][0]


def _push(heap: list[tuple[float, int, FrameExample]], item: tuple[float, int, FrameExample], size: int) -> None:
    """Keep the ``size`` items with the largest keys."""
    if len(heap) < size:
        heapq.heappush(heap, item)
    else:
        heapq.heapreplace(heap, item)


def evaluate_semantic(pipeline: Any, dataset: Any, limit: int | None = None, progress: bool = True,
                      name: str | None = None) -> SemanticMetrics:
    """mIoU of the pipeline's semantic map on a segmentation dataset, in the dataset's classes.

    Where the model's classes are not the dataset's, predictions go through
    :func:`~..labels.class_mapping` first (Cityscapes classes scored on CamVid).

    Raises:
        KeyError: no class mapping between the model's and the dataset's label sets.
        DatasetError: no frame has a semantic map.
    """
    model_labels = pipeline.label_set
    labels = getattr(dataset, 'label_set', None) or model_labels
    table = class_mapping(model_labels, labels)
    matrix = ConfusionMatrix(labels.num_classes, IGNORE_INDEX)
    for _, sample, maps, _ in iter_cue_maps(pipeline, dataset, (), True, limit, progress,
                                            f'segment {name or ""}'.strip()):
        if sample.semantic is not None:
            matrix.update(table[maps['semantic']], sample.semantic)
    if not matrix.matrix.sum():
        raise DatasetError(f'no frame of {name or "the dataset"} has semantic labels')
    return matrix.compute()
