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

__all__ = ['Backend', 'BACKEND_NAMES', 'parse_device']

BACKEND_NAMES = ('onnxruntime', 'tensorrt', 'torch')


def parse_device(device: str) -> tuple[str, int] | None:
    """'cpu' -> ('cpu', 0), 'cuda' -> ('cuda', 0), 'cuda:N' -> ('cuda', N); ``None`` for anything else.

    Case and surrounding blanks are ignored. Backends say what they make of the result.
    """
    kind, colon, index = str(device).strip().lower().partition(':')
    if kind == 'cpu' and not colon:
        return 'cpu', 0
    if kind == 'cuda' and (not colon or index.isdecimal()):
        return 'cuda', int(index or 0)
    return None


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
