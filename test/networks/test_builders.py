"""Building networks from architecture dicts; the paper and light configurations' sizes and costs."""
from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from anomaly_seg_ros.errors import ModelError
from anomaly_seg_ros.networks import (
    LIGHT_INPUT_SIZES,
    DissimilarityNetwork,
    ICNet,
    SPADEGenerator,
    VGG19Features,
    build_network,
    light_architectures,
    normalize_architecture,
    paper_architectures,
)
from anomaly_seg_ros.stage_modules import build_stage_module, light_model_config
from anomaly_seg_ros.stages import STAGES, stage_specs


def test_light_architectures_build_the_expected_networks() -> None:
    arch = light_architectures(10)
    built = {stage: build_network(stage, arch[stage], warn_if_random=False) for stage in arch}
    assert isinstance(built['segmentation'], ICNet)
    assert isinstance(built['synthesis'], SPADEGenerator)
    assert built['synthesis'].output_size == LIGHT_INPUT_SIZES['synthesis']
    assert isinstance(built['perceptual'], VGG19Features)
    assert isinstance(built['dissimilarity'], DissimilarityNetwork)


def test_paper_architectures_are_plain_yaml_and_name_paper_networks() -> None:
    arch = paper_architectures(19)
    assert normalize_architecture(arch['synthesis']) == arch['synthesis']
    assert arch['segmentation']['name'] == 'icnet_resnet50'
    assert arch['synthesis']['ngf'] == 64
    assert arch['dissimilarity']['width'] == 1.0


def test_unknown_builder_and_arguments_raise_model_error() -> None:
    with pytest.raises(ModelError, match='must be one of'):
        build_network('segmentation', {'name': 'dissimilarity'})
    with pytest.raises(ModelError, match='takes no argument'):
        build_network('perceptual', {'name': 'vgg19_features', 'depth': 19})
    with pytest.raises(ModelError, match='unknown stage'):
        build_network('fusion', {'name': 'icnet_light'})
    with pytest.raises(ModelError, match='invalid'):
        build_network('synthesis', {'name': 'spade_generator', 'num_classes': 3, 'output_size': [30, 30]})


def test_light_configuration_costs_about_20_gflop_a_frame() -> None:
    config = light_model_config()
    specs = stage_specs(config)
    total = 0.0
    for stage in STAGES:
        module = build_stage_module(stage, config).to('meta').eval()
        args = []
        for spec in specs[stage].inputs:
            dtype = torch.int32 if spec.dtype == 'int32' else torch.float32
            args.append(torch.zeros(spec.shape, dtype=dtype, device='meta'))
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            module(*args)
        total += counter.get_total_flops() / 1e9
    assert 15.0 < total < 25.0


def test_an_argument_left_out_equals_its_default_value():
    from anomaly_seg_ros.networks import architecture_with_defaults
    base = {'name': 'dissimilarity', 'num_classes': 19, 'width': 0.25}
    assert architecture_with_defaults(base) == architecture_with_defaults({**base, 'encoder': 'vgg16'})
    assert architecture_with_defaults(base) != architecture_with_defaults({**base, 'encoder': 'squeezenet'})
    assert 'encoder_weights' not in architecture_with_defaults(base)  # runtime arguments are not architecture
    unknown = {'name': 'not_a_builder', 'x': 1}
    assert architecture_with_defaults(unknown) == unknown
