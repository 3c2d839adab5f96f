"""The torch backend: the stage modules of a model directory behind the Backend interface."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from anomaly_seg_ros.errors import BackendError
from anomaly_seg_ros.model_config import load_model_config
from anomaly_seg_ros.runtime import Backend, create_backend
from anomaly_seg_ros.stages import STAGE_ORDER, stage_specs


def test_torch_backend_runs_the_stage_modules_with_the_contract_shapes(tiny_torch_dir):
    config = load_model_config(tiny_torch_dir)
    backend = create_backend('torch', tiny_torch_dir, config, device='cpu')
    assert isinstance(backend, Backend) and backend.device == 'cpu'
    values = {'image': backend.upload(np.full((1, 3, 64, 128), 0.5, np.float32)),
              'ensemble_weights': backend.upload(np.asarray(config.ensemble_weights, np.float32))}
    for stage in STAGE_ORDER:
        outputs = backend.run(stage, values)
        assert all(isinstance(v, torch.Tensor) and not v.requires_grad for v in outputs.values())
        values.update(outputs)
    for spec in stage_specs(config).values():
        for tensor in spec.outputs:
            array = backend.download(values[tensor.name])
            assert array.shape == tensor.shape and array.dtype == np.dtype(tensor.dtype), tensor.name


def test_torch_backend_refuses_an_unavailable_device(tiny_torch_dir):
    config = load_model_config(tiny_torch_dir)
    if not torch.cuda.is_available():
        with pytest.raises(BackendError, match='no CUDA device'):
            create_backend('torch', tiny_torch_dir, config, device='cuda')
    with pytest.raises(BackendError, match='not cpu, cuda or cuda:N'):
        create_backend('torch', tiny_torch_dir, config, device='npu')
