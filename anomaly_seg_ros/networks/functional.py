"""Small exportable tensor helpers shared by the networks, the stage modules and training.

Everything here traces to a static ONNX graph (opset 17) when the input shapes are static: sizes are
read as Python ints (:func:`static_size`), nearest resizing of label maps gathers with constant
indices, and one-hot encoding compares against a constant ``arange`` (ONNX ``Equal`` + ``Cast``).
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

__all__ = [
    'channels',
    'nearest_downsample',
    'nearest_indices',
    'one_hot',
    'resize_bilinear',
    'resize_labels_nearest',
    'static_dim',
    'static_size',
]


def static_size(x: Tensor) -> tuple[int, int]:
    """(H, W) of a (..., H, W) tensor as Python ints.

    While tracing for ONNX export the sizes become constants of the graph (the export shapes are
    static), instead of ``Shape``/``Gather`` nodes; the tracer's warning about that is silenced here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        return int(x.shape[-2]), int(x.shape[-1])


def static_dim(x: Tensor, dim: int) -> int:
    """One dimension of ``x`` as a Python int (a graph constant while tracing, see :func:`static_size`)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        return int(x.shape[dim])


def channels(base: int, width: float) -> int:
    """A channel count scaled by a width multiplier (at least 1): ``round(base * width)``."""
    return max(1, int(round(base * width)))


def nearest_indices(in_size: int, out_size: int) -> list[int]:
    """Source indices of PyTorch's ``nearest`` resize along one axis (floor(dst * in / out))."""
    scale = np.float32(in_size) / np.float32(out_size)
    idx = np.floor(np.arange(out_size, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(idx, in_size - 1).tolist()


def nearest_downsample(x: Tensor, factor: int) -> Tensor:
    """Nearest downsampling by an integer factor: ``x[..., ::factor, ::factor]``.

    Identical to ``F.interpolate(x, scale_factor=1/factor, mode='nearest')`` where the size divides;
    exports as a ``Slice`` with constant steps.
    """
    if factor == 1:
        return x
    return x[..., ::factor, ::factor]


def resize_labels_nearest(labels: Tensor, size: tuple[int, int]) -> Tensor:
    """Nearest resize of an integer label map (N, H, W) to (N, h, w), any integer dtype kept.

    Gathers rows and columns with constant indices (PyTorch ``nearest`` convention), so the label
    values (including the ignore id 255) pass unchanged; exports as two ``Gather`` nodes.
    """
    h_in, w_in = static_size(labels)
    h, w = int(size[0]), int(size[1])
    if (h_in, w_in) == (h, w):
        return labels
    rows = torch.tensor(nearest_indices(h_in, h), dtype=torch.int64, device=labels.device)
    cols = torch.tensor(nearest_indices(w_in, w), dtype=torch.int64, device=labels.device)
    return labels.index_select(-2, rows).index_select(-1, cols)


def one_hot(labels: Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """One-hot encoding of a label map (N, H, W) (integer train ids) -> (N, C, H, W) in {0, 1}.

    Ids outside 0..C-1 (the ignore id 255) give an all-zero vector. Compares against a constant
    arange (ONNX ``Equal`` + ``Cast``), which ONNX Runtime and TensorRT both run.
    """
    classes = torch.arange(num_classes, dtype=labels.dtype, device=labels.device).view(1, num_classes, 1, 1)
    return (labels.unsqueeze(1) == classes).to(dtype)


def resize_bilinear(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize (align_corners=False, no antialias) of (N, C, H, W) to a static size.

    Returns ``x`` itself where the size already matches.
    """
    h, w = int(size[0]), int(size[1])
    if static_size(x) == (h, w):
        return x
    return torch.nn.functional.interpolate(x, size=(h, w), mode='bilinear', align_corners=False)
