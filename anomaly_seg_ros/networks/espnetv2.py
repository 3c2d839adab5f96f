"""ESPNetv2 semantic segmentation (Mehta et al., "ESPNetv2: A Light-weight, Power Efficient, and General
Purpose Convolutional Neural Network", CVPR 2019), laid out so that the public Cityscapes state dicts of
sacmehta/EdgeNets load unchanged (``load_state_dict(..., strict=True)``; see
:func:`anomaly_seg_ros.networks.pretrained.load_espnetv2_cityscapes`).

Encoder (``base_net``): a strided 3x3 conv (1/2), then three strided "down-samplers" (1/4, 1/8, 1/16),
each the concatenation of a 3x3 average pool of its input and a strided EESP block, plus a projection
of the input image average-pooled to the same size ("input reinforcement"); EESP blocks repeat at 1/8
(3 of them) and 1/16 (7). An EESP block reduces the channels with a grouped 1x1 conv, runs K=4 parallel
dilated depthwise 3x3 convs whose outputs are summed hierarchically (branch k += branch k-1), and
merges the concatenation with a grouped 1x1 conv (plus a residual where the shape allows).

Decoder: an efficient pyramid pooling module at 1/16, then three times: upsample x2, add a gated
projection of the encoder feature of that resolution, BN + PReLU, pyramid pooling; finally upsample to
the input size. Every upsampling is bilinear with ``align_corners=True`` (as the weights were trained).

Pyramid pooling resizes its projected feature by 2.0, 1.5, 1.0, 0.5 and 0.1 (ceil, at least 5), runs
one depthwise 3x3 conv per scale and brings each back to the feature size: bilinear upsampling, and
adaptive average pooling. While tracing for export, adaptive pooling with output sizes that do not
divide the input is written as constant-index gathers with constant weights
(:func:`adaptive_avg_pool2d_static`; PyTorch's own, faster on CPU, runs in eager mode), so the network
traces to a static ONNX graph (opset 17) without adaptive pooling (checked with ONNX Runtime).

Input H and W must be divisible by :attr:`ESPNetv2Segmentation.size_divisor` (16): the encoder rounds
odd sizes up at each of its four halvings and the decoder's x2 upsamplings would then not meet the
encoder features again.
"""
from __future__ import annotations

import math
import warnings
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .functional import static_dim, static_size

__all__ = [
    'BACKGROUND_INDEX',
    'CITYSCAPES_OUTPUTS',
    'ESPNETV2_CHANNELS',
    'ESPNetv2Segmentation',
    'adaptive_avg_pool2d_static',
    'espnetv2',
]

# Encoder widths at 1/2, 1/4, 1/8 and 1/16 per width scale (EdgeNets' table, classification levels 1-4).
ESPNETV2_CHANNELS: dict[float, tuple[int, int, int, int]] = {
    0.5: (16, 32, 64, 128),
    1.0: (32, 64, 128, 256),
    1.25: (32, 80, 160, 320),
    1.5: (32, 96, 192, 384),
    2.0: (32, 128, 256, 512),
}
CITYSCAPES_OUTPUTS = 20   # the 19 Cityscapes train ids, then a background class
BACKGROUND_INDEX = 19

_BRANCHES = 4                          # parallel dilated branches per EESP block
_REPEATS_1_8, _REPEATS_1_16 = 3, 7     # EESP blocks after the 1/8 and 1/16 down-samplers
_DECODER_BASE = 16                     # EdgeNets' decoder width for Cityscapes
_PYRAMID_SCALES = (2.0, 1.5, 1.0, 0.5, 0.1)
_PYRAMID_MIN_SIZE = 5


# --------------------------------------------------------------------------------------------------
# Static-shape resizing helpers
# --------------------------------------------------------------------------------------------------

