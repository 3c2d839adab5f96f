"""Writing a synthetic dataset folder: layout, manifest, determinism, resuming, refusals."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import yaml

from anomaly_seg_ros.data.synthetic import GENERATOR_VERSION, frame_paths, write_dataset
from anomaly_seg_ros.errors import DatasetError

COUNTS = {'train': 2, 'val': 1, 'anomaly_test': 1}
SIZE = (128, 64)


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob('*')) if p.is_file()}


def test_writer_produces_the_cityscapes_and_fishyscapes_layout(synthetic_root):
    assert (synthetic_root / 'leftImg8bit/train/synth/train_000000_leftImg8bit.png').is_file()
    assert (synthetic_root / 'gtFine/val/synth/val_000001_gtFine_labelIds.png').is_file()
    instance = cv2.imread(str(synthetic_root / 'gtFine/train/synth/train_000003_gtFine_instanceIds.png'),
                          cv2.IMREAD_UNCHANGED)
    assert instance.dtype == np.uint16 and instance.max() >= 24000
    assert (synthetic_root / 'anomaly_test/original/anomaly_test_000002.png').is_file()
    labels = cv2.imread(str(synthetic_root / 'anomaly_test/labels/anomaly_test_000002.png'), cv2.IMREAD_UNCHANGED)
    assert labels.dtype == np.uint8 and labels.shape == (128, 256)
    manifest = yaml.safe_load((synthetic_root / 'dataset.yaml').read_text())
    assert manifest['generator_version'] == GENERATOR_VERSION and manifest['seed'] == 7
    assert manifest['size'] == [256, 128] and manifest['label_set'] == 'synthetic'
    assert manifest['counts'] == {'train': 4, 'val': 2, 'anomaly_test': 3}
    assert not list(synthetic_root.rglob('*.partial'))


def test_same_seed_writes_identical_bytes_and_another_seed_differs(tmp_path):
    write_dataset(tmp_path / 'a', COUNTS, SIZE, seed=1, progress=False)
    write_dataset(tmp_path / 'b', COUNTS, SIZE, seed=1, progress=False)
    write_dataset(tmp_path / 'c', COUNTS, SIZE, seed=2, progress=False)
    a, b, c = _files(tmp_path / 'a'), _files(tmp_path / 'b'), _files(tmp_path / 'c')
    assert a == b
    assert a.keys() == c.keys()
    images = [k for k in a if 'leftImg8bit' in k or 'original' in k]
    assert all(a[k] != c[k] for k in images)


def test_rerun_skips_existing_frames_and_regenerates_missing_ones(tmp_path):
    root = tmp_path / 'synth'
    first = write_dataset(root, COUNTS, SIZE, seed=4, progress=False)
    assert (first.written, first.skipped) == (4, 0)
    before = _files(root)
    frame_paths(root, 'train', 1)['image'].unlink()
    again = write_dataset(root, COUNTS, SIZE, seed=4, progress=False)
    assert (again.written, again.skipped) == (1, 3)
    assert _files(root) == before
    more = write_dataset(root, {'train': 3}, SIZE, seed=4, progress=False)
    assert (more.written, more.skipped) == (1, 2)
    assert yaml.safe_load((root / 'dataset.yaml').read_text())['counts'] == {'train': 3, 'val': 1, 'anomaly_test': 1}


def test_writer_refuses_to_mix_seeds_or_sizes_in_one_folder(tmp_path):
    root = tmp_path / 'synth'
    write_dataset(root, {'train': 1}, SIZE, seed=4, progress=False)
    with pytest.raises(DatasetError, match='same --seed/--size'):
        write_dataset(root, {'train': 1}, SIZE, seed=5, progress=False)
    with pytest.raises(DatasetError, match='same --seed/--size'):
        write_dataset(root, {'train': 1}, (160, 64), seed=4, progress=False)


def test_writer_refuses_a_non_empty_folder_without_manifest(tmp_path):
    (tmp_path / 'notes.txt').write_text('mine')
    with pytest.raises(DatasetError, match='not empty and has no dataset.yaml'):
        write_dataset(tmp_path, {'train': 1}, SIZE, progress=False)


def test_writer_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='unknown synthetic split'):
        write_dataset(tmp_path / 'x', {'test': 1}, SIZE, progress=False)
    with pytest.raises(ValueError, match='at least 32x16'):
        write_dataset(tmp_path / 'x', {'train': 1}, (8, 8), progress=False)
