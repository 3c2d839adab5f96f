"""TensorRT on a real GPU: build the tiny model's engines and compare them with ONNX Runtime.

Skipped (with the reason) where TensorRT, cuda-python or a GPU is missing.
"""
from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest

from anomaly_seg_ros.model_config import load_model_config
from anomaly_seg_ros.pipeline import AnomalyPipeline


def _skip_reason() -> str | None:
    for module, what in (('tensorrt', 'TensorRT Python bindings'), ('cuda', 'cuda-bindings (cuda-python)')):
        if importlib.util.find_spec(module) is None:
            return f'{what} not installed'
    from anomaly_seg_ros.errors import BackendError
    from anomaly_seg_ros.runtime import cuda_memory

    try:
        if cuda_memory.device_count() < 1:
            return 'no CUDA GPU visible'
    except BackendError as exc:
        return str(exc)
    return None


_REASON = _skip_reason()
pytestmark = [pytest.mark.gpu, pytest.mark.slow,
              pytest.mark.skipif(_REASON is not None, reason=f'needs TensorRT and a GPU: {_REASON}')]


@pytest.mark.parametrize('precision, tolerance', [('fp32', 2e-3), ('fp16', 5e-2)])
def test_tensorrt_engines_reproduce_onnxruntime(tiny_exported_dir, tmp_path, precision, tolerance):
    from anomaly_seg_ros.export.tensorrt_build import build_engines

    model_dir = tmp_path / 'engines'
    shutil.copytree(tiny_exported_dir, model_dir)
    build_engines(model_dir, precision=precision, workspace_gb=1.0)
    frame = np.random.default_rng(0).integers(0, 256, (96, 160, 3), dtype=np.uint8)
    with AnomalyPipeline.from_model_dir(model_dir, backend='onnxruntime', device='cpu') as reference, \
            AnomalyPipeline.from_model_dir(model_dir, backend='tensorrt') as engines:
        want = reference.process(frame, output_size='network')
        got = engines.process(frame, output_size='network')
    assert np.mean(got.semantic == want.semantic) >= 0.99
    for name in ('entropy', 'softmax_distance', 'perceptual_difference', 'dissimilarity', 'anomaly'):
        assert np.abs(got.get(name) - want.get(name)).mean() < tolerance, name
    assert load_model_config(model_dir).tensorrt['precision'] == precision
