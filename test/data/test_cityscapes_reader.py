"""The Cityscapes-format reader, on generated data and on hand-made broken layouts."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.data import CityscapesDataset, Sample
from anomaly_seg_ros.errors import DatasetError
from anomaly_seg_ros.labels import CITYSCAPES, SYNTHETIC


def _write_pair(root: Path, split: str, name: str, size=(16, 8), label_size=None, label_value=7,
                instances=True) -> None:
    w, h = size
    image_dir = root / 'leftImg8bit' / split / 'city'
    gt_dir = root / 'gtFine' / split / 'city'
    image_dir.mkdir(parents=True, exist_ok=True)
    gt_dir.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(image_dir / f'{name}_leftImg8bit.png'), np.full((h, w, 3), 100, np.uint8))
    lw, lh = label_size or size
    labels = np.full((lh, lw), label_value, np.uint8)
    labels[:, : lw // 2] = 26
    cv2.imwrite(str(gt_dir / f'{name}_gtFine_labelIds.png'), labels)
    if instances:
        inst = labels.astype(np.uint16)
        inst[:, : lw // 2] = 26001
        cv2.imwrite(str(gt_dir / f'{name}_gtFine_instanceIds.png'), inst)


def test_cityscapes_reader_loads_images_train_ids_instances_and_void(tmp_path):
    _write_pair(tmp_path, 'val', 'aachen_000000_000019', label_value=5)
    dataset = CityscapesDataset(tmp_path, 'val')
    assert len(dataset) == 1 and dataset.names == ['aachen_000000_000019']
    assert dataset.label_set is CITYSCAPES and dataset.root == tmp_path
    sample = dataset[0]
    assert isinstance(sample, Sample)
    assert sample.image.shape == (8, 16, 3) and sample.image.dtype == np.uint8
    assert sample.semantic.dtype == np.uint8
    assert set(np.unique(sample.semantic)) == {13, 255}                     # car -> 13; dynamic (5) -> ignore
    assert sample.instance.dtype == np.int32 and set(np.unique(sample.instance)) == {5, 26001}
    assert sample.void.dtype == bool and sample.void[:, 8:].all() and not sample.void[:, :8].any()
    assert sample.anomaly is None
    assert set(np.unique(dataset.raw_labels(0))) == {5, 26}


def test_cityscapes_reader_maps_label_ids_through_the_given_label_set(tmp_path):
    _write_pair(tmp_path, 'train', 'a', label_value=7)
    sample = CityscapesDataset(tmp_path, 'train', SYNTHETIC)[0]
    assert set(np.unique(sample.semantic)) == {SYNTHETIC.train_id('car'), SYNTHETIC.train_id('road')}


def test_cityscapes_reader_without_instance_files_gives_no_instance_map(tmp_path):
    _write_pair(tmp_path, 'train', 'a', instances=False)
    assert CityscapesDataset(tmp_path, 'train')[0].instance is None
    with pytest.raises(DatasetError, match='a_gtFine_instanceIds.png'):
        CityscapesDataset(tmp_path, 'train', require_instances=True)


def test_cityscapes_reader_raises_on_missing_label(tmp_path):
    _write_pair(tmp_path, 'train', 'a')
    _write_pair(tmp_path, 'train', 'b')
    (tmp_path / 'gtFine' / 'train' / 'city' / 'b_gtFine_labelIds.png').unlink()
    with pytest.raises(DatasetError, match=r'label file missing for image .*b_leftImg8bit\.png.*b_gtFine_labelIds'):
        CityscapesDataset(tmp_path, 'train')


def test_cityscapes_reader_raises_on_size_mismatch_when_loading(tmp_path):
    _write_pair(tmp_path, 'train', 'a', label_size=(8, 8))
    dataset = CityscapesDataset(tmp_path, 'train')
    with pytest.raises(DatasetError, match=r'size mismatch: image .*a_leftImg8bit\.png is 16x8 but label .* is 8x8'):
        dataset[0]


def test_cityscapes_reader_raises_on_empty_split(tmp_path):
    (tmp_path / 'leftImg8bit' / 'test').mkdir(parents=True)
    (tmp_path / 'gtFine' / 'test').mkdir(parents=True)
    with pytest.raises(DatasetError, match=r'no \*_leftImg8bit.png images found in .*test'):
        CityscapesDataset(tmp_path, 'test')


def test_cityscapes_reader_names_the_splits_present_when_the_split_is_missing(tmp_path):
    _write_pair(tmp_path, 'train', 'a')
    with pytest.raises(DatasetError, match="split 'val' not found.*splits present: train"):
        CityscapesDataset(tmp_path, 'val')
    with pytest.raises(DatasetError, match='no leftImg8bit/ folder'):
        CityscapesDataset(tmp_path / 'nowhere', 'train')


def test_cityscapes_reader_raises_on_unreadable_image(tmp_path):
    _write_pair(tmp_path, 'train', 'a')
    (tmp_path / 'leftImg8bit' / 'train' / 'city' / 'a_leftImg8bit.png').write_bytes(b'not a png')
    with pytest.raises(DatasetError, match='cannot read image .*a_leftImg8bit.png'):
        CityscapesDataset(tmp_path, 'train')[0]


def test_cityscapes_reader_indexing_supports_negative_indices_and_iteration(tmp_path):
    for name in ('a', 'b', 'c'):
        _write_pair(tmp_path, 'train', name)
    dataset = CityscapesDataset(tmp_path, 'train')
    assert dataset[-1].name == 'c'
    assert [s.name for s in dataset] == ['a', 'b', 'c']
    with pytest.raises(IndexError):
        dataset[3]


def test_cityscapes_reader_reads_the_generated_synthetic_splits(synthetic_root):
    for split, count in (('train', 4), ('val', 2)):
        dataset = CityscapesDataset(synthetic_root, split, SYNTHETIC, require_instances=True)
        assert len(dataset) == count
        sample = dataset[0]
        assert sample.image.shape == (128, 256, 3)
        assert sample.semantic.shape == sample.instance.shape == sample.void.shape == (128, 256)
        assert set(np.unique(sample.semantic)) <= set(range(SYNTHETIC.num_classes)) | {255}
