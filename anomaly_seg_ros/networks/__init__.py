"""Pure PyTorch networks of the pipeline: ICNet, SPADE generator and discriminator, VGG feature
extractors and the dissimilarity network, with builders from architecture dicts.

Every module's ``forward`` returns tensors only and exports to ONNX opset 17 with static shapes.
"""
from __future__ import annotations

from .builders import (
    LIGHT_INPUT_SIZES,
    NETWORK_BUILDERS,
    PAPER_INPUT_SIZES,
    STAGE_NETWORKS,
    build_network,
    count_parameters,
    light_architectures,
    normalize_architecture,
    paper_architectures,
)
from .discriminator import MultiscaleDiscriminator, NLayerDiscriminator, multiscale_discriminator
from .dissimilarity import UNCERTAINTY_CHANNELS, DissimilarityNetwork, dissimilarity_network
from .functional import one_hot, resize_bilinear, resize_labels_nearest
from .generator import SPADEGenerator, spade_generator
from .icnet import ICNet, icnet_light, icnet_resnet50
from .spade import SPADE, SPADEResnetBlock
from .spectral_norm import fold_spectral_norm, has_spectral_norm, spectral_norm
from .vgg import VGG16Encoder, VGG19Features, load_torchvision_vgg_weights, vgg16_encoder, vgg19_features

__all__ = [
    'LIGHT_INPUT_SIZES',
    'NETWORK_BUILDERS',
    'PAPER_INPUT_SIZES',
    'SPADE',
    'STAGE_NETWORKS',
    'UNCERTAINTY_CHANNELS',
    'DissimilarityNetwork',
    'ICNet',
    'MultiscaleDiscriminator',
    'NLayerDiscriminator',
    'SPADEGenerator',
    'SPADEResnetBlock',
    'VGG16Encoder',
    'VGG19Features',
    'build_network',
    'count_parameters',
    'dissimilarity_network',
    'fold_spectral_norm',
    'has_spectral_norm',
    'icnet_light',
    'icnet_resnet50',
    'light_architectures',
    'load_torchvision_vgg_weights',
    'multiscale_discriminator',
    'normalize_architecture',
    'one_hot',
    'paper_architectures',
    'resize_bilinear',
    'resize_labels_nearest',
    'spade_generator',
    'spectral_norm',
    'vgg16_encoder',
    'vgg19_features',
]
