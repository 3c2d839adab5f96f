"""Readers of anomaly sets: Road Anomaly, Fishyscapes (SynBoost layout), plain folder."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.data import FishyscapesDataset, FolderDataset, RoadAnomalyDataset
from anomaly_seg_ros.errors import DatasetError


def _pair(root: Path, image_dir: str, label_dir: str, name: str, ext: str = '.png', label=None,
          size=(12, 6)) -> None:
    (root / image_dir).mkdir(parents=True, exist_ok=True)
    (root / label_dir).mkdir(parents=True, exist_ok=True)
    w, h = size
    cv2.imwrite(str(root / image_dir / f'{name}{ext}'), np.full((h, w, 3), 90, np.uint8))
    if label is None:
        label = np.zeros((h, w), np.uint8)
        label[0, 0], label[1, 1], label[2, 2] = 1, 255, 7
    cv2.imwrite(str(root / label_dir / f'{name}.png'), label)


def test_road_anomaly_reader_maps_label_2_to_anomaly(shared_data):
    dataset = RoadAnomalyDataset(shared_data / 'road_anomaly')
    assert len(dataset) == 60
    assert dataset.label_set is None
    sample = dataset[0]
    assert sample.name == 'animals01_Guiguinto_railway_station_Calves'
    assert sample.image.shape == (720, 1280, 3)
    assert sample.anomaly.dtype == np.uint8 and set(np.unique(sample.anomaly)) == {0, 1}
    raw = cv2.imread(str(shared_data / 'road_anomaly' / 'frames' / f'{sample.name}.labels' / 'labels_semantic.png'),
                     cv2.IMREAD_UNCHANGED)
    assert np.array_equal(sample.anomaly == 1, raw == 2)
    assert sample.semantic is None and sample.instance is None and sample.void is None


def test_road_anomaly_reader_raises_on_missing_label(tmp_path):
    (tmp_path / 'frames').mkdir()
    cv2.imwrite(str(tmp_path / 'frames' / 'cow.jpg'), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DatasetError, match=r'label file missing for image .*cow\.jpg.*cow\.labels'):
        RoadAnomalyDataset(tmp_path)


def test_fishyscapes_reader_pairs_original_and_labels_and_keeps_0_1_255(tmp_path):
    _pair(tmp_path, 'original', 'labels', 'frame_0001')
    dataset = FishyscapesDataset(tmp_path)
    assert dataset.names == ['frame_0001']
    anomaly = dataset[0].anomaly
    assert anomaly[0, 0] == 1 and anomaly[1, 1] == 255
    assert anomaly[2, 2] == 255                       # values other than 0/1 are ignored
    assert anomaly[0, 1] == 0


def test_fishyscapes_reader_raises_on_size_mismatch(tmp_path):
    _pair(tmp_path, 'original', 'labels', 'f', label=np.zeros((5, 5), np.uint8))
    with pytest.raises(DatasetError, match=r'size mismatch: image .*original/f\.png is 12x6 but label .*labels/f\.png'):
        FishyscapesDataset(tmp_path)[0]


def test_fishyscapes_reader_raises_without_labels_folder(tmp_path):
    (tmp_path / 'original').mkdir()
    with pytest.raises(DatasetError, match='label folder not found: .*labels'):
        FishyscapesDataset(tmp_path)


def test_folder_reader_matches_images_and_labels_by_stem_across_extensions(tmp_path):
    _pair(tmp_path, 'images', 'labels', 'b', ext='.jpg')
    _pair(tmp_path, 'images', 'labels', 'a', ext='.png')
    dataset = FolderDataset(tmp_path)
    assert dataset.names == ['a', 'b']
    assert dataset[1].image.shape == (6, 12, 3)
    assert dataset[1].anomaly[0, 0] == 1


def test_folder_reader_raises_on_missing_label_naming_the_image(tmp_path):
    _pair(tmp_path, 'images', 'labels', 'a')
    cv2.imwrite(str(tmp_path / 'images' / 'lonely.jpg'), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DatasetError, match=r'label file missing for image .*lonely\.jpg'):
        FolderDataset(tmp_path)
    assert FolderDataset(tmp_path, require_labels=False)[1].anomaly is None


def test_folder_reader_raises_on_two_labels_with_one_stem(tmp_path):
    _pair(tmp_path, 'images', 'labels', 'a')
    cv2.imwrite(str(tmp_path / 'labels' / 'a.jpg'), np.zeros((6, 12), np.uint8))
    with pytest.raises(DatasetError, match="two files share the name 'a'"):
        FolderDataset(tmp_path)


def test_folder_reader_raises_on_empty_folder(tmp_path):
    (tmp_path / 'images').mkdir()
    (tmp_path / 'labels').mkdir()
    with pytest.raises(DatasetError, match='no images found in .*images'):
        FolderDataset(tmp_path)


def test_fishyscapes_reader_reads_the_synthetic_anomaly_split(synthetic_root):
    dataset = FishyscapesDataset(synthetic_root / 'anomaly_test')
    assert len(dataset) == 3
    for sample in dataset:
        assert set(np.unique(sample.anomaly)) <= {0, 1, 255}
        assert (sample.anomaly == 1).any()
