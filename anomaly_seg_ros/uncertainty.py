"""The paper's uncertainty maps (eqs. 1-3) and the ensemble (Sec. 3.3), in exportable torch.

Written once and used both inside the exported stage graphs and in training/evaluation. Nothing
here branches on tensor values, so every function traces to a static ONNX graph (opset 17).

Decisions (REFERENCE.md): entropy is normalized by log(C), a fixed bound, instead of per image; the
perceptual difference is scaled by a calibrated constant stored with the model and clipped to
[0, 1], with the authors' per-image min-max kept as an option.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .networks.functional import static_dim, static_size

__all__ = [
    'PERCEPTUAL_LAYER_WEIGHTS',
    'PERCEPTUAL_NORMALIZATIONS',
    'calibrate_perceptual_scale',
    'ensemble',
    'normalize_perceptual_difference',
    'perceptual_difference',
    'softmax_distance',
    'softmax_entropy',
    'softmax_maps',
]

# Weights of VGG19 relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (shallow -> deep), as pix2pixHD's loss.
PERCEPTUAL_LAYER_WEIGHTS: tuple[float, ...] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
PERCEPTUAL_NORMALIZATIONS = ('calibrated', 'minmax')
_EPS = 1e-8


def softmax_entropy(logits: Tensor) -> Tensor:
    """Softmax entropy (eq. 1) normalized by log(C).

    Args:
        logits: (N, C, H, W) float class scores (finite).

    Returns:
        (N, 1, H, W) float32 in [0, 1]: 1 for a uniform softmax, 0 for a one-hot one.
        For C = 1 the map is all zeros.
    """
    num_classes = static_dim(logits, 1)
    if num_classes < 2:
        return torch.zeros_like(logits[:, :1])
    log_p = F.log_softmax(logits, dim=1)
    entropy = -(log_p.exp() * log_p).sum(dim=1, keepdim=True)
    return (entropy / math.log(num_classes)).clamp(0.0, 1.0)


def softmax_distance(logits: Tensor) -> Tensor:
    """Softmax distance (eq. 2): 1 - p_max + p_second.

    Args:
        logits: (N, C, H, W) float class scores.

    Returns:
        (N, 1, H, W) float32 in [0, 1]: 0 for a one-hot softmax, 1 for a two-way tie.
        For C = 1 the map is all zeros.
    """
    if static_dim(logits, 1) < 2:
        return torch.zeros_like(logits[:, :1])
    top2 = torch.topk(F.softmax(logits, dim=1), k=2, dim=1).values
    return (1.0 - top2[:, :1] + top2[:, 1:2]).clamp(0.0, 1.0)


def softmax_maps(logits: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Argmax, entropy (eq. 1) and softmax distance (eq. 2) from shared terms, for the segmentation stage.

    The values of ``logits.max(dim=1).indices`` (the first maximal class), :func:`softmax_entropy` and
    :func:`softmax_distance` (to float rounding, ~1e-7), computed once from z = logits - max,
    e = exp(z), s = sum(e): entropy = log(s) - sum(e * z) / s, p_max = 1 / s, p_second = the largest e
    outside the argmax class / s (a tie keeps p_second = p_max). Only element-wise ops and channel
    reductions: ONNX Runtime runs Softmax/LogSoftmax/TopK on the channel axis of NCHW by transposing
    (28 of 43 ms of the light segmentation stage, 1 thread); this form takes 8 ms there and in PyTorch.

    Args:
        logits: (N, C, H, W) float class scores (finite).

    Returns:
        (argmax int64 (N, H, W), entropy f32 (N, 1, H, W) in [0, 1], distance f32 (N, 1, H, W) in [0, 1]).
    """
    num_classes = static_dim(logits, 1)
    top, index = logits.max(dim=1, keepdim=True)
    if num_classes < 2:
        zeros = torch.zeros_like(top)
        return index[:, 0], zeros, zeros
    z = logits - top
    e = z.exp()
    s = e.sum(dim=1, keepdim=True)
    entropy = (s.log() - (e * z).sum(dim=1, keepdim=True) / s) / math.log(num_classes)
    classes = torch.arange(num_classes, dtype=index.dtype, device=logits.device).view(1, num_classes, 1, 1)
    second = e.masked_fill(classes == index, 0.0).amax(dim=1, keepdim=True)  # a scalar fill: no constant map
    distance = 1.0 - (1.0 - second) / s
    return index[:, 0], entropy.clamp(0.0, 1.0), distance.clamp(0.0, 1.0)


