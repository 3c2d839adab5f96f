"""The dissimilarity network of Di Biase et al. (CVPR 2021), Appendix A.1 and REFERENCE.md.

Encoders: one VGG16 (to conv4_3) shared by the camera and the synthesized image (or, ``encoder='squeezenet'``,
SqueezeNet v1.1 features to fire5: the ImageNet encoder of the CPU model), a small CNN for the one-hot
semantic map and one for the three uncertainty maps. Fusion per scale: 1x1 conv of the
concatenated image, synthesis and semantic features, multiplied element-wise by the uncertainty
features, with the correlation channel sum_c(f_image * f_synthesis) prepended. Decoder from 1/8 to
full resolution: conv + SELU, SPADE block (SPADE -> SELU -> conv -> SPADE -> SELU), 2x2 transposed
conv; the last block ends in a 1x1 conv to two logits (channel 1 = anomaly).

With the paper's defaults the network has 18,780,162 parameters (13,798,530 without the
uncertainty encoder and the SPADE decoder).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from .functional import channels, nearest_downsample, static_size
from .spade import SPADE
from .squeezenet import squeezenet_encoder
from .vgg import vgg16_encoder

__all__ = ['DISSIMILARITY_ENCODERS', 'UNCERTAINTY_CHANNELS', 'DissimilarityNetwork', 'dissimilarity_network']

UNCERTAINTY_CHANNELS = 3  # entropy, perceptual difference, softmax distance (in this order)
DISSIMILARITY_ENCODERS = ('vgg16', 'squeezenet')  # image encoders; their ImageNet weights' formats differ


class _ConvEncoder(nn.Module):
    """7x7 conv + ReLU, then three 3x3 stride-2 convs + ReLU; no normalization.

    forward(x (N, C, H, W)) -> features at 1, 1/2, 1/4, 1/8 resolution with ``widths`` channels.
    """

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int]) -> None:
        super().__init__()
        stages: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_channels, widths[0], 7, padding=3), nn.ReLU())]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            stages.append(nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU()))
        self.stages = nn.ModuleList(stages)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                nn.init.zeros_(m.bias)  # type: ignore[arg-type]

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        outputs = []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return tuple(outputs)


class _DecoderBlock(nn.Module):
    """conv3x3 + SELU, then norm -> SELU -> conv3x3 -> norm -> SELU, then ``tail``.

    ``norm`` is SPADE (conditioned on the one-hot map at this resolution) or, for the ablation,
    a parameter-free instance norm. ``tail`` is a 2x2 stride-2 transposed conv or the 1x1 classifier.
    """

    def __init__(self, in_channels: int, out_channels: int, num_classes: int, spade_hidden: int,
                 spade: bool, tail: nn.Module) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv_mid = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.spade = spade
        if spade:
            self.norm_0: nn.Module = SPADE(out_channels, num_classes, spade_hidden, 'instance')
            self.norm_1: nn.Module = SPADE(out_channels, num_classes, spade_hidden, 'instance')
        else:
            self.norm_0 = nn.InstanceNorm2d(out_channels, affine=False)
            self.norm_1 = nn.InstanceNorm2d(out_channels, affine=False)
        self.act = nn.SELU()
        self.tail = tail
        for conv in (self.conv_in, self.conv_mid):  # LeCun normal, as self-normalizing SELU layers need
            nn.init.kaiming_normal_(conv.weight, mode='fan_in', nonlinearity='linear')
            nn.init.zeros_(conv.bias)  # type: ignore[arg-type]

    def _norm(self, norm: nn.Module, x: Tensor, seg: Tensor) -> Tensor:
        return norm(x, seg) if self.spade else norm(x)

    def forward(self, x: Tensor, seg: Tensor) -> Tensor:
        x = self.act(self.conv_in(x))
        x = self.act(self._norm(self.norm_0, x, seg))
        x = self.conv_mid(x)
        x = self.act(self._norm(self.norm_1, x, seg))
        return self.tail(x)


class DissimilarityNetwork(nn.Module):
    """Anomaly logits from the camera image, its re-synthesis, the semantic map and uncertainty maps.

    Args:
        num_classes: label set size (one-hot channels of the semantic input).
        width: channel multiplier for every layer, SPADE's hidden 128 included (1 = the paper).
        use_uncertainty: with the uncertainty encoder (fused features multiplied by its features).
        spade_decoder: SPADE normalization in the decoder (else parameter-free instance norm).
        use_correlation: prepend the channel sum_c(f_image * f_synthesis) at each scale.
        encoder: 'vgg16' (the paper's; ``width`` applies) or 'squeezenet' (SqueezeNet v1.1 features to
            fire5 with a full-resolution stem; fixed widths, ImageNet weights in the Caffe .npz format).

    forward(image (N, 3, H, W), synthesis (N, 3, H, W): both ImageNet-normalized RGB;
    semantic (N, num_classes, H, W) one-hot float (ignore pixels all zero); uncertainty
    (N, 3, H, W) in [0, 1] (entropy, perceptual difference, softmax distance) or None when
    ``use_uncertainty`` is False) -> logits (N, 2, H, W); H and W divisible by 8.
    """

    def __init__(self, num_classes: int = 19, width: float = 1.0, use_uncertainty: bool = True,
                 spade_decoder: bool = True, use_correlation: bool = True, encoder: str = 'vgg16',
                 encoder_weights: str | Path | None = None, warn_if_random: bool = True) -> None:
        super().__init__()
        if encoder not in DISSIMILARITY_ENCODERS:
            raise ValueError(f'encoder must be one of {list(DISSIMILARITY_ENCODERS)}, got {encoder!r}')
        self.num_classes = num_classes
        self.use_uncertainty = use_uncertainty
        self.use_correlation = use_correlation

        def ch(*bases: int) -> tuple[int, ...]:
            return tuple(channels(b, width) for b in bases)

        self.encoder: nn.Module
        if encoder == 'squeezenet':
            self.encoder = squeezenet_encoder(encoder_weights, channels(64, width), warn_if_random)
        else:
            self.encoder = vgg16_encoder(width, encoder_weights, warn_if_random)
        image_ch = self.encoder.out_channels
        sem_ch = ch(32, 64, 128, 256)
        fuse_ch = ch(64, 128, 256, 512)
        self.semantic_encoder = _ConvEncoder(num_classes, sem_ch)  # type: ignore[arg-type]
        self.uncertainty_encoder = (
            _ConvEncoder(UNCERTAINTY_CHANNELS, fuse_ch) if use_uncertainty else None)  # type: ignore[arg-type]
        self.fusion = nn.ModuleList(
            nn.Conv2d(2 * image_ch[k] + sem_ch[k], fuse_ch[k], 1) for k in range(4))
        for conv in self.fusion:
            nn.init.kaiming_normal_(conv.weight, mode='fan_in', nonlinearity='linear')  # type: ignore[arg-type]
            nn.init.zeros_(conv.bias)  # type: ignore[arg-type]
        corr = 1 if use_correlation else 0
        skip = tuple(c + corr for c in fuse_ch)
        dec = ch(256, 256, 128, 64)
        hidden = channels(128, width)
        self.decoder = nn.ModuleList([
            _DecoderBlock(skip[3], dec[0], num_classes, hidden, spade_decoder,
                          nn.ConvTranspose2d(dec[0], dec[0], 2, stride=2)),
            _DecoderBlock(skip[2] + dec[0], dec[1], num_classes, hidden, spade_decoder,
                          nn.ConvTranspose2d(dec[1], dec[1], 2, stride=2)),
            _DecoderBlock(skip[1] + dec[1], dec[2], num_classes, hidden, spade_decoder,
                          nn.ConvTranspose2d(dec[2], dec[2], 2, stride=2)),
            _DecoderBlock(skip[0] + dec[2], dec[3], num_classes, hidden, spade_decoder,
                          nn.Conv2d(dec[3], 2, 1)),
        ])

    def forward(self, image: Tensor, synthesis: Tensor, semantic: Tensor,
                uncertainty: Tensor | None = None) -> Tensor:
        height, width = static_size(image)
        if height % 8 or width % 8:
            raise ValueError(f'DissimilarityNetwork needs H and W divisible by 8, got {height}x{width}')
        if self.use_uncertainty and uncertainty is None:
            raise ValueError('this DissimilarityNetwork uses the uncertainty encoder: pass the (N, 3, H, W) '
                             'uncertainty maps (entropy, perceptual difference, softmax distance)')
        f_img = self.encoder(image)
        f_syn = self.encoder(synthesis)
        f_sem = self.semantic_encoder(semantic)
        f_unc = self.uncertainty_encoder(uncertainty) if self.uncertainty_encoder is not None else None
        fused = []
        for k in range(4):
            x = self.fusion[k](torch.cat([f_img[k], f_syn[k], f_sem[k]], dim=1))
            if f_unc is not None:
                x = x * f_unc[k]
            if self.use_correlation:
                x = torch.cat([(f_img[k] * f_syn[k]).sum(dim=1, keepdim=True), x], dim=1)
            fused.append(x)
        x = self.decoder[0](fused[3], nearest_downsample(semantic, 8))
        x = self.decoder[1](torch.cat([fused[2], x], dim=1), nearest_downsample(semantic, 4))
        x = self.decoder[2](torch.cat([fused[1], x], dim=1), nearest_downsample(semantic, 2))
        return self.decoder[3](torch.cat([fused[0], x], dim=1), semantic)


def dissimilarity_network(num_classes: int = 19, width: float = 1.0, use_uncertainty: bool = True,
                          spade_decoder: bool = True, use_correlation: bool = True, encoder: str = 'vgg16',
                          encoder_weights: str | Path | None = None,
                          warn_if_random: bool = True) -> DissimilarityNetwork:
    """Dissimilarity network of "Pixel-wise Anomaly Detection in Complex Driving Scenes"
    (Di Biase et al., CVPR 2021, Appendix A.1).

    Args:
        num_classes: label set size (19 Cityscapes train classes in the paper).
        width: channel multiplier (1 = paper: 18,780,162 parameters with 19 classes).
        use_uncertainty: uncertainty encoder on (entropy, perceptual difference, softmax distance).
        spade_decoder: SPADE decoder (False: parameter-free instance norm; with
            ``use_uncertainty=False`` too, 13,798,530 parameters).
        use_correlation: the per-scale correlation channel of the fusion module.
        encoder: 'vgg16' (the paper's image encoder) or 'squeezenet' (SqueezeNet v1.1 features).
        encoder_weights: optional ImageNet weights for the image encoder, fine-tuned with the rest: a
            torchvision VGG16 state dict (width 1 only) or ``squeezenet_v1.1_features.npz``.
        warn_if_random: warn once when the encoder starts without ImageNet weights.
    """
    return DissimilarityNetwork(num_classes, width, use_uncertainty, spade_decoder, use_correlation, encoder,
                                encoder_weights, warn_if_random)
