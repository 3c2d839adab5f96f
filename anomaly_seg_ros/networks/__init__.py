"""Pure PyTorch networks of the pipeline: ICNet and ESPNetv2, SPADE generator and discriminator, VGG and
SqueezeNet feature extractors and the dissimilarity network, with builders from architecture dicts.

Every module's ``forward`` returns tensors only and exports to ONNX opset 17 with static shapes.
"""
from __future__ import annotations

from .builders import (
    LIGHT_INPUT_SIZES,
    NETWORK_BUILDERS,
    PAPER_INPUT_SIZES,
    STAGE_NETWORKS,
    architecture_with_defaults,
    build_network,
    count_parameters,
    light_architectures,
    load_pretrained,
    normalize_architecture,
    paper_architectures,
)
from .discriminator import MultiscaleDiscriminator, NLayerDiscriminator, multiscale_discriminator
from .dissimilarity import UNCERTAINTY_CHANNELS, DissimilarityNetwork, dissimilarity_network
from .espnetv2 import ESPNetv2Segmentation, espnetv2
from .functional import one_hot, resize_bilinear, resize_labels_nearest
from .generator import SPADEGenerator, spade_generator
from .icnet import ICNet, icnet_light, icnet_resnet50
from .spade import SPADE, SPADEResnetBlock
from .spectral_norm import fold_spectral_norm, has_spectral_norm, spectral_norm
from .squeezenet import SqueezeNetFeatures, squeezenet_features
from .vgg import VGG16Encoder, VGG19Features, load_torchvision_vgg_weights, vgg16_encoder, vgg19_features

__all__ = [
    'LIGHT_INPUT_SIZES',
    'NETWORK_BUILDERS',
    'PAPER_INPUT_SIZES',
    'SPADE',
    'STAGE_NETWORKS',
    'UNCERTAINTY_CHANNELS',
    'DissimilarityNetwork',
    'ESPNetv2Segmentation',
    'ICNet',
    'MultiscaleDiscriminator',
    'NLayerDiscriminator',
    'SPADEGenerator',
    'SPADEResnetBlock',
    'SqueezeNetFeatures',
    'VGG16Encoder',
    'VGG19Features',
    'architecture_with_defaults',
    'build_network',
    'count_parameters',
    'dissimilarity_network',
    'espnetv2',
    'fold_spectral_norm',
    'has_spectral_norm',
    'icnet_light',
    'icnet_resnet50',
    'light_architectures',
    'load_pretrained',
    'load_torchvision_vgg_weights',
    'multiscale_discriminator',
    'normalize_architecture',
    'one_hot',
    'paper_architectures',
    'resize_bilinear',
    'resize_labels_nearest',
    'spade_generator',
    'spectral_norm',
    'squeezenet_features',
    'vgg16_encoder',
    'vgg19_features',
]
