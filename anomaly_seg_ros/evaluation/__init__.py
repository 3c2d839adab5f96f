"""Evaluation: pixel metrics (Fishyscapes convention), dataset evaluation, figures.

``plots`` (matplotlib) is imported only when figures are written.
"""
from __future__ import annotations

from .evaluate import (
    CUES,
    CueMetrics,
    EvaluationReport,
    FrameExample,
    FrameScore,
    evaluate_dataset,
    evaluate_semantic,
    iter_cue_maps,
)
from .metrics import (
    DEFAULT_BINS,
    DEFAULT_EXACT_LIMIT,
    TPR_TARGET,
    AnomalyCurves,
    AnomalyMetricAccumulator,
    AnomalyMetrics,
    MetricWarning,
    anomaly_metrics,
)
from .semantic import ConfusionMatrix, SemanticMetrics, semantic_metrics

__all__ = [
    'CUES',
    'DEFAULT_BINS',
    'DEFAULT_EXACT_LIMIT',
    'TPR_TARGET',
    'AnomalyCurves',
    'AnomalyMetricAccumulator',
    'AnomalyMetrics',
    'ConfusionMatrix',
    'CueMetrics',
    'EvaluationReport',
    'FrameExample',
    'FrameScore',
    'MetricWarning',
    'SemanticMetrics',
    'anomaly_metrics',
    'evaluate_dataset',
    'evaluate_semantic',
    'iter_cue_maps',
    'semantic_metrics',
]
