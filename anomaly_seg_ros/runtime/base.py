"""The backend interface the pipeline is written against.

A backend runs one stage graph at a time, by stage and tensor names (see :mod:`..stages`). Values
it returns are backend-native (numpy arrays for ONNX Runtime on CPU, device buffers for TensorRT,
tensors for torch); the pipeline passes them unchanged into the next stage, so on a GPU backend
intermediate results never leave the device, and copies to the host only what it publishes.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ['Backend', 'BACKEND_NAMES']

BACKEND_NAMES = ('onnxruntime', 'tensorrt', 'torch')


@runtime_checkable
class Backend(Protocol):
    """Runs the stage graphs of one model directory."""

    #: 'onnxruntime', 'tensorrt' or 'torch'
    name: str
    #: human-readable device, e.g. 'cpu', 'cuda:0 (NVIDIA H100)'
    device: str

    def upload(self, array: np.ndarray) -> Any:
        """Host array -> backend-native value (a copy to the device where the backend has one)."""
        ...

    def run(self, stage: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Run ``stage`` on backend-native inputs named as in :data:`..stages.STAGES`."""
        ...

    def download(self, value: Any) -> np.ndarray:
        """Backend-native value -> host numpy array (blocks until the value is ready)."""
        ...

    def close(self) -> None:
        """Release sessions, engines, device buffers and streams."""
        ...
