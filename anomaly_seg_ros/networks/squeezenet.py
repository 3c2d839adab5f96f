"""SqueezeNet v1.1 features (Iandola et al. 2016) for the perceptual difference, with LPIPS heads.

A lighter alternative to :class:`~anomaly_seg_ros.networks.vgg.VGG19Features` for the perceptual
stage (eq. 3 of Di Biase et al. 2021): 722,496 parameters instead of 12.9 M. The architecture is
apart from its weights (as in torchvision): :func:`load_squeezenet_caffe_weights` loads the ImageNet
weights ported from DeepScale's Caffe SqueezeNet v1.1 (``squeezenet_v1.1_features.npz``, keyed by
the Caffe layer names) and :func:`load_lpips_heads` the LPIPS v0.1 linear heads of Zhang et al. 2018
(``lpips_v0.1_squeeze.npz``). Module names mirror the Caffe names (``fire2/squeeze1x1/weight`` is
``fire2.squeeze1x1.weight``), so a state dict saved with ``torch.save`` loads into a freshly built
module of the same ``distance``.

The input is what every network of this project gets: ImageNet-normalized RGB,
``(x - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225)`` with x in [0, 1]. The module converts it
to what the Caffe weights expect (BGR, 0-255, minus (103.939, 116.779, 123.68)) with one fixed
per-channel affine after a channel flip; the constants are non-persistent buffers, so they never
enter a state dict and export to ONNX as constants.

:meth:`SqueezeNetFeatures.difference` turns two images' taps into the raw perceptual difference map:
``'lpips'`` (unit-normalized features, squared difference weighted by the LPIPS heads) or ``'l1'``
(eq. 3's channel-mean L1 on unit-normalized features, each layer scaled to a common range).
"""
from __future__ import annotations

import logging
import math
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ModelError
from .functional import static_size

__all__ = [
    'CAFFE_FEATURE_SCALE',
    'CAFFE_MEAN_BGR',
    'LPIPS_EPS',
    'SQUEEZENET_DISTANCES',
    'SQUEEZENET_TAPS',
    'SqueezeNetEncoder',
    'SqueezeNetFeatures',
    'load_lpips_heads',
    'load_squeezenet_caffe_weights',
    'squeezenet_encoder',
    'squeezenet_features',
]

_LOG = logging.getLogger(__name__)
_WARNED: set[str] = set()

#: The seven LPIPS layers of SqueezeNet v1.1, in :meth:`SqueezeNetFeatures.forward`'s order.
SQUEEZENET_TAPS: tuple[str, ...] = ('conv1', 'fire3', 'fire5', 'fire6', 'fire7', 'fire8', 'fire9')
SQUEEZENET_DISTANCES: tuple[str, ...] = ('lpips', 'l1')
#: Mean subtracted from the 0-255 BGR input of the Caffe weights.
CAFFE_MEAN_BGR: tuple[float, float, float] = (103.939, 116.779, 123.68)
#: Factor on the encoder's Caffe taps (see :class:`SqueezeNetEncoder`): O(1) values, FP16-safe correlations.
CAFFE_FEATURE_SCALE = 2.0 ** -8
#: LPIPS's ``normalize_tensor`` epsilon: f / (||f||_2 + eps) over channels.
LPIPS_EPS = 1e-10
_PRESCALE = 2.0 ** -10  # see _unit_normalize
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

# Fire modules of v1.1: name -> (input channels, squeeze channels, expand channels per branch).
_FIRES: dict[str, tuple[int, int, int]] = {
    'fire2': (64, 16, 64), 'fire3': (128, 16, 64),
    'fire4': (128, 32, 128), 'fire5': (256, 32, 128),
    'fire6': (256, 48, 192), 'fire7': (384, 48, 192),
    'fire8': (384, 64, 256), 'fire9': (512, 64, 256),
}
_POOL_AFTER = ('conv1', 'fire3', 'fire5')  # 3x3 stride-2 max pooling (ceil) after these


