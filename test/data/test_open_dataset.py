"""open_dataset: every kind by name, the synthetic splits, clear errors."""
from __future__ import annotations

import pytest

from anomaly_seg_ros.data import (
    DATASET_KINDS,
    CamVidDataset,
    CityscapesDataset,
    FishyscapesDataset,
    RoadAnomalyDataset,
    dataset_splits,
    open_dataset,
)
from anomaly_seg_ros.errors import DatasetError
from anomaly_seg_ros.labels import SYNTHETIC


def test_open_dataset_knows_the_six_kinds():
    assert set(DATASET_KINDS) == {'cityscapes', 'camvid', 'synthetic', 'road_anomaly', 'fishyscapes', 'folder'}


def test_open_dataset_synthetic_splits_use_cityscapes_and_fishyscapes_readers(synthetic_root):
    train = open_dataset('synthetic', synthetic_root, 'train')
    assert isinstance(train, CityscapesDataset) and train.label_set is SYNTHETIC and len(train) == 4
    assert train[0].instance is not None
    anomaly = open_dataset('synthetic', synthetic_root, 'anomaly_test')
    assert isinstance(anomaly, FishyscapesDataset) and len(anomaly) == 3
    assert anomaly.root == synthetic_root / 'anomaly_test'
    assert dataset_splits('synthetic', synthetic_root) == ['train', 'val', 'anomaly_test']


def test_open_dataset_opens_cityscapes_format_with_a_label_set(synthetic_root):
    dataset = open_dataset('cityscapes', synthetic_root, 'val', label_set=SYNTHETIC)
    assert isinstance(dataset, CityscapesDataset) and dataset.label_set is SYNTHETIC


def test_open_dataset_opens_the_shared_real_sets(shared_data):
    assert isinstance(open_dataset('camvid', shared_data / 'camvid', 'train'), CamVidDataset)
    assert isinstance(open_dataset('road_anomaly', shared_data / 'road_anomaly'), RoadAnomalyDataset)
    assert dataset_splits('camvid', shared_data / 'camvid') == ['train', 'val', 'test']


def test_open_dataset_raises_on_unknown_kind(tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset kind 'kitti'; choose one of cityscapes"):
        open_dataset('kitti', tmp_path)


def test_open_dataset_raises_on_missing_root(tmp_path):
    with pytest.raises(DatasetError, match='dataset root not found: .*missing'):
        open_dataset('camvid', tmp_path / 'missing', 'train')


def test_open_dataset_asks_for_a_split_and_lists_those_present(synthetic_root):
    with pytest.raises(DatasetError, match='needs a split; splits present .*train, val, anomaly_test'):
        open_dataset('synthetic', synthetic_root)


def test_open_dataset_refuses_a_split_for_sets_without_splits(tmp_path):
    with pytest.raises(DatasetError, match='has no splits'):
        open_dataset('folder', tmp_path, 'train')


def test_open_dataset_explains_a_missing_synthetic_anomaly_split(tmp_path):
    with pytest.raises(DatasetError, match='anomaly_seg data synthetic'):
        open_dataset('synthetic', tmp_path, 'anomaly_test')
