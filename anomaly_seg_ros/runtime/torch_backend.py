"""PyTorch backend for development: the stage modules of :mod:`..stage_modules`, eager mode.

Reads the ``<stage>.pt`` files of a model directory (:func:`..stage_modules.load_stage_modules`) and
runs them under ``torch.inference_mode()``; values are torch tensors on the backend's device, so on
CUDA intermediate results stay on the GPU. The reference the exported graphs are checked against.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import BackendError
from ..model_config import ModelConfig
from ..stages import STAGE_ORDER, StageSpec, stage_specs

__all__ = ['TorchBackend']


def _resolve_device(device: str | None) -> torch.device:
    if device is None:
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        resolved = torch.device(str(device).strip().lower())
    except RuntimeError as exc:
        raise BackendError(f'device {device!r} is not cpu, cuda or cuda:N') from exc
    if resolved.type == 'cuda':
        if not torch.cuda.is_available():
            raise BackendError(f'device {device!r} asked for, but this PyTorch has no CUDA device '
                               f'(torch {torch.__version__}); install a CUDA build of torch or use device cpu')
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise BackendError(f'device {device!r} does not exist ({torch.cuda.device_count()} CUDA devices)')
    elif resolved.type != 'cpu':
        raise BackendError(f'device {device!r} is not cpu, cuda or cuda:N')
    return resolved


class TorchBackend:
    """Runs the stage modules of ``model_dir`` in PyTorch.

    Args:
        model_dir: directory with ``model.yaml`` and ``<stage>.pt`` files.
        config: its metadata.
        device: ``None`` (CUDA when available), ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.
        stages: stages to load (default all four).
    Raises:
        ModelError: a ``.pt`` file is missing or does not fit the metadata.
        BackendError: the device is unavailable.
    """

    name = 'torch'

    def __init__(self, model_dir: str | Path, config: ModelConfig, device: str | None = None, *,
                 stages: Collection[str] = STAGE_ORDER) -> None:
        from ..stage_modules import load_stage_modules

        self._device = _resolve_device(device)
        self.device = str(self._device)
        self.config = config
        self._specs: dict[str, StageSpec] = stage_specs(config)
        self._modules = load_stage_modules(model_dir, config, self._device, stages=list(stages))

    def upload(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self._device)

    def run(self, stage: str, inputs: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        module = self._modules.get(stage)
        if module is None:
            raise ValueError(f'stage {stage!r} is not loaded (loaded: {", ".join(self._modules) or "none"})')
        spec = self._specs[stage]
        missing = [name for name in spec.input_names if name not in inputs]
        if missing:
            raise ValueError(f'stage {stage!r} needs inputs {missing}')
        values = [inputs[name] if isinstance(inputs[name], torch.Tensor) else self.upload(inputs[name])
                  for name in spec.input_names]
        with torch.inference_mode():
            outputs = module(*values)
        return dict(zip(spec.output_names, outputs))

    def download(self, value: Any) -> np.ndarray:
        if isinstance(value, torch.Tensor):
            return value.detach().cpu().numpy()
        return np.asarray(value)

    def close(self) -> None:
        self._modules.clear()

    def __enter__(self) -> TorchBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