class _Fire(nn.Module):
    """squeeze 1x1 + ReLU -> cat(expand 1x1 + ReLU, expand 3x3 (padding 1) + ReLU)."""

    def __init__(self, in_ch: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze1x1 = nn.Conv2d(in_ch, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        s = F.relu(self.squeeze1x1(x))
        return torch.cat([F.relu(self.expand1x1(s)), F.relu(self.expand3x3(s))], dim=1)


def _register_caffe_input(module: nn.Module) -> None:
    """Buffers ``input_scale``/``input_shift`` of the fixed affine from ImageNet-normalized RGB (after a
    channel flip) to the Caffe input: BGR channel j <- RGB channel 2 - j,
    255 * (x_n * std + mean) - caffe_mean = x_n * (255 std) + (255 mean - caffe_mean).
    Non-persistent: never in a state dict, constants in an ONNX graph."""
    std_bgr = torch.tensor(_IMAGENET_STD[::-1], dtype=torch.float64)
    mean_bgr = torch.tensor(_IMAGENET_MEAN[::-1], dtype=torch.float64)
    scale = 255.0 * std_bgr
    shift = 255.0 * mean_bgr - torch.tensor(CAFFE_MEAN_BGR, dtype=torch.float64)
    module.register_buffer('input_scale', scale.float().view(1, 3, 1, 1), persistent=False)
    module.register_buffer('input_shift', shift.float().view(1, 3, 1, 1), persistent=False)


def _caffe_input(module: nn.Module, x: Tensor) -> Tensor:
    return torch.flip(x, dims=(1,)) * module.input_scale + module.input_shift


def _init_like_torchvision(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_uniform_(m.weight)
            nn.init.zeros_(m.bias)  # type: ignore[arg-type]


class _LPIPSHeads(nn.Module):
    """The seven non-negative 1x1 LPIPS weights as buffers ``lin0`` ... ``lin6``, shape (1, C_k, 1, 1).

    Buffers, not parameters: never trained, but stored in the state dict. Initialized to ones (LPIPS's
    unlearned "baseline": every channel weighs 1) until :func:`load_lpips_heads` fills them.
    """

    def __init__(self, widths: Sequence[int]) -> None:
        super().__init__()
        self.widths = tuple(int(c) for c in widths)
        for k, c in enumerate(self.widths):
            self.register_buffer(f'lin{k}', torch.ones(1, c, 1, 1))

    def weight(self, k: int) -> Tensor:
        return getattr(self, f'lin{k}')


def _unit_normalize(f: Tensor) -> Tensor:
    """LPIPS's ``normalize_tensor``: f / (sqrt(sum_c f^2) + 1e-10), per pixel over channels.

    Computed as g / (||g|| + 1e-10 s) with g = s f and s = 2^-10, the same value (a power-of-two
    scale is exact): the Caffe features reach ~10^3, whose squares would overflow an FP16 graph
    (max 65504) before the reduction.
    """
    g = f * _PRESCALE
    return g / (torch.sqrt((g * g).sum(dim=1, keepdim=True)) + LPIPS_EPS * _PRESCALE)


class SqueezeNetFeatures(nn.Module):
    """SqueezeNet v1.1 features to fire9, tapped at the seven LPIPS layers.

    forward(x (N, 3, H, W) ImageNet-normalized RGB) -> (relu(conv1) (N, 64, H1, W1),
    fire3 (N, 128, H2, W2), fire5 (N, 256, H3, W3), fire6, fire7 (N, 384, H4, W4),
    fire8, fire9 (N, 512, H4, W4)), all >= 0 (after ReLU), with H1 = floor((H - 1) / 2) (conv1 3x3
    stride 2, no padding) and H(k+1) = ceil((Hk - 1) / 2) (max pooling 3x3 stride 2, ceil rounding);
    likewise for W. 128x256 gives 63x127, 31x63, 15x31, 7x15. H and W must be at least 17.

    ``distance`` ('lpips' | 'l1') selects the form of :meth:`difference`; an 'lpips' module also holds
    the LPIPS heads (buffers ``lpips.lin0`` ... ``lpips.lin6``).
    """

    kind = 'squeezenet'
    out_channels: tuple[int, ...] = (64, 128, 256, 384, 384, 512, 512)

    def __init__(self, distance: str = 'lpips') -> None:
        super().__init__()
        if distance not in SQUEEZENET_DISTANCES:
            raise ValueError(f'distance must be one of {list(SQUEEZENET_DISTANCES)}, got {distance!r}')
        self.distance = distance
        self.conv1 = nn.Conv2d(3, 64, 3, stride=2)
        for name, (in_ch, squeeze, expand) in _FIRES.items():
            self.add_module(name, _Fire(in_ch, squeeze, expand))
        _init_like_torchvision(self)
        _register_caffe_input(self)
        self.lpips = _LPIPSHeads(self.out_channels) if distance == 'lpips' else None

    def caffe_input(self, x: Tensor) -> Tensor:
        """ImageNet-normalized RGB (N, 3, H, W) -> the Caffe weights' input: BGR, 0-255, minus the Caffe mean."""
        return _caffe_input(self, x)

    def forward_caffe(self, x: Tensor) -> tuple[Tensor, ...]:
        """The seven taps of a Caffe-style input (BGR, 0-255, minus :data:`CAFFE_MEAN_BGR`)."""
        outputs: list[Tensor] = []
        x = F.relu(self.conv1(x))
        outputs.append(x)
        for name in ('pool', 'fire2', 'fire3', 'pool', 'fire4', 'fire5', 'pool',
                     'fire6', 'fire7', 'fire8', 'fire9'):
            if name == 'pool':
                x = F.max_pool2d(x, kernel_size=3, stride=2, ceil_mode=True)
                continue
            x = getattr(self, name)(x)
            if name in SQUEEZENET_TAPS:
                outputs.append(x)
        return tuple(outputs)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return self.forward_caffe(self.caffe_input(x))

    def difference(self, features_x: Sequence[Tensor], features_r: Sequence[Tensor],
                   size: tuple[int, int]) -> Tensor:
        """Raw perceptual difference map of two images' taps (from :meth:`forward`).

        Per layer k, with f_hat = f / (||f||_2 over channels + 1e-10) (LPIPS's unit normalization):

        - ``'lpips'``: sum_c w_kc (f_hat_x - f_hat_r)^2 with the non-negative LPIPS head w_k
          (LPIPS of Zhang et al. 2018 as a spatial map).
        - ``'l1'``: eq. 3's channel mean of |f_hat_x - f_hat_r|, times sqrt(C_k) / 7. For non-negative
          unit vectors ||a - b||_1 / sqrt(C) <= ||a - b||_2 <= sqrt(2), so every layer's term lies in
          [0, sqrt(2) / 7] whatever its width, the weights or the image's contrast, and the seven
          layers weigh equally; the whole map lies in [0, sqrt(2)]. Why this normalization: the raw
          Caffe activations differ between layers up to ~15x in mean (fire3 vs fire9 on CamVid), a
          plain channel mean of unit vectors would favour narrow layers by sqrt(C), and a per-layer
          scale fitted on data would fit one set of weights only; it also matches 'lpips' up to the
          heads and L1 vs squared L2.

        Each layer's map is bilinearly upsampled (align_corners=False) to ``size`` and the layers are
        summed.

        Args:
            features_x, features_r: the seven taps (N, C_k, H_k, W_k) of the two images.
            size: (H, W) of the output map.

        Returns:
            (N, 1, H, W) float, >= 0, zero where the two images are identical.
        """
        layers = len(self.out_channels)
        if not len(features_x) == len(features_r) == layers:
            raise ValueError(f'{len(features_x)} and {len(features_r)} feature maps; SqueezeNet has {layers} taps')
        height, width = int(size[0]), int(size[1])
        total: Tensor | None = None
        for k, (fx, fr) in enumerate(zip(features_x, features_r)):
            delta = _unit_normalize(fx) - _unit_normalize(fr)
            if self.lpips is not None:
                term = (delta * delta * self.lpips.weight(k)).sum(dim=1, keepdim=True)
            else:
                term = delta.abs().mean(dim=1, keepdim=True) * (math.sqrt(self.out_channels[k]) / layers)
            if static_size(term) != (height, width):
                term = F.interpolate(term, size=(height, width), mode='bilinear', align_corners=False)
            total = term if total is None else total + term
        assert total is not None
        return total


class SqueezeNetEncoder(nn.Module):
    """Image encoder of the dissimilarity network from SqueezeNet v1.1's ImageNet features (to fire5).

    The paper's encoder is an ImageNet VGG16, fine-tuned: pretrained features are what lets a network
    trained on a few hundred frames tell an unfamiliar object from the road. No ImageNet VGG16 of the
    CPU model's width exists; SqueezeNet v1.1's features do (the perceptual stage's weights), at a
    similar cost. Taps at 1, 1/2, 1/4, 1/8 resolution like the VGG16 encoder's:

    - full resolution: a trainable stem (two 3x3 convs + ReLU, ``stem_channels``) on the image,
      since SqueezeNet's first layer already has stride 2;
    - 1/2: relu(conv1) (64 channels), 1/4: fire3 (128), 1/8: fire5 (256), all from the Caffe
      weights (fine-tuned with the rest).

    conv1 takes padding 1 here (the Caffe layer has none), so that with the ceil-rounded poolings
    every tap lies exactly on the 1/2^k grid of an input whose H and W are divisible by 8; the
    padding is the Caffe mean colour (zero after mean subtraction).

    The Caffe taps are multiplied by :data:`CAFFE_FEATURE_SCALE` (2^-8, exact in floating point). Unscaled
    they reach ~10^3 on CamVid frames (fire5 up to ~900) and the fusion's correlation channel, a
    256-channel dot product of two such maps, ~10^6: beyond FP16's range (65504), and a network trained
    on them exported to a graph whose ONNX Runtime output differed from PyTorch by 1.6e-3 in the anomaly
    probability (PyTorch float32 vs float64: 7e-6), failing the export's parity check.

    forward(x (N, 3, H, W) ImageNet-normalized RGB) -> four tensors (N, C_k, H / 2^k, W / 2^k).
    """

    kind = 'squeezenet'

    def __init__(self, stem_channels: int = 16) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, stem_channels, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(stem_channels, stem_channels, 3, padding=1), nn.ReLU())
        self.conv1 = nn.Conv2d(3, 64, 3, stride=2, padding=1)
        for name in ('fire2', 'fire3', 'fire4', 'fire5'):
            self.add_module(name, _Fire(*_FIRES[name]))
        _init_like_torchvision(self)
        _register_caffe_input(self)
        self.out_channels: tuple[int, ...] = (stem_channels, 64, 128, 256)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        full = self.stem(x)
        half = F.relu(self.conv1(_caffe_input(self, x)))
        quarter = self.fire3(self.fire2(F.max_pool2d(half, kernel_size=3, stride=2, ceil_mode=True)))
        eighth = self.fire5(self.fire4(F.max_pool2d(quarter, kernel_size=3, stride=2, ceil_mode=True)))
        return full, half * CAFFE_FEATURE_SCALE, quarter * CAFFE_FEATURE_SCALE, eighth * CAFFE_FEATURE_SCALE


# --------------------------------------------------------------------------------------------------
# Weights

def _read_npz(path: str | Path, what: str, hint: str) -> tuple[Path, dict[str, np.ndarray]]:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f'{path}: {what} file not found; {hint}')
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelError(f'{path}: cannot be read as an .npz archive of {what} ({exc}); {hint}') from exc
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ModelError(f'{path}: holds a single array, not an .npz archive of {what}; {hint}')
    try:
        with data:
            arrays = {k: np.asarray(data[k]) for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelError(f'{path}: a damaged .npz archive of {what} ({exc}); {hint}') from exc
    return path, arrays


def _check_arrays(path: Path, arrays: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]],
                  what: str, hint: str) -> None:
    missing = [k for k in expected if k not in arrays]
    wrong = [f'{k} {tuple(arrays[k].shape)} != {shape}' for k, shape in expected.items()
             if k in arrays and tuple(arrays[k].shape) != shape]
    if missing or wrong:
        parts = []
        if missing:
            parts.append(f'missing keys {missing[:4]}' + (f' and {len(missing) - 4} more' if len(missing) > 4 else ''))
        if wrong:
            parts.append(f'shape mismatch {wrong[:3]}')
        detail = '; '.join(parts)
        raise ModelError(f'{path}: not {what} ({detail}); {hint}')
    bad = [k for k in expected if not np.issubdtype(arrays[k].dtype, np.floating) or not np.isfinite(arrays[k]).all()]
    if bad:
        raise ModelError(f'{path}: {what} with non-float or non-finite values in {bad[:3]}; {hint}')


