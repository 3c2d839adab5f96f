"""Typed training configuration: presets, YAML files, overrides, errors."""
from __future__ import annotations

import pytest
import yaml

from anomaly_seg_ros.labels import SYNTHETIC
from anomaly_seg_ros.training import ConfigError, config_from_dict, config_to_dict, load_train_config, parse_overrides
from anomaly_seg_ros.training.model_dir import model_config_for


def test_presets_follow_the_paper_schedule_for_the_dissimilarity_network():
    for preset in ('light', 'paper', 'demo'):
        config = load_train_config(preset)
        assert config.preset == preset
    paper = load_train_config('paper').dissimilarity
    assert (paper.epochs, paper.batch_size, paper.lr, paper.beta1, paper.beta2) == (50, 4, 1e-4, 0.5, 0.999)
    assert (paper.plateau_patience, paper.plateau_factor, paper.class_weighting) == (10, 0.5, 'enet')
    assert paper.generator.sources == ['A', 'B']
    synthesis = load_train_config('paper').synthesis
    assert (synthesis.lr_g, synthesis.lr_d, synthesis.beta1, synthesis.beta2) == (1e-4, 4e-4, 0.0, 0.9)


def test_yaml_file_then_flags_then_set_overrides(tmp_path):
    path = tmp_path / 'run.yaml'
    path.write_text(yaml.safe_dump({'preset': 'light', 'seed': 3, 'dissimilarity': {'epochs': 7, 'batch_size': 2}}))
    config = load_train_config(path, {'dissimilarity': {'epochs': 9, 'batch_size': None}},
                               parse_overrides(['segmentation.crop_size=[128, 256]', 'seed=5']))
    assert config.seed == 5
    assert config.dissimilarity.epochs == 9 and config.dissimilarity.batch_size == 2
    assert config.segmentation.crop_size == [128, 256]
    assert config_from_dict(config_to_dict(config)) == config


def test_exponent_without_a_dot_is_a_number():
    # YAML 1.1 reads 5e-5 as a string; a learning rate typed that way must still work.
    config = load_train_config('light', sets=parse_overrides(['dissimilarity.lr=5e-5', 'synthesis.lr_g=1.5E-4']))
    assert config.dissimilarity.lr == 5e-5 and config.synthesis.lr_g == 1.5e-4


@pytest.mark.parametrize('sets, message', [
    (['dissimilarity.epoch=3'], 'unknown key'),
    (['dissimilarity.epochs=three'], 'expected an integer'),
    (['dissimilarity.lr=fast'], 'expected a number'),
    (['seed'], 'KEY=VALUE'),
])
def test_bad_overrides_raise_config_errors(sets, message):
    with pytest.raises(ConfigError, match=message):
        load_train_config('light', sets=parse_overrides(sets))


def test_unknown_preset_or_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match='neither a preset'):
        load_train_config(str(tmp_path / 'nope.yaml'))


def test_architecture_overrides_and_the_ablation_flag_reach_the_model_metadata():
    config = load_train_config('demo', sets=parse_overrides(['dissimilarity.use_uncertainty=false']))
    model = model_config_for(config, SYNTHETIC)
    assert model.stage('synthesis').architecture['ngf'] == 6
    assert model.stage('segmentation').architecture['planes'] == [32, 64, 64, 96]
    assert model.stage('dissimilarity').architecture['use_uncertainty'] is False


@pytest.mark.parametrize('sets, message', [
    (['dissimilarity.generator.sources=[A, C]'], 'sources'),
    (['segmentation.crop_size=[100, 200]'], 'divisible by 32'),
    (['export.torch_dtype=int8'], 'torch_dtype'),
    (['ensemble.criterion=highest_ap'], 'ensemble.criterion'),
])
def test_invalid_choices_are_rejected_before_training(sets, message):
    with pytest.raises(ConfigError, match=message):
        load_train_config('light', sets=parse_overrides(sets))
