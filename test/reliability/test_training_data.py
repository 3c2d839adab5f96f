"""Training data problems stop ``anomaly_seg train`` before any training starts.

Broken copies of a tiny generated synthetic dataset: a missing label file, an image/label size
mismatch, an unreadable label file, an empty split (no images, or a limit of 0 frames). For each, the
command exits with status 2 and one line naming the file, and leaves no model, checkpoint or log
directory behind.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.cli import main

_SETS = ['input_sizes={segmentation: [64, 128], synthesis: [32, 64], perceptual: [32, 64], dissimilarity: [32, 64]}',
         'segmentation.batch_size=2', 'synthesis.batch_size=2', 'dissimilarity.batch_size=2']


@pytest.fixture(scope='module')
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic dataset of 3 train and 2 val frames of 128x64 (Cityscapes layout)."""
    from anomaly_seg_ros.data.synthetic import write_dataset

    root = tmp_path_factory.mktemp('synthetic') / 'good'
    write_dataset(root, {'train': 3, 'val': 2}, size=(128, 64), seed=0, progress=False)
    return root


def _first(root: Path, pattern: str) -> Path:
    return sorted(root.rglob(pattern))[0]


def _missing_label(root: Path) -> tuple[Path, list[str]]:
    label = _first(root / 'gtFine' / 'train', '*_gtFine_labelIds.png')
    label.unlink()
    return label, []


def _size_mismatch(root: Path) -> tuple[Path, list[str]]:
    label = _first(root / 'gtFine' / 'val', '*_gtFine_labelIds.png')
    cv2.imwrite(str(label), np.zeros((32, 64), np.uint8))
    return label, []


def _unreadable_label(root: Path) -> tuple[Path, list[str]]:
    label = _first(root / 'gtFine' / 'val', '*_gtFine_instanceIds.png')
    label.write_bytes(label.read_bytes()[:40])
    return label, []


def _empty_split(root: Path) -> tuple[Path, list[str]]:
    split = root / 'leftImg8bit' / 'val'
    for image in split.rglob('*.png'):
        image.unlink()
    return split, []


def _limit_zero(root: Path) -> tuple[Path, list[str]]:
    return root, ['--train-limit', '0']


BREAKAGES: dict[str, Callable[[Path], tuple[Path, list[str]]]] = {
    'missing_label_file': _missing_label,
    'image_label_size_mismatch': _size_mismatch,
    'unreadable_label_file': _unreadable_label,
    'empty_split': _empty_split,
    'no_frames_within_the_limit': _limit_zero,
}


def _broken_copy(dataset: Path, tmp_path: Path, breakage: str) -> tuple[Path, Path, list[str]]:
    root = tmp_path / breakage
    shutil.copytree(dataset, root)
    named, extra = BREAKAGES[breakage](root)
    return root, named, extra


def _argv(stage: str, root: Path, out: Path, extra: list[str]) -> list[str]:
    argv = ['train', stage, '--dataset', 'synthetic', '--root', str(root), '--out', str(out), '--quiet',
            '--device', 'cpu', *extra]
    argv += {'all': ['--epochs-segmentation', '1'], 'calibrate': []}.get(stage, ['--epochs', '1'])
    for item in _SETS:
        argv += ['--set', item]
    return argv


@pytest.mark.parametrize('stage', ['segmentation', 'synthesis', 'dissimilarity', 'calibrate', 'all'])
@pytest.mark.parametrize('breakage', list(BREAKAGES))
def test_bad_training_data_stops_the_command_before_it_writes_anything(dataset, tmp_path, capsys, breakage, stage):
    root, named, extra = _broken_copy(dataset, tmp_path, breakage)
    out = tmp_path / 'model'
    assert main(_argv(stage, root, out, extra)) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith('anomaly_seg train: error: '), err
    assert str(named) in lines[0], (str(named), lines[0])
    assert not out.exists(), sorted(p.relative_to(out).as_posix() for p in out.rglob('*'))


def test_the_good_dataset_passes_the_check_and_the_message_comes_without_a_traceback(dataset, tmp_path):
    from anomaly_seg_ros.training.config import DataConfig
    from anomaly_seg_ros.training.frames import check_data

    check_data(DataConfig(dataset='synthetic', root=str(dataset)))  # nothing to complain about
    root, named, extra = _broken_copy(dataset, tmp_path, 'image_label_size_mismatch')
    out = tmp_path / 'model'
    result = subprocess.run([sys.executable, '-m', 'anomaly_seg_ros.cli', *_argv('segmentation', root, out, extra)],
                            capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONWARNINGS='ignore'))
    assert result.returncode == 2, result.stderr
    assert 'Traceback' not in result.stderr + result.stdout
    assert 'size mismatch: image ' in result.stderr and str(named) in result.stderr
    assert not out.exists()
