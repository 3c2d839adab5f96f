"""The paper's data generator: source A class swap and source B void labels."""
from __future__ import annotations

import numpy as np
import pytest

from anomaly_seg_ros.labels import IGNORE_INDEX, SYNTHETIC
from anomaly_seg_ros.training import class_swap_labels, swap_instances, void_anomaly_labels

CAR, PERSON, SKY, ROAD = (SYNTHETIC.train_id(n) for n in ('car', 'person', 'sky', 'road'))


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """A 40x60 map: road below, sky above, three cars, one person, one void object (labelId 5)."""
    semantic = np.full((40, 60), SKY, np.uint8)
    semantic[20:] = ROAD
    instance = np.where(semantic == SKY, 23, 7).astype(np.int32)  # labelIds of sky and road
    for k, (y, x) in enumerate([(22, 2), (22, 20), (30, 40)]):
        semantic[y:y + 6, x:x + 8] = CAR
        instance[y:y + 6, x:x + 8] = 26 * 1000 + k
    semantic[5:15, 50:54] = PERSON
    instance[5:15, 50:54] = 24 * 1000
    semantic[10:14, 5:9] = IGNORE_INDEX           # a void object: no train id, no instance
    instance[10:14, 5:9] = 5
    return semantic, instance


@pytest.mark.parametrize('seed', range(20))
def test_class_swap_changes_only_the_chosen_instances_each_to_another_class(seed):
    semantic, instance = _scene()
    result = swap_instances(semantic, instance, SYNTHETIC, np.random.default_rng(seed), probability=0.5)
    assert result.swaps, 'at least one instance is swapped when there are candidates'
    changed = result.semantic != semantic
    expected_mask = np.isin(instance, list(result.swaps))
    np.testing.assert_array_equal(result.mask, expected_mask)
    assert not changed[~expected_mask].any(), 'pixels outside the chosen instances must not change'
    for instance_id, (old, new) in result.swaps.items():
        pixels = instance == instance_id
        assert old != new
        assert 0 <= new < SYNTHETIC.num_classes
        assert (semantic[pixels] == old).all() and (result.semantic[pixels] == new).all()
    assert set(result.swaps) <= {26000, 26001, 26002, 24000}


def test_class_swap_draws_every_other_class_and_respects_min_pixels():
    semantic, instance = _scene()
    targets = set()
    for seed in range(200):
        result = swap_instances(semantic, instance, SYNTHETIC, np.random.default_rng(seed), probability=1.0)
        targets |= {new for iid, (old, new) in result.swaps.items() if iid == 26000}
    assert targets == set(range(SYNTHETIC.num_classes)) - {CAR}
    # cars have 48 pixels, the person 40
    cars_only = swap_instances(semantic, instance, SYNTHETIC, np.random.default_rng(0), probability=1.0, min_pixels=41)
    assert set(cars_only.swaps) == {26000, 26001, 26002}
    none = swap_instances(semantic, instance, SYNTHETIC, np.random.default_rng(0), probability=1.0, min_pixels=49)
    assert none.swaps == {}


def test_class_swap_without_candidates_returns_the_map_unchanged():
    semantic = np.full((8, 8), ROAD, np.uint8)
    instance = np.full((8, 8), 7, np.int32)
    result = swap_instances(semantic, instance, SYNTHETIC, np.random.default_rng(0))
    assert result.swaps == {} and not result.mask.any()
    np.testing.assert_array_equal(result.semantic, semantic)


def test_class_swap_labels_mark_swapped_pixels_and_ignore_ground_truth_ignore():
    semantic, instance = _scene()
    result = swap_instances(semantic, instance, SYNTHETIC, np.random.default_rng(3))
    labels = class_swap_labels(result.mask, semantic)
    assert set(np.unique(labels)) <= {0, 1, IGNORE_INDEX}
    np.testing.assert_array_equal(labels == 1, result.mask)
    np.testing.assert_array_equal(labels == IGNORE_INDEX, semantic == IGNORE_INDEX)


def test_void_pixels_become_anomaly_labels_and_nothing_else_does():
    semantic, _ = _scene()
    void = semantic == IGNORE_INDEX                 # the void object
    semantic = semantic.copy()
    semantic[0:3, 0:3] = IGNORE_INDEX               # ignore in the ground truth but not void (e.g. a border)
    labels = void_anomaly_labels(void, semantic)
    np.testing.assert_array_equal(labels == 1, void)
    expected_ignore = (semantic == IGNORE_INDEX) & ~void
    np.testing.assert_array_equal(labels == IGNORE_INDEX, expected_ignore)
    assert (labels[~void & ~expected_ignore] == 0).all()