def load_squeezenet_caffe_weights(network: SqueezeNetFeatures | SqueezeNetEncoder, path: str | Path) -> None:
    """Load the Caffe SqueezeNet v1.1 ImageNet weights (``squeezenet_v1.1_features.npz``) into ``network``
    (its Caffe layers; the encoder's stem keeps its initialization).

    The file maps Caffe layer names (``conv1/weight``, ``fire2/squeeze1x1/bias``, ...) to float arrays
    in PyTorch's OIHW layout; extra keys (a classifier, fire6-9 for the encoder) are ignored. Raises
    :class:`ModelError` naming the file when it is missing, not an .npz archive, lacks a layer or has a
    wrong shape (SqueezeNet v1.0 weights, for instance).
    """
    what = 'SqueezeNet v1.1 Caffe weights'
    hint = 'give squeezenet_v1.1_features.npz (shared/weights/squeezenet/) or omit the weights'
    own = network.state_dict()
    caffe_layers = ('conv1', *_FIRES)
    expected = {key.replace('.', '/'): tuple(value.shape) for key, value in own.items()
                if key.split('.')[0] in caffe_layers}
    path, arrays = _read_npz(path, what, hint)
    _check_arrays(path, arrays, expected, what, hint)
    with torch.no_grad():
        for key in expected:
            own[key.replace('/', '.')].copy_(torch.from_numpy(arrays[key].astype(np.float32)))


