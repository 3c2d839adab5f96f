"""SPADE generator (Park et al., CVPR 2019) without the VAE encoder: deterministic synthesis.

As SPADE's non-VAE mode, the input of the first layer is the semantic map downsampled to
(H / 2^n, W / 2^n) through a 3x3 conv; SPADE residual blocks and nearest 2x upsampling bring it to
(H, W). The semantic map enters every block at that block's resolution.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .functional import nearest_downsample, static_size
from .spade import SPADEResnetBlock

__all__ = ['UPSAMPLING_LAYERS', 'SPADEGenerator', 'spade_generator']

UPSAMPLING_LAYERS = {'normal': 5, 'more': 6, 'most': 7}


class SPADEGenerator(nn.Module):
    """One-hot semantic map -> RGB image in [-1, 1].

    Args:
        num_classes: channels of the one-hot input (label set size).
        output_size: (H, W) of the input map and the output image; both divisible by 2^n, where
            n = 5, 6, 7 upsampling layers for ``'normal'``, ``'more'``, ``'most'``.
        ngf: base width (64 in SPADE); the first blocks have 16 * ngf channels.
        num_upsampling_layers: ``'normal'`` | ``'more'`` | ``'most'``.
        spade_hidden: hidden channels of every SPADE layer (128 in SPADE).
        norm: SPADE's parameter-free norm, ``'batch'`` (SPADE's default) or ``'instance'``.
        use_spectral_norm: spectral norm on the residual blocks' convs (as SPADE).

    forward(seg (N, num_classes, H, W) float one-hot) -> (N, 3, H, W) float, tanh range [-1, 1].
    """

    def __init__(self, num_classes: int, output_size: Sequence[int], ngf: int = 64,
                 num_upsampling_layers: str = 'normal', spade_hidden: int = 128, norm: str = 'batch',
                 use_spectral_norm: bool = True) -> None:
        super().__init__()
        if num_upsampling_layers not in UPSAMPLING_LAYERS:
            raise ValueError(f'num_upsampling_layers must be one of {sorted(UPSAMPLING_LAYERS)}, '
                             f'got {num_upsampling_layers!r}')
        n_up = UPSAMPLING_LAYERS[num_upsampling_layers]
        height, width = int(output_size[0]), int(output_size[1])
        if height % 2 ** n_up or width % 2 ** n_up:
            raise ValueError(f'output_size {height}x{width} must be divisible by {2 ** n_up} '
                             f'({num_upsampling_layers!r} = {n_up} upsampling layers)')
        self.num_classes = num_classes
        self.output_size = (height, width)
        self.num_upsampling_layers = num_upsampling_layers
        self._n_up = n_up
        nf = ngf

        def block(fin: int, fout: int) -> SPADEResnetBlock:
            return SPADEResnetBlock(fin, fout, num_classes, spade_hidden, norm, use_spectral_norm)

        self.fc = nn.Conv2d(num_classes, 16 * nf, 3, padding=1)
        self.head_0 = block(16 * nf, 16 * nf)
        self.G_middle_0 = block(16 * nf, 16 * nf)
        self.G_middle_1 = block(16 * nf, 16 * nf)
        self.up_0 = block(16 * nf, 8 * nf)
        self.up_1 = block(8 * nf, 4 * nf)
        self.up_2 = block(4 * nf, 2 * nf)
        self.up_3 = block(2 * nf, nf)
        final_nc = nf
        if num_upsampling_layers == 'most':
            self.up_4 = block(nf, nf // 2)
            final_nc = nf // 2
        self.conv_img = nn.Conv2d(final_nc, 3, 3, padding=1)

    def forward(self, seg: Tensor) -> Tensor:
        if static_size(seg) != self.output_size:
            raise ValueError(f'semantic input is {static_size(seg)}, this generator was built for '
                             f'{self.output_size}')
        factor = 2 ** self._n_up
        x = self.fc(nearest_downsample(seg, factor))
        x = self.head_0(x, nearest_downsample(seg, factor))
        factor //= 2
        x = _up(x)
        x = self.G_middle_0(x, nearest_downsample(seg, factor))
        if self.num_upsampling_layers in ('more', 'most'):
            factor //= 2
            x = _up(x)
        x = self.G_middle_1(x, nearest_downsample(seg, factor))
        blocks = [self.up_0, self.up_1, self.up_2, self.up_3]
        if self.num_upsampling_layers == 'most':
            blocks.append(self.up_4)
        for blk in blocks:
            factor //= 2
            x = blk(_up(x), nearest_downsample(seg, factor))
        x = self.conv_img(F.leaky_relu(x, 0.2))
        return torch.tanh(x)


def _up(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2.0, mode='nearest')


def spade_generator(num_classes: int, output_size: Sequence[int], ngf: int = 64,
                    num_upsampling_layers: str = 'normal', spade_hidden: int = 128, norm: str = 'batch',
                    spectral_norm: bool = True) -> SPADEGenerator:
    """SPADE generator (Park et al., "Semantic Image Synthesis with Spatially-Adaptive
    Normalization", CVPR 2019), non-VAE (deterministic) mode.

    Args:
        num_classes: label set size (one-hot input channels).
        output_size: (H, W) of the synthesized image (= the synthesis stage's input size).
        ngf: base width; 64 is SPADE's Cityscapes generator (about 281 GFLOP at 256x512).
        num_upsampling_layers: ``'normal'`` (5), ``'more'`` (6) or ``'most'`` (7).
        spade_hidden: SPADE hidden channels (128 in SPADE; smaller for the light configuration).
        norm: ``'batch'`` or ``'instance'`` parameter-free norm inside SPADE.
        spectral_norm: spectral normalization of the residual blocks (SPADE's default).
    """
    return SPADEGenerator(num_classes, output_size, ngf, num_upsampling_layers, spade_hidden, norm,
                          spectral_norm)