def perceptual_difference(features_x: Sequence[Tensor], features_r: Sequence[Tensor], size: tuple[int, int],
                          layer_weights: Sequence[float] = PERCEPTUAL_LAYER_WEIGHTS) -> Tensor:
    """Perceptual difference (eq. 3), before normalization.

    For each layer i the channel mean of |F_i(x) - F_i(r)| (the 1/M_i-weighted L1 norm per pixel),
    bilinearly upsampled to ``size`` (align_corners=False), summed with ``layer_weights``.

    Args:
        features_x, features_r: per-layer features (N, C_i, H_i, W_i) of the camera and the
            synthesized image (VGG19 relu1_1 ... relu5_1).
        size: (H, W) of the output map.
        layer_weights: one weight per layer (default 1/32, 1/16, 1/8, 1/4, 1).

    Returns:
        (N, 1, H, W) float32, >= 0, zero where the two images are identical.
    """
    if not len(features_x) == len(features_r) == len(layer_weights):
        raise ValueError(f'{len(features_x)} and {len(features_r)} feature maps for '
                         f'{len(layer_weights)} layer weights')
    height, width = int(size[0]), int(size[1])
    total: Tensor | None = None
    for fx, fr, weight in zip(features_x, features_r, layer_weights):
        diff = (fx - fr).abs().mean(dim=1, keepdim=True)
        if static_size(diff) != (height, width):
            diff = F.interpolate(diff, size=(height, width), mode='bilinear', align_corners=False)
        term = diff * float(weight)
        total = term if total is None else total + term
    if total is None:
        raise ValueError('perceptual_difference needs at least one layer')
    return total


def normalize_perceptual_difference(raw: Tensor, normalization: str = 'calibrated', scale: float = 1.0) -> Tensor:
    """Map a raw perceptual difference (N, 1, H, W) >= 0 to [0, 1].

    ``'calibrated'``: ``clip(raw * scale, 0, 1)`` with a scale fixed on training data (a pixel's value
    does not depend on the rest of the frame). ``'minmax'``: per-image
    ``(raw - min) / (max - min)`` as the authors (all-zero where the image's map is constant).
    """
    if normalization == 'calibrated':
        return (raw * float(scale)).clamp(0.0, 1.0)
    if normalization == 'minmax':
        low = raw.amin(dim=(2, 3), keepdim=True)
        high = raw.amax(dim=(2, 3), keepdim=True)
        return ((raw - low) / (high - low).clamp_min(_EPS)).clamp(0.0, 1.0)
    raise ValueError(f'unknown perceptual normalization {normalization!r}; choose one of '
                     f'{PERCEPTUAL_NORMALIZATIONS}')


def calibrate_perceptual_scale(raw: Tensor, quantile: float = 0.99) -> float:
    """The ``scale`` that maps the ``quantile`` of raw perceptual differences (training data) to 1.

    Args:
        raw: raw perceptual differences of many pixels (any shape), e.g. a subsample over frames.
        quantile: which quantile becomes 1.0 (values above are clipped).
    """
    values = raw.detach().flatten().float()
    if values.numel() > 1_000_000:  # torch.quantile's input limit; a strided subsample suffices
        values = values[:: values.numel() // 1_000_000 + 1]
    q = float(torch.quantile(values, quantile))
    return 1.0 / q if q > _EPS else 1.0


def ensemble(dissimilarity: Tensor, entropy: Tensor, perceptual: Tensor, distance: Tensor,
             weights: Tensor | Sequence[float]) -> Tensor:
    """Weighted average of the four anomaly maps (Sec. 3.3).

    Args:
        dissimilarity, entropy, perceptual, distance: (N, 1, H, W) float maps in [0, 1].
        weights: (4,) non-negative weights in the order (dissimilarity, entropy,
            perceptual_difference, softmax_distance), normalized here to sum 1.

    Returns:
        (N, 1, H, W) float32 in [0, 1].
    """
    w = torch.as_tensor(weights, dtype=dissimilarity.dtype, device=dissimilarity.device).reshape(4)
    w = w / w.sum().clamp_min(_EPS)
    return w[0] * dissimilarity + w[1] * entropy + w[2] * perceptual + w[3] * distance
