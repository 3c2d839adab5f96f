"""The built-in label sets: Cityscapes 34 labelIds -> 19 train ids, CamVid 11 + void, synthetic 10."""
from __future__ import annotations

import numpy as np
import pytest

from anomaly_seg_ros.labels import CAMVID, CITYSCAPES, IGNORE_INDEX, SYNTHETIC, LabelSet, get_label_set


def test_cityscapes_maps_34_label_ids_to_19_train_ids():
    raw = np.arange(34, dtype=np.uint8)
    train = CITYSCAPES.to_train_ids(raw)
    assert CITYSCAPES.num_classes == 19
    assert sorted(set(train.tolist()) - {IGNORE_INDEX}) == list(range(19))
    # The official table: road 7 -> 0, sky 23 -> 10, person 24 -> 11, car 26 -> 13, bicycle 33 -> 18.
    assert [int(train[i]) for i in (7, 8, 11, 23, 24, 26, 33)] == [0, 1, 2, 10, 11, 13, 18]
    # Unlabeled ids and ids without a train id (parking, rail track, guard rail, ...) are ignored.
    assert all(train[i] == IGNORE_INDEX for i in (0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30))


def test_cityscapes_void_ids_are_label_ids_0_to_6_and_instances_24_to_33():
    assert CITYSCAPES.void_ids == (0, 1, 2, 3, 4, 5, 6)
    assert CITYSCAPES.instance_ids == tuple(range(24, 34))
    mask = CITYSCAPES.void_mask(np.array([[0, 5, 6, 7], [24, 26, 33, 4]], dtype=np.uint8))
    assert mask.tolist() == [[True, True, True, False], [False, False, False, True]]


def test_camvid_has_11_classes_and_void_11():
    assert CAMVID.num_classes == 11
    assert CAMVID.void_ids == (11,)
    train = CAMVID.to_train_ids(np.arange(13, dtype=np.uint8))
    assert train[:11].tolist() == list(range(11))
    assert train[11] == IGNORE_INDEX and train[12] == IGNORE_INDEX
    assert CAMVID.class_names[3] == 'road' and CAMVID.class_names[8] == 'car'


def test_synthetic_label_set_is_a_10_class_subset_of_cityscapes_label_ids():
    assert SYNTHETIC.num_classes == 10
    assert SYNTHETIC.class_names == ('road', 'sidewalk', 'building', 'pole', 'traffic sign', 'vegetation',
                                     'terrain', 'sky', 'person', 'car')
    used = {7: 0, 8: 1, 11: 2, 17: 3, 20: 4, 21: 5, 22: 6, 23: 7, 24: 8, 26: 9}
    train = SYNTHETIC.to_train_ids(np.arange(34, dtype=np.uint8))
    assert {i: int(train[i]) for i in used} == used
    assert all(train[i] == IGNORE_INDEX for i in range(34) if i not in used)
    assert 5 in SYNTHETIC.void_ids


@pytest.mark.parametrize('label_set', [CITYSCAPES, CAMVID, SYNTHETIC], ids=lambda ls: ls.name)
def test_label_set_round_trips_through_its_dict_form(label_set):
    again = LabelSet.from_dict(label_set.to_dict())
    assert again == label_set
    assert get_label_set(label_set.name) is label_set


def test_palette_colors_each_train_id_and_leaves_ignore_and_unused_ids_black():
    palette = CITYSCAPES.palette
    assert palette.shape == (256, 3) and palette.dtype == np.uint8
    assert [tuple(c) for c in palette[:CITYSCAPES.num_classes]] == [tuple(c) for c in CITYSCAPES.colors]
    assert not palette[CITYSCAPES.num_classes:].any()


def test_unknown_label_set_name_lists_the_built_in_ones():
    with pytest.raises(KeyError, match='cityscapes'):
        get_label_set('mapillary')
