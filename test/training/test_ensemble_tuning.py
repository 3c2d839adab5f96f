"""Ensemble tuning: the grid, the histogram metrics, and picking the right weights."""
from __future__ import annotations

import numpy as np
import pytest

from anomaly_seg_ros.evaluation import anomaly_metrics
from anomaly_seg_ros.training import GridScorer, histogram_metrics, select_best, weight_grid


def test_weight_grid_is_normalized_without_zero_or_duplicates():
    grid = weight_grid((0, 1, 2, 3))
    assert grid.shape[1] == 4
    np.testing.assert_allclose(grid.sum(axis=1), 1.0)
    assert (grid >= 0).all()
    assert len({tuple(np.round(row, 9)) for row in grid}) == len(grid)
    # 255 non-zero vectors; equal after normalization: scaled copies such as (1,1,0,0) = (2,2,0,0) = (3,3,0,0)
    assert len(grid) == 225
    assert [1.0, 0.0, 0.0, 0.0] in grid.tolist()


def test_histogram_metrics_equal_the_evaluation_metrics_on_quantized_scores():
    rng = np.random.default_rng(0)
    labels = (rng.random((5, 40, 50)) < 0.1).astype(np.uint8)
    labels[:, :2] = 255
    cues = np.clip(rng.normal(0.3, 0.2, (4, 5, 40, 50)) + 0.3 * labels[None] * rng.random((4, 1, 1, 1)), 0, 1)
    weights = weight_grid((0, 1, 2))
    scorer = GridScorer(weights, bins=64)
    for k in range(5):
        scorer.update(cues[:, k], labels[k])
    got = scorer.metrics()
    for v in (0, 7, len(weights) - 1):
        scores = np.tensordot(weights[v].astype(np.float32), cues.astype(np.float32), axes=1)
        quantized = np.clip(np.floor(scores * 64), 0, 63)
        expected = anomaly_metrics(quantized, labels)
        for key in ('ap', 'fpr95', 'auroc'):
            assert got[key][v] == pytest.approx(expected[key], abs=1e-9), key


def test_select_best_prefers_lowest_fpr95_then_highest_ap():
    fpr95 = np.array([0.5, 0.2, 0.2, np.nan, 0.3])
    ap = np.array([0.9, 0.4, 0.6, 0.99, 0.8])
    assert select_best(fpr95, ap) == 2


def test_select_best_with_min_ap_takes_the_lowest_fpr95_among_the_vectors_that_keep_it():
    fpr95 = np.array([0.5, 0.2, 0.2, np.nan, 0.3])
    ap = np.array([0.9, 0.4, 0.6, 0.99, 0.8])
    assert select_best(fpr95, ap, min_ap=0.7) == 4
    assert select_best(fpr95, ap, min_ap=0.85) == 0
    # No vector reaches min_ap: the plain rule decides among all.
    assert select_best(fpr95, ap, min_ap=1.5) == 2


def test_keeping_ap_refuses_a_mix_that_buys_fpr95_with_ap():
    """The dissimilarity cue ranks most anomalies first but scores a few of them (7%) like inliers; entropy is
    high on those few and on a fifth of the inliers (borders). Mixing entropy in lowers FPR95 and puts
    border pixels among the anomalies, lowering AP: the paper's rule takes a mix, keeping the best cue's AP
    takes the dissimilarity cue alone."""
    rng = np.random.default_rng(2)
    shape = (100, 100)
    labels = (rng.random(shape) < 0.1).astype(np.uint8)
    anomalous = labels == 1
    hard = anomalous & (rng.random(shape) < 0.07)
    border = ~anomalous & (rng.random(shape) < 0.2)
    dissimilarity = np.where(anomalous, 0.9, 0.1 + 0.6 * rng.random(shape))
    dissimilarity[hard] = 0.5
    entropy = np.where(anomalous, rng.random(shape), 0.0)
    entropy[hard | border] = 1.0
    noise = rng.random((2, *shape))
    cues = np.stack([dissimilarity, entropy, noise[0], noise[1]]).astype(np.float32)
    weights = weight_grid((0, 1, 2, 3))
    scorer = GridScorer(weights)
    scorer.update(cues, labels)
    metrics = scorer.metrics()
    single = np.flatnonzero(np.all(weights == [1, 0, 0, 0], axis=1))[0]
    paper = select_best(metrics['fpr95'], metrics['ap'])
    keeping = select_best(metrics['fpr95'], metrics['ap'], min_ap=metrics['ap'][single])
    assert weights[paper][1] > 0 and metrics['ap'][paper] < metrics['ap'][single] - 0.02
    assert metrics['fpr95'][paper] < metrics['fpr95'][single]
    assert keeping == single


def test_the_command_line_offers_every_ensemble_criterion():
    from anomaly_seg_ros.commands.tune_ensemble import CRITERIA
    from anomaly_seg_ros.training import ENSEMBLE_CRITERIA
    assert set(CRITERIA) == set(ENSEMBLE_CRITERIA)


def test_grid_search_picks_the_weights_that_separate_a_constructed_case():
    """Anomalies are exactly the pixels where entropy AND softmax distance are high; each cue alone has
    false positives (half of its high pixels), the perceptual cue is noise and dissimilarity is
    inverted. Only entropy + softmax distance in equal parts gives FPR95 0."""
    rng = np.random.default_rng(1)
    shape = (60, 80)
    labels = np.zeros(shape, np.uint8)
    labels[10:30, 10:30] = 1
    entropy = np.full(shape, 0.1)
    distance = np.full(shape, 0.1)
    entropy[labels == 1] = 0.9
    distance[labels == 1] = 0.9
    entropy[40:55, 0:40] = 0.9          # entropy false positives
    distance[40:55, 40:80] = 0.9        # softmax distance false positives
    perceptual = rng.random(shape)
    dissimilarity = 1.0 - entropy
    cues = np.stack([dissimilarity, entropy, perceptual, distance]).astype(np.float32)
    weights = weight_grid((0, 1, 2, 3))
    scorer = GridScorer(weights)
    scorer.update(cues, labels)
    metrics = scorer.metrics()
    best = select_best(metrics['fpr95'], metrics['ap'])
    np.testing.assert_allclose(weights[best], [0.0, 0.5, 0.0, 0.5])
    assert metrics['fpr95'][best] == 0.0 and metrics['ap'][best] == pytest.approx(1.0)


def test_histogram_metrics_are_nan_without_anomaly_pixels():
    pos = np.zeros((1, 8), np.int64)
    neg = np.ones((1, 8), np.int64)
    with np.errstate(all='ignore'):
        metrics = histogram_metrics(pos, neg)
    assert np.isnan(metrics['ap'][0]) and np.isnan(metrics['fpr95'][0])
