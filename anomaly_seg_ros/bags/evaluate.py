"""``bag eval``: score recorded node outputs against ground-truth topics, matched by header stamp.

Inputs are one recorded bag holding the outputs (and usually the ground truth, recorded while
``bag play`` published it), or outputs in one bag and ground truth in another (``gt_bag``; the
stamps must then be the original ones, i.e. played without ``--restamp``).

* anomaly: the output map (32FC1 in [0, 1], or mono8 read as value/255) against the mono8
  0/1/255 ground truth with the same stamp -> AP, FPR95, AUROC (:mod:`..evaluation.metrics`);
* semantic: mono8 train ids against the mono8 train-id ground truth -> mIoU, per-class IoU;
* coverage: distinct output stamps that match an input frame / input frames (``input_topic``, by
  default the ground-truth topic);
* latency: per output message, bag receive time minus header stamp (ms), meaningful when the
  stamps are live (a camera, or ``bag play --restamp``).

Outputs of another size than the ground truth are resized to it (bilinear for scores, nearest
for class maps), as the node may publish at network resolution.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluation.metrics import AnomalyMetricAccumulator, AnomalyMetrics
from ..evaluation.semantic import ConfusionMatrix, SemanticMetrics
from ..imaging import resize_map
from ..labels import IGNORE_INDEX
from .io import BagError, decode_image, header_stamp_ns, read_messages

__all__ = ['BagEvaluation', 'LatencyStats', 'evaluate_bag']

# Latencies beyond this mean the stamps are not live (an old bag played without --restamp).
_IMPLAUSIBLE_LATENCY_MS = 60_000.0


@dataclass(frozen=True)
class LatencyStats:
    """Receive time minus header stamp over the output messages, in milliseconds."""

    count: int
    mean: float
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of(cls, values_ms: Sequence[float]) -> LatencyStats:
        if not values_ms:
            nan = float('nan')
            return cls(0, nan, nan, nan, nan, nan)
        v = np.asarray(values_ms, dtype=np.float64)
        p50, p90, p99 = (float(x) for x in np.percentile(v, [50, 90, 99]))
        return cls(int(v.size), float(v.mean()), p50, p90, p99, float(v.max()))

    def to_dict(self) -> dict[str, float | int | None]:
        return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in self.__dict__.items()}


@dataclass
class BagEvaluation:
    """Metrics of recorded outputs; fractions for metrics and coverage, milliseconds for latency."""

    input_frames: int
    matched_frames: int
    anomaly: AnomalyMetrics | None = None
    semantic: SemanticMetrics | None = None
    latency: dict[str, LatencyStats] = field(default_factory=dict)
    unmatched_outputs: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def coverage(self) -> float:
        return self.matched_frames / self.input_frames if self.input_frames else float('nan')

    def to_dict(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        return {
            'input_frames': self.input_frames,
            'matched_frames': self.matched_frames,
            'coverage': None if np.isnan(self.coverage) else self.coverage,
            'unmatched_outputs': self.unmatched_outputs,
            'anomaly': None if self.anomaly is None else self.anomaly.to_dict(),
            'semantic': None if self.semantic is None else self.semantic.to_dict(class_names),
            'latency_ms': {topic: stats.to_dict() for topic, stats in self.latency.items()},
            'notes': list(self.notes),
        }

    def format(self) -> str:
        """A few lines for the terminal."""
        lines = [f'frames: {self.matched_frames}/{self.input_frames} input frames got an output '
                 f'({100 * self.coverage:.1f}%)' + (f', {self.unmatched_outputs} outputs without ground truth'
                                                     if self.unmatched_outputs else '')]
        if self.anomaly is not None:
            a = self.anomaly
            lines.append(f'anomaly: AP {100 * a.ap:.2f}%  FPR95 {100 * a.fpr95:.2f}%  AUROC {100 * a.auroc:.2f}%  '
                         f'({a.anomaly_pixels} anomaly / {a.inlier_pixels} inlier pixels)')
        if self.semantic is not None:
            lines.append(f'semantic: mIoU {100 * self.semantic.miou:.2f}%  pixel accuracy '
                         f'{100 * self.semantic.pixel_accuracy:.2f}%')
        for topic, s in self.latency.items():
            lines.append(f'latency {topic}: p50 {s.p50:.1f} ms  p90 {s.p90:.1f} ms  p99 {s.p99:.1f} ms  '
                         f'max {s.max:.1f} ms  (n={s.count})')
        lines.extend(f'note: {n}' for n in self.notes)
        return '\n'.join(lines)


def _stamps(path: Path, topic: str) -> tuple[set[int], list[float]]:
    """Header stamps of a topic, and receive time minus stamp (ms) per message."""
    stamps: set[int] = set()
    latencies: list[float] = []
    for message in read_messages(path, [topic]):
        stamp = header_stamp_ns(message.decode())
        stamps.add(stamp)
        latencies.append((message.timestamp_ns - stamp) / 1e6)
    return stamps, latencies


def _joined(path: Path, topic: str, gt_path: Path, gt_topic: str, wanted: set[int]
            ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(stamp, output map, ground-truth map) for each stamp in ``wanted``, each once.

    In one bag both topics are streamed in receive order and only maps waiting for their partner
    are held (a few frames in flight). With the ground truth in another bag, its maps for the
    wanted stamps are loaded first.
    """
    done: set[int] = set()
    if gt_path == path and gt_topic != topic:
        pending: dict[str, dict[int, np.ndarray]] = {topic: {}, gt_topic: {}}
        for message in read_messages(path, [topic, gt_topic]):
            msg = message.decode()
            stamp = header_stamp_ns(msg)
            if stamp not in wanted or stamp in done or stamp in pending[message.topic]:
                continue
            other = pending[gt_topic if message.topic == topic else topic]
            if stamp in other:
                partner = other.pop(stamp)
                done.add(stamp)
                output, truth = (decode_image(msg), partner) if message.topic == topic \
                    else (partner, decode_image(msg))
                yield stamp, output, truth
            else:
                pending[message.topic][stamp] = decode_image(msg)
        return
    truth_maps: dict[int, np.ndarray] = {}
    for message in read_messages(gt_path, [gt_topic]):
        msg = message.decode()
        stamp = header_stamp_ns(msg)
        if stamp in wanted and stamp not in truth_maps:
            truth_maps[stamp] = decode_image(msg)
    for message in read_messages(path, [topic]):
        msg = message.decode()
        stamp = header_stamp_ns(msg)
        if stamp in truth_maps and stamp not in done:
            done.add(stamp)
            yield stamp, decode_image(msg), truth_maps.pop(stamp)


