"""The CamVid (SegNet split) reader, on a few real files and on broken layouts."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.data import CamVidDataset
from anomaly_seg_ros.errors import DatasetError
from anomaly_seg_ros.labels import CAMVID


def test_camvid_reader_reads_the_shared_segnet_split(shared_data):
    counts = {split: len(CamVidDataset(shared_data / 'camvid', split)) for split in ('train', 'val', 'test')}
    assert counts == {'train': 367, 'val': 101, 'test': 233}  # the whole SegNet split
    dataset = CamVidDataset(shared_data / 'camvid', 'val')
    assert dataset.label_set is CAMVID
    sample = dataset[0]
    assert sample.name == dataset.names[0]
    assert sample.image.shape == (360, 480, 3) and sample.image.dtype == np.uint8
    assert sample.semantic.shape == (360, 480) and sample.semantic.dtype == np.uint8
    raw = dataset.raw_labels(0)
    assert np.array_equal(sample.semantic == 255, raw == 11)
    assert np.array_equal(sample.void, raw == 11)
    assert sample.instance is None and sample.anomaly is None


def test_camvid_reader_raises_on_missing_label(tmp_path):
    (tmp_path / 'train').mkdir()
    (tmp_path / 'trainannot').mkdir()
    cv2.imwrite(str(tmp_path / 'train' / 'x.png'), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DatasetError, match=r'label file missing for image .*x\.png.*trainannot'):
        CamVidDataset(tmp_path, 'train')


def test_camvid_reader_raises_on_missing_split_and_names_present_ones(tmp_path):
    (tmp_path / 'train').mkdir()
    with pytest.raises(DatasetError, match="split 'test' not found.*splits present: train"):
        CamVidDataset(tmp_path, 'test')
    with pytest.raises(DatasetError, match='trainannot'):
        CamVidDataset(tmp_path, 'train')


def test_camvid_reader_raises_on_empty_split(tmp_path):
    (tmp_path / 'val').mkdir()
    (tmp_path / 'valannot').mkdir()
    with pytest.raises(DatasetError, match='no images found in .*val'):
        CamVidDataset(tmp_path, 'val')
