"""Runtime backends behind one interface (:class:`Backend`).

Backends are imported lazily: choosing ``onnxruntime`` or ``tensorrt`` never imports torch.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import BackendError
from ..model_config import ModelConfig
from .base import BACKEND_NAMES, Backend

__all__ = ['BACKEND_NAMES', 'Backend', 'create_backend']


def create_backend(name: str, model_dir: str | Path, config: ModelConfig, device: str | None = None,
                   precision: str = 'fp32') -> Backend:
    """Open the stage files of ``model_dir`` with backend ``name``.

    ``device``: ``cpu`` or ``cuda`` (``cuda:N``); ``None`` picks CUDA where the backend can use it.
    ``precision``: ``fp32``, ``fp16`` or ``int8``; ONNX Runtime then loads the FP16 graphs of
    ``anomaly_seg export --fp16`` or the Q/DQ graphs of ``--int8``. A TensorRT engine's precision is fixed
    when it is built: ``fp16``/``int8`` require such engines (:class:`~..errors.EngineMismatchError`
    otherwise), while ``fp32``, every
    caller's default, runs whatever the engines were built for (``backend.precision`` says which).
    The torch backend runs FP32 only.
    Raises :class:`~..errors.ModelError` for missing or mismatched files and
    :class:`~..errors.BackendError` when the backend's library or device is unavailable.
    """
    model_dir = Path(model_dir)
    if precision not in ('fp32', 'fp16', 'int8'):
        raise BackendError(f"precision must be 'fp32', 'fp16' or 'int8', got {precision!r}")
    if name == 'onnxruntime':
        from .onnxruntime_backend import OnnxRuntimeBackend
        return OnnxRuntimeBackend(model_dir, config, device=device, precision=precision)
    if precision != 'fp32' and name == 'torch':
        raise BackendError(f'the torch backend runs FP32 only; use onnxruntime or tensorrt for {precision}')
    if name == 'tensorrt':
        from .tensorrt_backend import TensorRTBackend
        # 'fp32' is also what callers pass when they name none: hold only fp16/int8 against the engines.
        return TensorRTBackend(model_dir, config, device=device, precision=None if precision == 'fp32' else precision)
    if name == 'torch':
        from .torch_backend import TorchBackend
        return TorchBackend(model_dir, config, device=device)
    raise BackendError(f'unknown backend {name!r}; choose one of {", ".join(BACKEND_NAMES)}')
