"""VGG feature extractors (Simonyan & Zisserman 2015) with a width multiplier.

Layer indices follow torchvision's ``vgg16().features`` / ``vgg19().features`` so that an ImageNet
state dict in torchvision format (keys ``features.N.weight`` / ``features.N.bias``) loads directly
(:func:`load_torchvision_vgg_weights`, width 1 only). Inputs are ImageNet-normalized RGB.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import ModelError
from .functional import channels

__all__ = [
    'VGG16Encoder',
    'VGG19Features',
    'load_torchvision_vgg_weights',
    'vgg16_encoder',
    'vgg19_features',
]

_LOG = logging.getLogger(__name__)
_WARNED: set[str] = set()
_RANDOM_EFFECT = {
    'vgg16': 'The dissimilarity image encoder then trains from scratch instead of fine-tuning.',
    'vgg19': 'Frozen random features give a weaker perceptual difference than the paper\'s.',
}

# torchvision configurations, truncated where we stop; 'M' = 2x2 max pooling.
_VGG16_TO_CONV4_3: tuple[int | str, ...] = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512)
_VGG19_TO_CONV5_1: tuple[int | str, ...] = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M',
                                            512, 512, 512, 512, 'M', 512)


def _make_features(cfg: Sequence[int | str], width: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_ch = 3
    for item in cfg:
        if item == 'M':
            layers.append(nn.MaxPool2d(2, 2))
        else:
            out_ch = channels(int(item), width)
            layers += [nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.ReLU()]
            in_ch = out_ch
    return nn.Sequential(*layers)


class _TappedVGG(nn.Module):
    """``features`` (torchvision indices) returning the activations at ``taps`` (ReLU indices)."""

    _cfg: tuple[int | str, ...] = ()
    _taps: tuple[int, ...] = ()
    kind = 'vgg'

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        if width <= 0:
            raise ValueError(f'width must be positive, got {width}')
        self.width = float(width)
        self.features = _make_features(self._cfg, width)
        for m in self.features:  # torchvision's VGG initialization
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                nn.init.zeros_(m.bias)
        convs = [self.features[i - 1] for i in self._taps]  # the conv before each tapped ReLU
        self.out_channels: tuple[int, ...] = tuple(c.out_channels for c in convs if isinstance(c, nn.Conv2d))

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        outputs = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self._taps:
                outputs.append(x)
        return tuple(outputs)


class VGG16Encoder(_TappedVGG):
    """VGG16 ``features`` up to conv4_3.

    forward(x (N, 3, H, W) normalized) -> (relu1_2 (N, 64w, H, W), relu2_2 (N, 128w, H/2, W/2),
    relu3_3 (N, 256w, H/4, W/4), relu4_3 (N, 512w, H/8, W/8)); H, W divisible by 8.
    """

    _cfg = _VGG16_TO_CONV4_3
    _taps = (3, 8, 15, 22)
    kind = 'vgg16'


class VGG19Features(_TappedVGG):
    """VGG19 ``features`` up to relu5_1 (the perceptual-loss layers of pix2pixHD / SPADE).

    forward(x (N, 3, H, W) normalized) -> (relu1_1, relu2_1, relu3_1, relu4_1, relu5_1) at
    1, 1/2, 1/4, 1/8, 1/16 resolution with 64w, 128w, 256w, 512w, 512w channels.
    """

    _cfg = _VGG19_TO_CONV5_1
    _taps = (1, 6, 11, 20, 29)
    kind = 'vgg19'


def load_torchvision_vgg_weights(module: VGG16Encoder | VGG19Features, path: str | Path) -> None:
    """Load ImageNet weights from a torchvision-format file into ``module.features`` (in place).

    The file is ``torch.save`` of a torchvision ``vgg16()`` / ``vgg19()`` state dict (keys
    ``features.N.weight``; classifier keys are ignored). Raises :class:`ModelError` naming the file
    if it is missing, unreadable, for another VGG depth, or the module's width is not 1.
    """
    path = Path(path)
    if module.width != 1.0:
        raise ModelError(f'{path}: ImageNet weights fit only a {module.kind} of width 1, this one has '
                         f'width {module.width}; drop the weights or use width 1')
    if not path.is_file():
        raise ModelError(f'{path}: {module.kind} weight file not found; download torchvision\'s '
                         f'{module.kind} ImageNet weights (state dict) to that path or omit the option')
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise ModelError(f'{path}: cannot be read as a torch state dict ({exc}); '
                         f'it should be torchvision\'s {module.kind} state dict saved with torch.save') from exc
    if isinstance(state, Mapping) and 'state_dict' in state and isinstance(state['state_dict'], Mapping):
        state = state['state_dict']
    if not isinstance(state, Mapping):
        raise ModelError(f'{path}: holds a {type(state).__name__}, not a state dict; save '
                         f'torchvision\'s {module.kind}().state_dict() with torch.save')
    own = module.features.state_dict()
    missing = [f'features.{k}' for k in own if f'features.{k}' not in state]
    wrong = []
    for key, value in own.items():
        theirs = state.get(f'features.{key}')
        if theirs is not None and tuple(theirs.shape) != tuple(value.shape):
            wrong.append(f'features.{key} {tuple(theirs.shape)} != {tuple(value.shape)}')
    if missing or wrong:
        detail = (f'missing keys {missing[:4]}' if missing else '') + (f' shape mismatch {wrong[:3]}' if wrong else '')
        raise ModelError(f'{path}: not torchvision {module.kind} ImageNet weights ({detail.strip()}); '
                         f'use the state dict of torchvision.models.{module.kind}')
    module.features.load_state_dict({k: state[f'features.{k}'] for k in own})


def _load_weights(module: VGG16Encoder | VGG19Features, weights: str | Path | None, warn_if_random: bool) -> None:
    """Load ImageNet ``weights`` into ``module``, or else (``warn_if_random``) log that its features are random,
    once per process and kind."""
    if weights is not None:
        load_torchvision_vgg_weights(module, weights)
    elif warn_if_random and module.kind not in _WARNED:
        _WARNED.add(module.kind)
        hint = ('pass torchvision ImageNet weights to use pretrained features' if module.width == 1.0 else
                f'no ImageNet weights exist for width {module.width}')
        _LOG.warning('!!! %s features are RANDOMLY INITIALIZED (no ImageNet weights given; %s). %s !!!',
                     module.kind.upper(), hint, _RANDOM_EFFECT.get(module.kind, ''))


def vgg16_encoder(width: float = 1.0, weights: str | Path | None = None,
                  warn_if_random: bool = True) -> VGG16Encoder:
    """VGG16 (Simonyan & Zisserman 2015) features to conv4_3, the dissimilarity network's encoder.

    Args:
        width: channel multiplier (1 = VGG16).
        weights: optional torchvision-format ImageNet state dict file (width 1 only).
        warn_if_random: log a warning (once per process) when no weights are given.
    """
    module = VGG16Encoder(width)
    _load_weights(module, weights, warn_if_random)
    return module


def vgg19_features(width: float = 1.0, weights: str | Path | None = None,
                   warn_if_random: bool = True) -> VGG19Features:
    """VGG19 (Simonyan & Zisserman 2015) features to relu5_1, for the perceptual difference (eq. 3).

    Args:
        width: channel multiplier (1 = VGG19, 12,944,960 parameters).
        weights: optional torchvision-format ImageNet state dict file (width 1 only).
        warn_if_random: log a warning (once per process) when no weights are given.
    """
    module = VGG19Features(width)
    _load_weights(module, weights, warn_if_random)
    return module
