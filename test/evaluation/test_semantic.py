"""Confusion-matrix IoU against scikit-learn and hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import jaccard_score

from anomaly_seg_ros.evaluation import ConfusionMatrix, semantic_metrics


def test_per_class_iou_equals_sklearn_jaccard_and_ignores_255():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 5, (3, 40, 50)).astype(np.uint8)
    target[rng.random(target.shape) < 0.1] = 255
    prediction = np.where(rng.random(target.shape) < 0.7, target, rng.integers(0, 5, target.shape)).astype(np.uint8)
    prediction[target == 255] = 3  # predictions on ignored pixels do not count
    result = semantic_metrics(list(prediction), list(target), num_classes=5)
    valid = target != 255
    expected = jaccard_score(target[valid], prediction[valid], labels=range(5), average=None)
    np.testing.assert_allclose(result.iou, expected)
    assert result.miou == pytest.approx(expected.mean())
    assert result.pixel_accuracy == pytest.approx(np.mean(prediction[valid] == target[valid]))
    assert result.valid_pixels == int(valid.sum())


def test_absent_classes_are_nan_and_left_out_of_the_mean():
    target = np.array([[0, 0, 1, 1]], np.uint8)
    prediction = np.array([[0, 1, 1, 1]], np.uint8)
    result = semantic_metrics(prediction, target, num_classes=4)
    assert result.iou[0] == pytest.approx(1 / 2) and result.iou[1] == pytest.approx(2 / 3)
    assert np.isnan(result.iou[2]) and np.isnan(result.iou[3])
    assert result.miou == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert result.to_dict(['a', 'b', 'c', 'd'])['iou'] == {'a': 0.5, 'b': pytest.approx(2 / 3), 'c': None, 'd': None}


def test_predictions_outside_the_classes_count_as_misses():
    matrix = ConfusionMatrix(2)
    matrix.update(np.array([0, 255, 7, 1]), np.array([0, 0, 1, 1]))
    result = matrix.compute()
    np.testing.assert_allclose(result.iou, [1 / 2, 1 / 2])
    assert result.pixel_accuracy == pytest.approx(0.5)


def test_cropped_matrix_keeps_the_classes_seen():
    matrix = ConfusionMatrix(255)
    matrix.update(np.array([0, 2, 9]), np.array([0, 2, 2]))
    assert matrix.used_classes() == 10
    cropped = matrix.cropped(3)
    np.testing.assert_allclose(cropped.compute().iou, [1.0, np.nan, 0.5])


def test_no_valid_pixels_give_nan():
    result = semantic_metrics(np.zeros((2, 2), np.uint8), np.full((2, 2), 255, np.uint8), num_classes=3)
    assert np.isnan(result.miou) and np.isnan(result.pixel_accuracy) and result.valid_pixels == 0
