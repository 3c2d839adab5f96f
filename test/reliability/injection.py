"""A backend wrapper that breaks a real backend on purpose: non-finite values, slow stages, a marker file.

``InjectingBackend(backend, poison=('segmentation', 'entropy'))`` writes NaN/Inf into that output
whenever ``when(image)`` is true (default: always); ``delay_s`` makes a stage sleep first (a long
inference) whenever ``slow_when(image)`` is true, and ``marker`` then gets one line as the stage starts,
so a test can tell inference is running.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np


def is_black(image: np.ndarray) -> bool:
    """True for the prepared segmentation input of an (almost) black frame, (1, 3, H, W) in [0, 1]."""
    return float(np.max(image)) < 0.02


class InjectingBackend:
    """Wraps any backend (see :class:`anomaly_seg_ros.runtime.base.Backend`)."""

    def __init__(self, backend: Any, poison: tuple[str, str] | None = None, value: float = float('nan'),
                 when: Callable[[np.ndarray], bool] | None = None, delay_s: float = 0.0,
                 slow_when: Callable[[np.ndarray], bool] | None = None, marker: Path | None = None) -> None:
        self.inner = backend
        self.name = backend.name
        self.device = backend.device
        self.poison = poison
        self.value = value
        self.when = when or (lambda image: True)
        self.delay_s = delay_s
        self.slow_when = slow_when or (lambda image: True)
        self.marker = marker
        self.poisoned = 0

    def upload(self, array: np.ndarray) -> Any:
        return self.inner.upload(array)

    def download(self, value: Any) -> np.ndarray:
        return self.inner.download(value)

    def close(self) -> None:
        self.inner.close()

    def run(self, stage: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        image = self.inner.download(inputs['image'])
        if self.delay_s and self.slow_when(image):
            if self.marker is not None:
                with open(self.marker, 'a') as handle:
                    handle.write(f'{stage} {time.monotonic()}\n')
            time.sleep(self.delay_s)
        outputs = self.inner.run(stage, inputs)
        if self.poison is not None and self.poison[0] == stage and self.when(image):
            tensor = self.poison[1]
            values = np.array(self.inner.download(outputs[tensor]), copy=True)
            values.reshape(-1)[:: 7] = self.value
            outputs = {**outputs, tensor: self.inner.upload(values)}
            self.poisoned += 1
        return outputs
