"""Mixed precision for the trainers (``precision``: fp32, bf16, fp16) and the CUDA speed settings.

bf16 and fp16 run the forward passes under ``torch.autocast('cuda')``; fp16 adds a gradient scaler
(``torch.amp.GradScaler``) against underflowing gradients, bf16 needs none (float32's exponent range).
The weights, the optimizers and every loss stay in float32: the trainers compute losses outside
autocast on ``.float()`` outputs (cross-entropy, the GAN hinge and feature-matching terms, the VGG and
L1 terms), and validation and the data generator (softmax entropy and distance, the perceptual
difference) run in float32, so figures and generated sets do not depend on the precision.

CPU training is float32 only: bf16/fp16 on the CPU are refused with a clear message rather than
silently run slower (CPU autocast gains nothing on the cores this targets).

Channels-last memory format helps convolutions on tensor cores (CUDA with bf16/fp16), so it is on
there by default (``channels_last: null``); ``torch.backends.cudnn.benchmark`` (``cudnn_benchmark``)
picks the fastest convolution algorithms for the fixed training sizes on CUDA.
"""
from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from ..errors import AnomalySegError

__all__ = ['PRECISIONS', 'Precision', 'PrecisionError']

PRECISIONS = ('fp32', 'bf16', 'fp16')
_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


class PrecisionError(AnomalySegError):
    """The asked precision cannot run on this device."""


class Precision:
    """Autocast, gradient scaling and memory format of one training run.

    With ``fp32`` every method does exactly what the trainers did without it (plain ``backward`` and
    ``step``, no autocast, contiguous tensors).
    """

    def __init__(self, name: str, device: torch.device, channels_last: bool | None = None,
                 cudnn_benchmark: bool = True) -> None:
        if name not in PRECISIONS:
            raise PrecisionError(f'precision {name!r} unknown; choose one of {", ".join(PRECISIONS)}')
        if name != 'fp32' and device.type != 'cuda':
            raise PrecisionError(f'--precision {name} is mixed precision on CUDA; this run is on {device} '
                                 '(CPU training is float32): use --precision fp32 or a CUDA device')
        if name == 'bf16' and not torch.cuda.is_bf16_supported():
            raise PrecisionError(f'--precision bf16: {torch.cuda.get_device_name(device)} has no bfloat16 '
                                 'support (compute capability 8.0 or newer needed); use --precision fp16')
        self.name = name
        self.device = device
        self.dtype = _DTYPES.get(name)
        self.scaler = torch.amp.GradScaler('cuda') if name == 'fp16' else None
        self.channels_last = (device.type == 'cuda' and self.dtype is not None) if channels_last is None \
            else bool(channels_last)
        if device.type == 'cuda':
            torch.backends.cudnn.benchmark = bool(cudnn_benchmark)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The forward passes' context: CUDA autocast to bf16/fp16, nothing for fp32."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type='cuda', dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()``; with fp16 unscaled first and skipped on inf/NaN gradients."""
        if self.scaler is not None:
            self.scaler.step(optimizer)
        else:
            optimizer.step()

    def update(self) -> None:
        """Once per training step, after every optimizer stepped (fp16: adjusts the loss scale)."""
        if self.scaler is not None:
            self.scaler.update()

    def module(self, module: nn.Module) -> nn.Module:
        """``module`` in the run's memory format (in place)."""
        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    def input(self, x: torch.Tensor) -> torch.Tensor:
        """A 4-D input in the run's memory format."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def state_dict(self) -> dict[str, Any] | None:
        """The gradient scaler's state for the checkpoint (None without one)."""
        return self.scaler.state_dict() if self.scaler is not None else None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore the scaler from a checkpoint; a checkpoint of another precision leaves it fresh."""
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
