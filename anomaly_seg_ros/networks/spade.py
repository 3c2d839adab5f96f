"""SPADE: spatially-adaptive normalization (Park et al., CVPR 2019) and its residual block.

:class:`SPADE` takes the semantic map already at the feature's resolution (callers nearest-resize
it once per scale with :func:`~anomaly_seg_ros.networks.functional.nearest_downsample`), so no
data-dependent resize sits inside the layer.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .spectral_norm import spectral_norm

__all__ = ['SPADE', 'SPADEResnetBlock', 'param_free_norm']

_NORMS = ('batch', 'instance')


def param_free_norm(kind: str, num_features: int) -> nn.Module:
    """Normalization without affine parameters: ``'batch'`` (BatchNorm2d) or ``'instance'``."""
    if kind == 'batch':
        return nn.BatchNorm2d(num_features, affine=False)
    if kind == 'instance':
        return nn.InstanceNorm2d(num_features, affine=False)
    raise ValueError(f'unknown parameter-free norm {kind!r}; choose one of {_NORMS}')


class SPADE(nn.Module):
    """norm(x) * (1 + gamma(seg)) + beta(seg).

    Args:
        num_features: channels C of the normalized features.
        label_channels: channels of the semantic input (one-hot classes).
        hidden: channels of the shared 3x3 conv (128 in SPADE).
        norm: parameter-free normalization, ``'instance'`` or ``'batch'``.
        kernel_size: kernel of the three convs (3 in SPADE).

    forward(x (N, C, H, W), seg (N, label_channels, H, W) float) -> (N, C, H, W).
    """

    def __init__(self, num_features: int, label_channels: int, hidden: int = 128, norm: str = 'instance',
                 kernel_size: int = 3) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.norm = param_free_norm(norm, num_features)
        self.shared = nn.Sequential(nn.Conv2d(label_channels, hidden, kernel_size, padding=pad), nn.ReLU())
        self.gamma = nn.Conv2d(hidden, num_features, kernel_size, padding=pad)
        self.beta = nn.Conv2d(hidden, num_features, kernel_size, padding=pad)

    def forward(self, x: Tensor, seg: Tensor) -> Tensor:
        actv = self.shared(seg)
        return self.norm(x) * (1 + self.gamma(actv)) + self.beta(actv)


class SPADEResnetBlock(nn.Module):
    """SPADE's generator block: two SPADE-LReLU-conv3x3 steps plus a (learned) shortcut.

    Args:
        fin, fout: input and output channels; the middle has min(fin, fout).
        label_channels: channels of the semantic map.
        hidden: SPADE hidden channels.
        norm: SPADE's parameter-free norm (``'batch'`` as SPADE's sync-batch default, or ``'instance'``).
        use_spectral_norm: spectral normalization of the three convs (SPADE's ``spectral`` option).

    forward(x (N, fin, H, W), seg (N, label_channels, H, W)) -> (N, fout, H, W).
    """

    def __init__(self, fin: int, fout: int, label_channels: int, hidden: int = 128, norm: str = 'batch',
                 use_spectral_norm: bool = True) -> None:
        super().__init__()
        fmiddle = min(fin, fout)
        self.learned_shortcut = fin != fout
        self.conv_0 = nn.Conv2d(fin, fmiddle, 3, padding=1)
        self.conv_1 = nn.Conv2d(fmiddle, fout, 3, padding=1)
        self.norm_0 = SPADE(fin, label_channels, hidden, norm)
        self.norm_1 = SPADE(fmiddle, label_channels, hidden, norm)
        if self.learned_shortcut:
            self.conv_s = nn.Conv2d(fin, fout, 1, bias=False)
            self.norm_s = SPADE(fin, label_channels, hidden, norm)
        if use_spectral_norm:
            spectral_norm(self.conv_0)
            spectral_norm(self.conv_1)
            if self.learned_shortcut:
                spectral_norm(self.conv_s)

    def forward(self, x: Tensor, seg: Tensor) -> Tensor:
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return x_s + dx
