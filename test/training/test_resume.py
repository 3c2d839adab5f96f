"""Checkpoints and --resume: a resumed run continues from the checkpoint's epoch and step."""
from __future__ import annotations

import csv

import pytest
import torch
import yaml

from anomaly_seg_ros.training import Checkpoint, train_segmentation, train_synthesis

pytestmark = pytest.mark.slow


class _Killed(Exception):
    pass


def _kill_after_epoch(n: int):
    def log(line: str) -> None:
        if f'epoch {n}/' in line:   # printed right after the epoch's checkpoint was written
            raise _Killed(line)
    return log


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_interrupted_segmentation_resumes_at_the_checkpoint_step_and_matches_a_straight_run(tmp_path, tiny_config):
    config = tiny_config(epochs=2)
    straight = train_segmentation(config, tmp_path / 'straight', show_progress=False, log=lambda s: None)
    with pytest.raises(_Killed):
        train_segmentation(config, tmp_path / 'resumed', show_progress=False, log=_kill_after_epoch(1))
    work = tmp_path / 'resumed' / 'training' / 'segmentation'
    first = Checkpoint(work).load()
    assert (first['epoch'], first['step']) == (1, straight.steps // 2)
    assert yaml.safe_load((work / 'config.yaml').read_text())['segmentation']['epochs'] == 2
    lines = []
    resumed = train_segmentation(config, tmp_path / 'resumed', resume=True, show_progress=False, log=lines.append)
    assert lines[0].startswith('segmentation: resuming') and 'epoch 1, step 3' in lines[0]
    assert (resumed.epochs, resumed.steps) == (straight.epochs, straight.steps) == (2, 6)
    end_straight = Checkpoint(tmp_path / 'straight' / 'training' / 'segmentation').load()
    end_resumed = Checkpoint(work).load()
    assert _same_state(end_straight['network'], end_resumed['network'])
    assert resumed.validation == straight.validation
    rows = list(csv.DictReader((work / 'metrics.csv').open()))
    assert [int(r['step']) for r in rows] == [3, 6]


def test_synthesis_trained_one_epoch_then_resumed_to_two_continues_step_and_weights(tmp_path, tiny_config):
    sets = {'synthesis': {'decay_start_epoch': None}}   # constant learning rates: 1 + 1 epochs == 2 epochs
    straight = train_synthesis(tiny_config(epochs=2, **sets), tmp_path / 'straight', show_progress=False,
                               log=lambda s: None)
    one = train_synthesis(tiny_config(epochs=1, **sets), tmp_path / 'resumed', show_progress=False,
                          log=lambda s: None)
    assert (one.epochs, one.steps) == (1, 3)
    two = train_synthesis(tiny_config(epochs=2, **sets), tmp_path / 'resumed', resume=True, show_progress=False,
                          log=lambda s: None)
    assert (two.epochs, two.steps) == (2, 6)
    a = Checkpoint(tmp_path / 'straight' / 'training' / 'synthesis').load()
    b = Checkpoint(tmp_path / 'resumed' / 'training' / 'synthesis').load()
    assert _same_state(a['generator'], b['generator'])
    assert _same_state(a['discriminator'], b['discriminator'])
    assert two.validation == straight.validation


def test_without_resume_a_run_starts_over(tmp_path, tiny_config):
    config = tiny_config(epochs=1)
    train_segmentation(config, tmp_path / 'model', show_progress=False, log=lambda s: None)
    again = train_segmentation(config, tmp_path / 'model', show_progress=False, log=lambda s: None)
    assert (again.epochs, again.steps) == (1, 3)