def _as_scores(array: np.ndarray, topic: str) -> np.ndarray:
    if array.ndim != 2:
        raise BagError(f'{topic}: expected a one-channel anomaly map (32FC1 or mono8), got shape {array.shape}')
    return array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else array.astype(np.float32)


def evaluate_bag(path: str | Path, anomaly_topic: str | None = None, gt_topic: str | None = None,
                 semantic_topic: str | None = None, semantic_gt_topic: str | None = None,
                 input_topic: str | None = None, gt_bag: str | Path | None = None,
                 num_classes: int | None = None, ignore_index: int = IGNORE_INDEX) -> BagEvaluation:
    """Evaluate the outputs recorded in ``path`` (see the module doc).

    Args:
        anomaly_topic / gt_topic: anomaly output and its 0/1/255 ground truth (both or neither).
        semantic_topic / semantic_gt_topic: class map output and its ground truth (both or neither).
        input_topic: the camera topic whose frames count as inputs (default: the first gt topic).
        gt_bag: bag holding the ground truth (and input) topics, default ``path``.
        num_classes: classes for IoU; default: largest id (below ``ignore_index``) seen + 1.
    """
    path = Path(path)
    gt_path = Path(gt_bag) if gt_bag is not None else path
    if (anomaly_topic is None) != (gt_topic is None) or (semantic_topic is None) != (semantic_gt_topic is None):
        raise BagError('give each output topic together with its ground-truth topic')
    if anomaly_topic is None and semantic_topic is None:
        raise BagError('nothing to evaluate: give --anomaly-topic/--gt-topic and/or '
                       '--semantic-topic/--semantic-gt-topic')
    reference = input_topic or gt_topic or semantic_gt_topic
    assert reference is not None
    inputs, _ = _stamps(gt_path, reference)
    result = BagEvaluation(input_frames=len(inputs), matched_frames=0)
    matched: set[int] = set()
    unmatched: set[int] = set()
    if anomaly_topic is not None and gt_topic is not None:
        out_stamps, latencies = _stamps(path, anomaly_topic)
        gt_stamps = inputs if gt_topic == reference else _stamps(gt_path, gt_topic)[0]
        unmatched |= out_stamps - gt_stamps
        accumulator = AnomalyMetricAccumulator()
        for stamp, scores, labels in _joined(path, anomaly_topic, gt_path, gt_topic, out_stamps & gt_stamps):
            scores = _as_scores(scores, anomaly_topic)
            if scores.shape != labels.shape:
                scores = resize_map(scores, labels.shape[:2])
            accumulator.update(scores, labels)
            matched.add(stamp)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            result.anomaly = accumulator.compute()
        result.latency[anomaly_topic] = LatencyStats.of(latencies)
    if semantic_topic is not None and semantic_gt_topic is not None:
        out_stamps, latencies = _stamps(path, semantic_topic)
        gt_stamps = inputs if semantic_gt_topic == reference else _stamps(gt_path, semantic_gt_topic)[0]
        unmatched |= out_stamps - gt_stamps
        pairs = _joined(path, semantic_topic, gt_path, semantic_gt_topic, out_stamps & gt_stamps)
        # Without a class count, count over every id below ignore_index and crop to the ids seen.
        matrix = ConfusionMatrix(num_classes or ignore_index, ignore_index)
        for stamp, prediction, target in pairs:
            if prediction.shape != target.shape:
                prediction = resize_map(prediction, target.shape[:2], nearest=True)
            matrix.update(prediction, target)
            matched.add(stamp)
        if not num_classes:
            matrix = matrix.cropped(matrix.used_classes())
        result.semantic = matrix.compute()
        result.latency[semantic_topic] = LatencyStats.of(latencies)
    result.unmatched_outputs = len(unmatched)
    result.matched_frames = len(matched & inputs) if inputs else len(matched)
    if not matched:
        result.notes.append('no output stamp matches a ground-truth stamp: was the bag played with --restamp '
                            'while the ground truth comes from another bag?')
    if any(abs(s.p50) > _IMPLAUSIBLE_LATENCY_MS for s in result.latency.values() if s.count):
        result.notes.append('latencies are implausible: the header stamps are not live; play the bag with '
                            '--restamp to measure latency')
    return result