def load_lpips_heads(network: SqueezeNetFeatures, path: str | Path) -> None:
    """Load the LPIPS v0.1 SqueezeNet heads (``lpips_v0.1_squeeze.npz``) into an 'lpips' ``network``.

    The file holds ``lin0.model.1.weight`` ... ``lin6.model.1.weight`` of shapes (1, C_k, 1, 1),
    C = 64, 128, 256, 384, 384, 512, 512, all non-negative. Raises :class:`ModelError` naming the file
    when it is missing, not an .npz archive, lacks a head, has a wrong shape (the alex or vgg heads)
    or negative weights, or when ``network`` uses the 'l1' distance (which has no heads).
    """
    what = 'LPIPS v0.1 SqueezeNet heads'
    hint = 'give lpips_v0.1_squeeze.npz (shared/weights/lpips/)'
    if network.lpips is None:
        raise ModelError(f'{path}: LPIPS heads apply to distance \'lpips\', this network uses '
                         f'{network.distance!r}; drop the LPIPS weights or use distance \'lpips\'')
    expected = {f'lin{k}.model.1.weight': (1, c, 1, 1) for k, c in enumerate(network.lpips.widths)}
    path, arrays = _read_npz(path, what, hint)
    _check_arrays(path, arrays, expected, what, hint)
    negative = [k for k in expected if (arrays[k] < 0).any()]
    if negative:
        raise ModelError(f'{path}: LPIPS heads must be non-negative, {negative[:3]} are not; {hint}')
    with torch.no_grad():
        for k, key in enumerate(expected):
            network.lpips.weight(k).copy_(torch.from_numpy(arrays[key].astype(np.float32)))


