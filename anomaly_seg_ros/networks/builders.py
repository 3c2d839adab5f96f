"""Build a stage's network from its architecture dict (``model.yaml``: stages.<stage>.architecture).

An architecture dict is ``{'name': <builder>, **builder keyword arguments}`` in plain YAML types, so
the torch backend, export and training rebuild every network without code changes. The paper-scale
and CPU ("light") defaults are :func:`paper_architectures` and :func:`light_architectures`.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import ModelError
from .discriminator import multiscale_discriminator
from .dissimilarity import dissimilarity_network
from .espnetv2 import espnetv2
from .generator import spade_generator
from .icnet import ICNet, icnet_light, icnet_resnet50
from .pretrained import load_espnetv2_cityscapes
from .squeezenet import squeezenet_features
from .vgg import vgg16_encoder, vgg19_features

__all__ = [
    'LIGHT_INPUT_SIZES',
    'NETWORK_BUILDERS',
    'PAPER_INPUT_SIZES',
    'STAGE_NETWORKS',
    'build_network',
    'count_parameters',
    'light_architectures',
    'load_pretrained',
    'normalize_architecture',
    'paper_architectures',
]

NETWORK_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    'icnet': ICNet,
    'icnet_light': icnet_light,
    'icnet_resnet50': icnet_resnet50,
    'espnetv2': espnetv2,
    'spade_generator': spade_generator,
    'vgg19_features': vgg19_features,
    'squeezenet_features': squeezenet_features,
    'vgg16_encoder': vgg16_encoder,
    'dissimilarity': dissimilarity_network,
    'multiscale_discriminator': multiscale_discriminator,
}

# Builders allowed for each pipeline stage.
STAGE_NETWORKS: dict[str, tuple[str, ...]] = {
    'segmentation': ('icnet', 'icnet_light', 'icnet_resnet50', 'espnetv2'),
    'synthesis': ('spade_generator',),
    'perceptual': ('vgg19_features', 'squeezenet_features'),
    'dissimilarity': ('dissimilarity',),
}

# Builder arguments that are not architecture (they never appear in model.yaml).
_RUNTIME_ARGS = {'weights', 'encoder_weights', 'lpips_weights', 'warn_if_random'}
# Which builder argument takes an ImageNet weights file (torchvision VGG, Caffe SqueezeNet), per builder.
_IMAGENET_ARG = {'vgg19_features': 'weights', 'vgg16_encoder': 'weights', 'dissimilarity': 'encoder_weights',
                 'squeezenet_features': 'weights'}
# Builders whose published weights (another project's file format) load into the built network.
_PRETRAINED_LOADERS: dict[str, Callable[[Any, str | Path], None]] = {'espnetv2': load_espnetv2_cityscapes}

PAPER_INPUT_SIZES: dict[str, tuple[int, int]] = {
    'segmentation': (1024, 2048), 'synthesis': (256, 512), 'perceptual': (256, 512), 'dissimilarity': (256, 512)}
LIGHT_INPUT_SIZES: dict[str, tuple[int, int]] = {
    'segmentation': (256, 512), 'synthesis': (128, 256), 'perceptual': (128, 256), 'dissimilarity': (128, 256)}


def paper_architectures(num_classes: int, synthesis_size: tuple[int, int] = PAPER_INPUT_SIZES['synthesis']
                        ) -> dict[str, dict[str, Any]]:
    """Paper-scale architecture dicts per stage: ICNet ResNet-50, SPADE ngf 64, full VGG19, the
    paper's dissimilarity network (with 19 classes: 18,780,162 parameters).

    Args:
        num_classes: label set size.
        synthesis_size: (H, W) of the synthesis stage (the generator's output size).
    """
    return {
        'segmentation': {'name': 'icnet_resnet50', 'num_classes': num_classes},
        'synthesis': {'name': 'spade_generator', 'num_classes': num_classes,
                      'output_size': [int(synthesis_size[0]), int(synthesis_size[1])], 'ngf': 64,
                      'num_upsampling_layers': 'normal', 'spade_hidden': 128, 'norm': 'batch',
                      'spectral_norm': True},
        'perceptual': {'name': 'vgg19_features', 'width': 1.0},
        'dissimilarity': {'name': 'dissimilarity', 'num_classes': num_classes, 'width': 1.0,
                          'use_uncertainty': True, 'spade_decoder': True, 'use_correlation': True},
    }


def light_architectures(num_classes: int, synthesis_size: tuple[int, int] = LIGHT_INPUT_SIZES['synthesis']
                        ) -> dict[str, dict[str, Any]]:
    """CPU ("light") architecture dicts per stage, about 20 GFLOP a frame at :data:`LIGHT_INPUT_SIZES`:
    ICNet light, SPADE ngf 16 (hidden 24), VGG19 width 0.25, dissimilarity network width 0.25.

    Args:
        num_classes: label set size (10 for the synthetic label set).
        synthesis_size: (H, W) of the synthesis stage (the generator's output size).
    """
    return {
        'segmentation': {'name': 'icnet_light', 'num_classes': num_classes},
        'synthesis': {'name': 'spade_generator', 'num_classes': num_classes,
                      'output_size': [int(synthesis_size[0]), int(synthesis_size[1])], 'ngf': 16,
                      'num_upsampling_layers': 'normal', 'spade_hidden': 24, 'norm': 'batch',
                      'spectral_norm': True},
        'perceptual': {'name': 'vgg19_features', 'width': 0.25},
        'dissimilarity': {'name': 'dissimilarity', 'num_classes': num_classes, 'width': 0.25,
                          'use_uncertainty': True, 'spade_decoder': True, 'use_correlation': True},
    }


def normalize_architecture(architecture: Mapping[str, Any]) -> dict[str, Any]:
    """A plain-YAML copy (tuples -> lists, recursively) for storing and comparing architectures."""
    def plain(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value
    return plain(dict(architecture))


def architecture_with_defaults(architecture: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`normalize_architecture` of ``architecture`` with its builder's defaults filled in, so that an
    argument left out and the same argument spelled with its default value compare equal (a model directory
    written before an architecture argument existed still matches). Unknown builders are left as they are."""
    builder = NETWORK_BUILDERS.get(str(architecture.get('name')))
    full: dict[str, Any] = {}
    if builder is not None:
        full = {k: p.default for k, p in inspect.signature(builder).parameters.items()
                if k not in _RUNTIME_ARGS and p.default is not inspect.Parameter.empty}
    full.update(architecture)
    return normalize_architecture(full)


def build_network(stage: str, architecture: Mapping[str, Any], *, imagenet_weights: str | Path | None = None,
                  lpips_weights: str | Path | None = None, warn_if_random: bool = True) -> nn.Module:
    """Construct (randomly initialized) the network of ``stage`` from its architecture dict.

    Args:
        stage: 'segmentation' | 'synthesis' | 'perceptual' | 'dissimilarity'.
        architecture: ``{'name': builder, **kwargs}`` (see :data:`NETWORK_BUILDERS`).
        imagenet_weights: ImageNet weights for the perceptual and dissimilarity stages: a torchvision VGG
            state dict (perceptual VGG19, the dissimilarity VGG16 encoder; width 1 only) or the Caffe
            SqueezeNet v1.1 features (``.npz``, perceptual ``squeezenet_features``).
        lpips_weights: LPIPS heads (``.npz``) for ``squeezenet_features`` with distance 'lpips'.
        warn_if_random: warn once when a VGG starts without ImageNet weights (set False when a
            trained state dict is loaded right after).

    Raises:
        ModelError: unknown stage or builder, a builder not allowed for the stage, or arguments the
            builder does not take.
    """
    if stage not in STAGE_NETWORKS:
        raise ModelError(f'unknown stage {stage!r}; stages: {sorted(STAGE_NETWORKS)}')
    kwargs = dict(architecture)
    name = kwargs.pop('name', None)
    if name not in STAGE_NETWORKS[stage]:
        raise ModelError(f'architecture of stage {stage!r} names builder {name!r}; it must be one of '
                         f'{list(STAGE_NETWORKS[stage])} (check stages.{stage}.architecture.name in model.yaml)')
    builder = NETWORK_BUILDERS[name]
    params = inspect.signature(builder).parameters
    unknown = sorted(set(kwargs) - (set(params) - _RUNTIME_ARGS))
    if unknown:
        raise ModelError(f'architecture of stage {stage!r}: {name} takes no argument(s) {unknown}; '
                         f'accepted: {sorted(set(params) - _RUNTIME_ARGS)}')
    if 'warn_if_random' in params:
        kwargs['warn_if_random'] = warn_if_random
    if imagenet_weights is not None:
        if name not in _IMAGENET_ARG:
            raise ValueError(f'ImageNet weights apply to the perceptual and dissimilarity stages, not {stage!r}')
        kwargs[_IMAGENET_ARG[name]] = imagenet_weights
    if lpips_weights is not None:
        if 'lpips_weights' not in params:
            raise ValueError(f'LPIPS heads apply to the squeezenet_features perceptual network, not {name!r}')
        kwargs['lpips_weights'] = lpips_weights
    try:
        return builder(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ModelError(f'architecture of stage {stage!r} ({name}) is invalid: {exc}') from exc


def load_pretrained(network: nn.Module, architecture: Mapping[str, Any], path: str | Path) -> None:
    """Load another project's published weights for ``architecture`` into ``network`` (in place).

    Raises:
        ModelError: the architecture has no known published format, or the file does not fit it.
    """
    name = architecture.get('name')
    loader = _PRETRAINED_LOADERS.get(str(name))
    if loader is None:
        raise ModelError(f'no published weights format is known for {name!r}; pretrained weights load for: '
                         f'{sorted(_PRETRAINED_LOADERS)} (train this stage instead)')
    loader(network, path)


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (trainable or not) of ``module``."""
    return sum(p.numel() for p in module.parameters())
