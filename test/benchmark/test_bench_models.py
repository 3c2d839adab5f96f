"""Random-weight model directories for benchmarks are made once and reused from the cache."""
from __future__ import annotations

import pytest

from anomaly_seg_ros.benchmark.models import random_model_dir, resolve_model_dir
from anomaly_seg_ros.model_config import load_model_config
from anomaly_seg_ros.runtime.stage_files import onnx_files_present

pytestmark = pytest.mark.slow  # exports a (tiny) model


def test_random_model_dir_is_exported_once_then_reused(tmp_path, tiny_model_config):
    first = random_model_dir('tiny', tmp_path, config=tiny_model_config)
    config = load_model_config(first)
    assert onnx_files_present(first, config)
    assert all((first / f'{stage}.pt').is_file() for stage in config.stages)
    assert config.provenance['weights'] == 'random'
    stamp = (first / 'segmentation.onnx').stat().st_mtime_ns
    again = random_model_dir('tiny', tmp_path, config=tiny_model_config)
    assert again == first and (again / 'segmentation.onnx').stat().st_mtime_ns == stamp
    other_seed = random_model_dir('tiny', tmp_path, config=tiny_model_config, seed=1)
    assert load_model_config(other_seed).provenance['seed'] == 1


def test_a_given_model_directory_is_used_as_is(tmp_path):
    path, how = resolve_model_dir(tmp_path / 'mine', paper_scale=True, cache_dir=tmp_path, backends=['onnxruntime'])
    assert path == tmp_path / 'mine' and how == 'given'
