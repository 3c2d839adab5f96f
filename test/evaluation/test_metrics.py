"""anomaly_metrics and AnomalyMetricAccumulator against scikit-learn (Fishyscapes convention)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from anomaly_seg_ros.evaluation import AnomalyMetricAccumulator, MetricWarning, anomaly_metrics


def _sklearn(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    keep = (labels == 0) | (labels == 1)
    s, y = scores[keep].astype(np.float64), labels[keep].astype(np.int64)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return average_precision_score(y, s), fpr[np.argmax(tpr >= 0.95)], roc_auc_score(y, s)


def _random_case(seed: int, n: int, decimals: int | None = None, shape: tuple[int, ...] | None = None):
    rng = np.random.default_rng(seed)
    labels = rng.choice(np.array([0, 1, 255, 7], dtype=np.uint8), size=n, p=[0.6, 0.2, 0.15, 0.05])
    scores = np.clip(rng.normal(0.4 + 0.25 * (labels == 1), 0.2), 0, 1).astype(np.float32)
    if decimals is not None:
        scores = scores.round(decimals)  # many ties
    if shape is not None:
        scores, labels = scores.reshape(shape), labels.reshape(shape)
    return scores, labels


@pytest.mark.parametrize('seed', range(6))
@pytest.mark.parametrize('decimals', [None, 1, 2])
def test_anomaly_metrics_equal_sklearn_on_small_random_inputs(seed, decimals):
    scores, labels = _random_case(seed, 500 + 97 * seed, decimals)
    result = anomaly_metrics(scores, labels)
    ap, fpr95, auroc = _sklearn(scores, labels)
    assert result.exact
    assert result['ap'] == pytest.approx(ap, abs=1e-12)
    assert result['fpr95'] == pytest.approx(fpr95, abs=1e-12)
    assert result['auroc'] == pytest.approx(auroc, abs=1e-12)
    assert result.anomaly_pixels == int(np.sum(labels == 1))
    assert result.inlier_pixels == int(np.sum(labels == 0))
    assert result.ignored_pixels == int(np.sum((labels != 0) & (labels != 1)))


def test_anomaly_metrics_accept_any_shape_and_lists_of_images():
    scores, labels = _random_case(3, 4 * 30 * 40, 2, shape=(4, 30, 40))
    whole = anomaly_metrics(scores, labels)
    per_image = anomaly_metrics(list(scores), list(labels))
    flat = anomaly_metrics(scores.ravel(), labels.ravel())
    for key in ('ap', 'fpr95', 'auroc', 'anomaly_pixels', 'inlier_pixels', 'ignored_pixels'):
        assert whole[key] == pytest.approx(per_image[key], abs=1e-12) == pytest.approx(flat[key], abs=1e-12)


def test_accumulator_in_histogram_mode_agrees_with_sklearn_within_1e_3():
    rng = np.random.default_rng(7)
    n = 2_000_000
    labels = (rng.random(n) < 0.08).astype(np.uint8)
    labels[rng.random(n) < 0.05] = 255
    scores = np.clip(rng.normal(0.35 + 0.2 * (labels == 1), 0.15), 0, 1).astype(np.float32)
    accumulator = AnomalyMetricAccumulator(exact_limit=10_000)
    for chunk in np.array_split(np.arange(n), 8):  # "images"
        accumulator.update(scores[chunk], labels[chunk])
    result = accumulator.compute()
    assert not result.exact
    ap, fpr95, auroc = _sklearn(scores, labels)
    assert abs(result.ap - ap) < 1e-3
    assert abs(result.fpr95 - fpr95) < 1e-3
    assert abs(result.auroc - auroc) < 1e-3


def test_quantized_scores_stay_exact_beyond_the_exact_limit():
    rng = np.random.default_rng(1)
    labels = (rng.random(200_000) < 0.1).astype(np.uint8)
    scores = (rng.random(200_000) * 255).astype(np.uint8)  # a uint8 heatmap: 256 distinct values
    result = anomaly_metrics(scores, labels, exact_limit=1000)
    assert result.exact
    ap, fpr95, auroc = _sklearn(scores, labels)
    assert (result.ap, result.fpr95, result.auroc) == pytest.approx((ap, fpr95, auroc), abs=1e-12)


def test_histogram_widens_to_scores_seen_and_clips_later_outliers_with_a_warning():
    rng = np.random.default_rng(2)
    accumulator = AnomalyMetricAccumulator(exact_limit=100, bins=1 << 16)
    first = rng.normal(0, 5, 1000)  # logits, outside [0, 1]
    accumulator.update(first, (first > 0).astype(np.uint8))
    assert not accumulator.exact
    low, high = accumulator.score_range
    assert low <= first.min() and high >= first.max()
    with pytest.warns(MetricWarning, match='clipped'):
        accumulator.update(np.array([high + 10.0, low - 10.0]), np.array([1, 0]))
    assert accumulator.compute().clipped_pixels == 2


def test_all_equal_scores_give_base_rate_ap_half_auroc_and_full_fpr95():
    labels = np.array([0, 0, 0, 1, 255, 1, 0, 0], dtype=np.uint8)
    scores = np.full(labels.shape, 0.3, dtype=np.float32)
    result = anomaly_metrics(scores, labels)
    assert result.ap == pytest.approx(2 / 7)
    assert result.auroc == pytest.approx(0.5)
    assert result.fpr95 == pytest.approx(1.0)
    assert (result.ap, result.fpr95, result.auroc) == pytest.approx(_sklearn(scores, labels))


def test_perfect_separation_gives_ap_one_and_fpr95_zero():
    labels = np.array([0, 0, 1, 1, 0, 255], dtype=np.uint8)
    scores = np.array([0.1, 0.2, 0.9, 0.8, 0.3, 0.95])
    result = anomaly_metrics(scores, labels)
    assert (result.ap, result.fpr95, result.auroc) == (1.0, 0.0, 1.0)


def test_fpr95_is_the_first_operating_point_reaching_95_percent_tpr():
    # 20 anomalies: TPR reaches 0.95 at the 19th; the 20th scores below most inliers.
    scores = np.concatenate([np.linspace(0.99, 0.8, 19), [0.05], np.linspace(0.7, 0.1, 50)])
    labels = np.concatenate([np.ones(20, np.uint8), np.zeros(50, np.uint8)])
    result = anomaly_metrics(scores, labels)
    assert result.fpr95 == 0.0
    assert result.fpr95 == _sklearn(scores, labels)[1]


def test_no_anomaly_pixels_give_nan_with_a_warning():
    with pytest.warns(MetricWarning, match='no anomaly pixels'):
        result = anomaly_metrics(np.random.default_rng(0).random(50), np.zeros(50, np.uint8))
    assert np.isnan(result.ap) and np.isnan(result.fpr95) and np.isnan(result.auroc)
    assert result.inlier_pixels == 50


def test_no_inlier_pixels_give_ap_one_and_nan_fpr95_auroc_with_a_warning():
    with pytest.warns(MetricWarning, match='no inlier pixels'):
        result = anomaly_metrics(np.linspace(0, 1, 10), np.ones(10, np.uint8))
    assert result.ap == 1.0
    assert np.isnan(result.fpr95) and np.isnan(result.auroc)


@pytest.mark.parametrize('labels', [np.full((4, 5), 255, np.uint8), np.zeros((0,), np.uint8)])
def test_nothing_left_after_ignoring_gives_nan_with_a_warning(labels):
    with pytest.warns(MetricWarning, match='no pixels left'):
        result = anomaly_metrics(np.zeros(labels.shape, np.float32), labels)
    assert np.isnan(result.ap) and np.isnan(result.fpr95) and np.isnan(result.auroc)
    assert result.anomaly_pixels == result.inlier_pixels == 0
    assert result.to_dict()['ap'] is None


def test_non_finite_scores_and_shape_mismatches_raise():
    with pytest.raises(ValueError, match='non-finite'):
        anomaly_metrics(np.array([0.1, np.nan]), np.array([0, 1]))
    with pytest.raises(ValueError, match='same shape'):
        anomaly_metrics(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match='2 score maps but 1'):
        anomaly_metrics([np.zeros(2), np.zeros(2)], [np.zeros(2)])
    # ignored pixels may hold anything, even NaN
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        result = anomaly_metrics(np.array([0.1, np.nan, 0.9]), np.array([0, 255, 1]))
    assert result.ap == 1.0


def test_merging_accumulators_equals_one_accumulator():
    a_scores, a_labels = _random_case(11, 3000, 3)
    b_scores, b_labels = _random_case(12, 2000, 3)
    a, b = AnomalyMetricAccumulator(), AnomalyMetricAccumulator()
    a.update(a_scores, a_labels)
    b.update(b_scores, b_labels)
    a.merge(b)
    merged = a.compute()
    whole = anomaly_metrics([a_scores, b_scores], [a_labels, b_labels])
    assert dict(merged) == pytest.approx(dict(whole))


def test_curves_end_at_full_recall_and_subsample_keeps_the_ends():
    scores, labels = _random_case(5, 20_000)
    accumulator = AnomalyMetricAccumulator()
    accumulator.update(scores, labels)
    curves = accumulator.curves()
    assert curves.recall[-1] == 1.0 and curves.fpr[-1] == 1.0
    assert np.all(np.diff(curves.thresholds) < 0)
    small = curves.subsample(100)
    assert small.thresholds.size <= 100
    assert small.tps[-1] == curves.tps[-1] and small.thresholds[0] == curves.thresholds[0]