@lru_cache(maxsize=256)
def _adaptive_taps(in_size: int, out_size: int) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[float, ...], ...]]:
    """Gather indices and weights of 1-D adaptive average pooling, one list per tap.

    Bin i covers [floor(i * in / out), ceil((i + 1) * in / out)) (PyTorch's rule); tap k of bin i reads
    ``start_i + k`` (clamped) with weight 1 / len_i, or 0 beyond the bin's end.
    """
    starts = [(i * in_size) // out_size for i in range(out_size)]
    ends = [-((-(i + 1) * in_size) // out_size) for i in range(out_size)]
    lengths = [e - s for s, e in zip(starts, ends)]
    taps = max(lengths)
    indices = tuple(tuple(min(s + k, in_size - 1) for s in starts) for k in range(taps))
    weights = tuple(tuple(1.0 / n if k < n else 0.0 for n in lengths) for k in range(taps))
    return indices, weights


def _constant(values: tuple[int, ...] | tuple[float, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    """A small constant tensor (a graph initializer while tracing; the tracer's notice is silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        return torch.tensor(values, dtype=dtype, device=device)


def _adaptive_pool_axis(x: Tensor, dim: int, out_size: int) -> Tensor:
    """Adaptive average pooling of ``x`` along one axis (-1 or -2) to ``out_size``, static sizes."""
    in_size = static_size(x)[dim]
    if in_size == out_size:
        return x
    if in_size % out_size == 0:  # equal bins: a plain average pool (what adaptive pooling computes too)
        kernel = (in_size // out_size, 1) if dim == -2 else (1, in_size // out_size)
        return F.avg_pool2d(x, kernel, kernel)
    indices, weights = _adaptive_taps(in_size, out_size)
    shape = (out_size, 1) if dim == -2 else (out_size,)
    out = None
    for idx, wgt in zip(indices, weights):
        index = _constant(idx, torch.int64, x.device)
        weight = _constant(wgt, x.dtype, x.device).view(shape)
        term = x.index_select(dim, index) * weight
        out = term if out is None else out + term
    assert out is not None
    return out


def adaptive_avg_pool2d_static(x: Tensor, size: tuple[int, int]) -> Tensor:
    """``F.adaptive_avg_pool2d(x, size)`` of (N, C, H, W) -> (N, C, h, w) that exports with any sizes.

    Pooling is separable (a bin is a product of a row range and a column range), so rows and columns
    are pooled in turn: an ``AveragePool`` where the output size divides the input, otherwise a few
    ``Gather`` nodes with constant indices, each scaled by constant bin weights and summed (as many
    taps as the longest bin). Equals PyTorch's adaptive pooling to float rounding (~1e-7).
    """
    return _adaptive_pool_axis(_adaptive_pool_axis(x, -2, int(size[0])), -1, int(size[1]))


def _adaptive_avg_pool2d(x: Tensor, size: tuple[int, int]) -> Tensor:
    """PyTorch's adaptive pooling in eager mode (faster on CPU); :func:`adaptive_avg_pool2d_static` while
    tracing or exporting, where the exporter refuses output sizes that do not divide the input."""
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return adaptive_avg_pool2d_static(x, size)
    return x if static_size(x) == size else F.adaptive_avg_pool2d(x, size)


def _upsample(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize with ``align_corners=True`` to a static size (the trained network's resize)."""
    if static_size(x) == size:
        return x
    return F.interpolate(x, size=size, mode='bilinear', align_corners=True)


def _pyramid_size(size: int, scale: float) -> int:
    return max(_PYRAMID_MIN_SIZE, int(math.ceil(size * scale)))


# --------------------------------------------------------------------------------------------------
# Building blocks. Attribute names and nesting follow the EdgeNets state dict keys.
# --------------------------------------------------------------------------------------------------

def _conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1, dilation: int = 1,
          groups: int = 1, bias: bool = False) -> nn.Conv2d:
    """A kxk conv with 'same' padding for odd kernels (the output is ceil(size / stride))."""
    return nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=dilation * (kernel // 2),
                     dilation=dilation, groups=groups, bias=bias)


class ConvBN(nn.Module):
    """conv -> BatchNorm -> optional per-channel PReLU, as attributes ``conv``, ``bn``, ``act`` (encoder).

    forward((N, in, H, W)) -> (N, out, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1,
                 prelu: bool = True) -> None:
        super().__init__()
        self.conv = _conv(in_channels, out_channels, kernel, stride, groups=groups)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act: nn.Module = nn.PReLU(out_channels) if prelu else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class _SequentialAs(nn.Module):
    """Holds an ``nn.Sequential`` under one attribute name (``cbr`` / ``br`` in the decoder's keys)."""

    def __init__(self, name: str, *layers: nn.Module) -> None:
        super().__init__()
        self._name = name
        self.add_module(name, nn.Sequential(*layers))

    def forward(self, x: Tensor) -> Tensor:
        return self._modules[self._name](x)  # type: ignore[misc]


def _conv_bn_prelu_seq(in_channels: int, out_channels: int, kernel: int, groups: int = 1) -> _SequentialAs:
    """Decoder conv + BN + PReLU with keys ``cbr.0`` (conv), ``cbr.1`` (BN), ``cbr.2`` (PReLU)."""
    return _SequentialAs('cbr', _conv(in_channels, out_channels, kernel, groups=groups),
                         nn.BatchNorm2d(out_channels), nn.PReLU(out_channels))


def _bn_prelu_seq(channels: int) -> _SequentialAs:
    """Decoder BN + PReLU with keys ``br.0`` (BN), ``br.1`` (PReLU)."""
    return _SequentialAs('br', nn.BatchNorm2d(channels), nn.PReLU(channels))


class _DepthwiseDilated(nn.Module):
    """A depthwise 3x3 conv (no bias, no BN) under the attribute ``conv``."""

    def __init__(self, channels: int, stride: int, dilation: int) -> None:
        super().__init__()
        self.conv = _conv(channels, channels, 3, stride, dilation=dilation, groups=channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class _BNPReLU(nn.Module):
    """BN + PReLU as attributes ``bn``, ``act`` (encoder)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.act = nn.PReLU(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(x))


class EESPBlock(nn.Module):
    """EESP: reduce (grouped 1x1), split into K dilated depthwise branches fused hierarchically, merge.

    The dilations are those of receptive fields 3, 5, 7, ... (one per branch), capped at
    ``receptive_limit`` (branches beyond it fall back to dilation 1) and sorted ascending.

    forward((N, in, H, W)) -> (N, out, ceil(H / stride), ceil(W / stride)). With stride 1 the result
    is PReLU(merged + input) (residual where shapes agree); with stride 2 (inside a down-sampler) the
    merged map is returned before any activation.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, branches: int = _BRANCHES,
                 receptive_limit: int = 7) -> None:
        super().__init__()
        if out_channels % branches:
            raise ValueError(f'EESP needs out_channels divisible by {branches}, got {out_channels}')
        width = out_channels // branches
        self.stride = stride
        self.residual = stride == 1 and in_channels == out_channels
        self.proj_1x1 = ConvBN(in_channels, width, 1, groups=branches)
        fields = sorted(f if f <= receptive_limit else 3 for f in (3 + 2 * i for i in range(branches)))
        self.dilations = tuple((f - 1) // 2 for f in fields)
        self.spp_dw = nn.ModuleList(_DepthwiseDilated(width, stride, d) for d in self.dilations)
        self.conv_1x1_exp = ConvBN(out_channels, out_channels, 1, groups=branches, prelu=False)
        self.br_after_cat = _BNPReLU(out_channels)
        self.module_act = nn.PReLU(out_channels)  # unused when stride 2 (kept: it is in the state dict)

    def forward(self, x: Tensor) -> Tensor:
        reduced = self.proj_1x1(x)
        branches: list[Tensor] = []
        for conv in self.spp_dw:
            out = conv(reduced)
            branches.append(out if not branches else out + branches[-1])
        merged = self.conv_1x1_exp(self.br_after_cat(torch.cat(branches, dim=1)))
        if self.stride != 1:
            return merged
        if self.residual:
            merged = merged + x
        return self.module_act(merged)


class DownSampler(nn.Module):
    """Strided stage: concat(avg_pool3x3/2(x), EESP/2(x)) + projection of the pooled image, PReLU.

    forward(x (N, in, H, W), image (N, 3, H/2, W/2) the input image average-pooled to half x's size)
    -> (N, out, H/2, W/2).
    """

    def __init__(self, in_channels: int, out_channels: int, receptive_limit: int) -> None:
        super().__init__()
        self.eesp = EESPBlock(in_channels, out_channels - in_channels, stride=2, receptive_limit=receptive_limit)
        self.inp_reinf = nn.Sequential(ConvBN(3, 3, 3), ConvBN(3, out_channels, 1, prelu=False))
        self.act = nn.PReLU(out_channels)

    def forward(self, x: Tensor, image: Tensor) -> Tensor:
        pooled = _halve(x)
        out = torch.cat([pooled, self.eesp(x)], dim=1) + self.inp_reinf(image)
        return self.act(out)


def _halve(x: Tensor) -> Tensor:
    """3x3 average pool, stride 2, padding 1, zeros counted (the encoder's pooling)."""
    return F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=True)


class ESPNetv2Encoder(nn.Module):
    """The ESPNetv2 classification network's levels 1-4 (``base_net`` in the state dict).

    forward(x (N, 3, H, W)) -> features at 1/2, 1/4, 1/8, 1/16 with ``channels`` channels.
    """

    def __init__(self, channels: tuple[int, int, int, int]) -> None:
        super().__init__()
        c1, c2, c3, c4 = channels
        self.channels = channels
        self.level1 = ConvBN(3, c1, 3, stride=2)
        self.level2_0 = DownSampler(c1, c2, receptive_limit=13)
        self.level3_0 = DownSampler(c2, c3, receptive_limit=11)
        self.level3 = nn.ModuleList(EESPBlock(c3, c3, receptive_limit=9) for _ in range(_REPEATS_1_8))
        self.level4_0 = DownSampler(c3, c4, receptive_limit=9)
        self.level4 = nn.ModuleList(EESPBlock(c4, c4, receptive_limit=7) for _ in range(_REPEATS_1_16))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        image_2 = _halve(x)
        image_4 = _halve(image_2)
        image_8 = _halve(image_4)
        image_16 = _halve(image_8)
        f2 = self.level1(x)
        f4 = self.level2_0(f2, image_4)
        f8 = self.level3_0(f4, image_8)
        for block in self.level3:
            f8 = block(f8)
        f16 = self.level4_0(f8, image_16)
        for block in self.level4:
            f16 = block(f16)
        return f2, f4, f8, f16


class ChannelShuffle(nn.Module):
    """(N, G*C, H, W) -> (N, C*G, H, W): channel g*C + c moves to c*G + g. No parameters."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: Tensor) -> Tensor:
        c = static_dim(x, 1)
        height, width = static_size(x)
        x = x.reshape(-1, self.groups, c // self.groups, height, width).transpose(1, 2)
        return x.reshape(-1, c, height, width)


class EfficientPyramidPool(nn.Module):
    """Pyramid pooling of the decoder: project, resize per scale, depthwise conv, resize back, merge.

    forward((N, in, H, W)) -> (N, out, H, W). ``with_output_bn`` adds BN + PReLU after the final 1x1
    conv (which then has no bias); the last decoder stage has neither and its conv has a bias.
    """

    def __init__(self, in_channels: int, proj_channels: int, out_channels: int, with_output_bn: bool = True) -> None:
        super().__init__()
        groups = len(_PYRAMID_SCALES)
        self.scales = _PYRAMID_SCALES
        # Registration order (stages before projection) follows the published state dict's key order.
        self.stages = nn.ModuleList(
            nn.Conv2d(proj_channels, proj_channels, 3, padding=1, groups=proj_channels, bias=False)
            for _ in self.scales)
        self.projection_layer = _conv_bn_prelu_seq(in_channels, proj_channels, 1)
        self.merge_layer = nn.Sequential(
            _bn_prelu_seq(proj_channels * groups),
            ChannelShuffle(groups),
            _conv_bn_prelu_seq(proj_channels * groups, proj_channels, 3, groups=proj_channels),
            nn.Conv2d(proj_channels, out_channels, 1, bias=not with_output_bn),
        )
        self.br = _bn_prelu_seq(out_channels) if with_output_bn else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.projection_layer(x)
        size = static_size(x)
        outs = []
        for scale, conv in zip(self.scales, self.stages):
            scaled = (_pyramid_size(size[0], scale), _pyramid_size(size[1], scale))
            if scale > 1.0:
                outs.append(_adaptive_avg_pool2d(conv(_upsample(x, scaled)), size))
            elif scale < 1.0:
                outs.append(_upsample(conv(_adaptive_avg_pool2d(x, scaled)), size))
            else:
                outs.append(conv(x))
        out = self.merge_layer(torch.cat(outs, dim=1))
        return self.br(out) if self.br is not None else out


class GatedProjection(nn.Module):
    """Encoder-to-decoder merge: grouped 3x3 conv + BN + PReLU, scaled per channel by a gate
    sigmoid(1x1 conv(global average of the input)).

    forward((N, in, H, W)) -> (N, out, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.wt_layer = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                      nn.Sigmoid())
        self.expansion_layer = _conv_bn_prelu_seq(in_channels, out_channels, 3,
                                                  groups=math.gcd(in_channels, out_channels))

    def forward(self, x: Tensor) -> Tensor:
        return self.expansion_layer(x) * self.wt_layer(x)


def _bn_prelu(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(channels), nn.PReLU(channels))


class ESPNetv2Segmentation(nn.Module):
    """ESPNetv2 segmentation network with the 20 outputs of the Cityscapes weights.

    Args:
        scale: encoder width scale, one of :data:`ESPNETV2_CHANNELS` (the published Cityscapes
            weights exist for 2.0 and 1.0).
        keep_background: return all 20 channels (19 Cityscapes train ids, then background at index
            :data:`BACKGROUND_INDEX`); False returns the 19 train-id channels only.

    forward(x (N, 3, H, W) ImageNet-normalized RGB, H and W divisible by :attr:`size_divisor`)
    -> logits (N, num_classes, H, W) with ``num_classes`` 19, or 20 with ``keep_background``.

    Attributes:
        size_divisor: H and W must be multiples of 16 (four halvings in the encoder, three x2
            upsamplings in the decoder meeting the encoder features).
        num_classes: channels of the output (19 or 20).
        scale: the width scale.

    On CPU, ``net.to(memory_format=torch.channels_last)`` with a channels-last input gives the same
    logits about 1.6x faster in eager mode (2 threads, 512x256: 51 instead of 81 ms).
    """

    size_divisor: int = 16

    def __init__(self, scale: float = 2.0, keep_background: bool = False) -> None:
        super().__init__()
        scale = float(scale)
        if scale not in ESPNETV2_CHANNELS:
            raise ValueError(f'ESPNetv2 width scale must be one of {sorted(ESPNETV2_CHANNELS)}, got {scale}')
        channels = ESPNETV2_CHANNELS[scale]
        self.scale = scale
        self.keep_background = bool(keep_background)
        self.num_classes = CITYSCAPES_OUTPUTS if keep_background else CITYSCAPES_OUTPUTS - 1
        dec = (4 * _DECODER_BASE, 3 * _DECODER_BASE, 2 * _DECODER_BASE)
        proj = min(CITYSCAPES_OUTPUTS // 2, _DECODER_BASE)
        self.base_net = ESPNetv2Encoder(channels)
        self.bu_dec_l1 = EfficientPyramidPool(channels[3], proj, dec[0])
        self.bu_dec_l2 = EfficientPyramidPool(dec[0], proj, dec[1])
        self.bu_dec_l3 = EfficientPyramidPool(dec[1], proj, dec[2])
        self.bu_dec_l4 = EfficientPyramidPool(dec[2], proj, CITYSCAPES_OUTPUTS, with_output_bn=False)
        self.merge_enc_dec_l2 = GatedProjection(channels[2], dec[0])
        self.merge_enc_dec_l3 = GatedProjection(channels[1], dec[1])
        self.merge_enc_dec_l4 = GatedProjection(channels[0], dec[2])
        self.bu_br_l2 = _bn_prelu(dec[0])
        self.bu_br_l3 = _bn_prelu(dec[1])
        self.bu_br_l4 = _bn_prelu(dec[2])
        for m in self.modules():  # EdgeNets' initialization (weights normally come from a file)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out')
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_all(x)[:, :self.num_classes]

    def forward_all(self, x: Tensor) -> Tensor:
        """All 20 logits (N, 20, H, W), background last, whatever ``keep_background`` says."""
        height, width = static_size(x)
        if height % self.size_divisor or width % self.size_divisor:
            raise ValueError(f'ESPNetv2 needs H and W divisible by {self.size_divisor}, got {height}x{width}')
        f2, f4, f8, f16 = self.base_net(x)
        out = self.bu_dec_l1(f16)
        for skip, gate, norm, decode in ((f8, self.merge_enc_dec_l2, self.bu_br_l2, self.bu_dec_l2),
                                         (f4, self.merge_enc_dec_l3, self.bu_br_l3, self.bu_dec_l3),
                                         (f2, self.merge_enc_dec_l4, self.bu_br_l4, self.bu_dec_l4)):
            out = _upsample(out, static_size(skip)) + gate(skip)
            out = decode(norm(out))
        return _upsample(out, (height, width))


def espnetv2(num_classes: int = 19, scale: float = 2.0, keep_background: bool = False) -> ESPNetv2Segmentation:
    """ESPNetv2 for Cityscapes (random weights; load a published file with
    :func:`anomaly_seg_ros.networks.pretrained.load_espnetv2_cityscapes`).

    Args:
        num_classes: 19 (the train ids), or 20 with ``keep_background``; any other value raises
            ``ValueError`` (the published weights have exactly these outputs).
        scale: encoder width scale (2.0: 789,242 parameters; 1.0: 234,010).
        keep_background: also return the background logit (channel 19).

    forward(x (N, 3, H, W) ImageNet-normalized RGB, H, W divisible by 16) -> logits (N, num_classes, H, W).
    """
    expected = CITYSCAPES_OUTPUTS if keep_background else CITYSCAPES_OUTPUTS - 1
    if num_classes != expected:
        raise ValueError(f'espnetv2 outputs the Cityscapes classes: num_classes must be {expected} with '
                         f'keep_background={keep_background}, got {num_classes}')
    return ESPNetv2Segmentation(scale=scale, keep_background=keep_background)
