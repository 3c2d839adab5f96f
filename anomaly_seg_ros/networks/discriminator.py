"""Multi-scale PatchGAN discriminator as in SPADE / pix2pixHD, for training the generator."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .spectral_norm import spectral_norm

__all__ = ['MultiscaleDiscriminator', 'NLayerDiscriminator', 'multiscale_discriminator']


class NLayerDiscriminator(nn.Module):
    """PatchGAN: 4x4 convs, LeakyReLU 0.2, spectral norm + instance norm on the inner layers.

    Args:
        in_channels: input channels (label channels + 3 image channels).
        ndf: width of the first layer (doubles per layer, at most 512).
        n_layers: number of strided/normalized layers (SPADE's default 4).
        use_spectral_norm: spectral norm on the inner convs (SPADE's ``spectralinstance``).

    forward(x (N, in_channels, H, W)) -> list of intermediate features; the last, (N, 1, h, w), is
    the real/fake prediction.
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 4, use_spectral_norm: bool = True) -> None:
        super().__init__()
        kw, padw = 4, 2
        nf = ndf
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_channels, nf, kw, stride=2, padding=padw),
                                                 nn.LeakyReLU(0.2))]
        for n in range(1, n_layers):
            nf_prev, nf = nf, min(nf * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            conv = nn.Conv2d(nf_prev, nf, kw, stride=stride, padding=padw, bias=False)
            if use_spectral_norm:
                spectral_norm(conv)
            layers.append(nn.Sequential(conv, nn.InstanceNorm2d(nf, affine=False), nn.LeakyReLU(0.2)))
        layers.append(nn.Sequential(nn.Conv2d(nf, 1, kw, stride=1, padding=padw)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    """``num_d`` PatchGANs on the input at full, 1/2, 1/4, ... resolution (3x3 avg-pool stride 2).

    forward(x (N, C, H, W)) -> one list of features per scale (finest first); in each list the
    last tensor is the prediction, the others serve the discriminator feature-matching loss.
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 4, num_d: int = 2,
                 use_spectral_norm: bool = True) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            NLayerDiscriminator(in_channels, ndf, n_layers, use_spectral_norm) for _ in range(num_d))

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        outputs = []
        for i, disc in enumerate(self.discriminators):
            if i:
                x = F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)
            outputs.append(disc(x))
        return outputs


def multiscale_discriminator(num_classes: int, ndf: int = 64, n_layers: int = 4, num_d: int = 2,
                             spectral_norm: bool = True) -> MultiscaleDiscriminator:
    """SPADE's multi-scale PatchGAN discriminator (Wang et al. 2018, Park et al. 2019).

    The input is ``torch.cat([one_hot, image], dim=1)``: ``num_classes`` one-hot channels followed by
    an RGB image in [-1, 1] (the generator's range).

    Args:
        num_classes: label set size.
        ndf: first-layer width (64 in SPADE).
        n_layers: layers per PatchGAN (4 in SPADE).
        num_d: number of scales (2 in SPADE).
        spectral_norm: spectral normalization of the inner convs.
    """
    return MultiscaleDiscriminator(num_classes + 3, ndf, n_layers, num_d, spectral_norm)