def _warn_once(key: str, message: str, *args: object) -> None:
    if key not in _WARNED:
        _WARNED.add(key)
        _LOG.warning(message, *args)


def _load_caffe_or_warn(module: SqueezeNetFeatures | SqueezeNetEncoder, weights: str | Path | None,
                        warn_if_random: bool, key: str, what: str, effect: str) -> None:
    """Load the Caffe ImageNet ``weights`` into ``module``, or else (``warn_if_random``) warn once per ``key``."""
    if weights is not None:
        load_squeezenet_caffe_weights(module, weights)
    elif warn_if_random:
        _warn_once(key, f'!!! {what} (no ImageNet weights given; pass squeezenet_v1.1_features.npz). {effect} !!!')


def squeezenet_features(distance: str = 'lpips', weights: str | Path | None = None,
                        lpips_weights: str | Path | None = None, warn_if_random: bool = True) -> SqueezeNetFeatures:
    """SqueezeNet v1.1 features (7 LPIPS taps) for the perceptual difference, see :class:`SqueezeNetFeatures`.

    Args:
        distance: 'lpips' (LPIPS heads) or 'l1' (eq. 3 on unit-normalized features); the form of
            :meth:`SqueezeNetFeatures.difference`.
        weights: optional Caffe SqueezeNet v1.1 ImageNet weights (``squeezenet_v1.1_features.npz``).
        lpips_weights: optional LPIPS heads (``lpips_v0.1_squeeze.npz``), distance 'lpips' only;
            without them every channel weighs 1 (LPIPS's unlearned baseline).
        warn_if_random: log a warning (once per process) when no weights (or, for 'lpips', no heads)
            are given; set False when a trained state dict is loaded right after.
    """
    if distance not in SQUEEZENET_DISTANCES:
        raise ValueError(f'distance must be one of {list(SQUEEZENET_DISTANCES)}, got {distance!r}')
    if lpips_weights is not None and distance != 'lpips':
        raise ValueError(f'lpips_weights apply to distance \'lpips\', not {distance!r}')
    module = SqueezeNetFeatures(distance)
    _load_caffe_or_warn(module, weights, warn_if_random, 'squeezenet', 'SQUEEZENET features are RANDOMLY '
                        'INITIALIZED', 'Frozen random features give a weak perceptual difference')
    if lpips_weights is not None:
        load_lpips_heads(module, lpips_weights)
    elif distance == 'lpips' and warn_if_random:
        _warn_once('lpips_heads', 'LPIPS heads not given (lpips_v0.1_squeeze.npz): every SqueezeNet channel '
                   'weighs 1 in the perceptual difference (LPIPS\'s unlearned baseline)')
    return module


def squeezenet_encoder(weights: str | Path | None = None, stem_channels: int = 16,
                       warn_if_random: bool = True) -> SqueezeNetEncoder:
    """SqueezeNet v1.1 image encoder of the dissimilarity network, see :class:`SqueezeNetEncoder`.

    Args:
        weights: optional Caffe SqueezeNet v1.1 ImageNet weights (``squeezenet_v1.1_features.npz``).
        stem_channels: channels of the trainable full-resolution stem.
        warn_if_random: log a warning (once per process) when no weights are given.
    """
    module = SqueezeNetEncoder(stem_channels)
    _load_caffe_or_warn(module, weights, warn_if_random, 'squeezenet_encoder', 'SQUEEZENET encoder of the '
                        'dissimilarity network is RANDOMLY INITIALIZED', 'It then trains from scratch instead of '
                        'fine-tuning')
    return module
