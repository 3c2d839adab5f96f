"""model.yaml: round trip, validation, and errors that say what to do."""
from __future__ import annotations

import pytest
import yaml

from anomaly_seg_ros.errors import ModelError
from anomaly_seg_ros.labels import CAMVID
from anomaly_seg_ros.model_config import (
    METADATA_FILE,
    ModelConfig,
    StageConfig,
    load_model_config,
    save_model_config,
)
from anomaly_seg_ros.stages import stage_specs, stages_needed


def _config() -> ModelConfig:
    stages = {
        'segmentation': StageConfig((64, 128), {'name': 'icnet_light', 'num_classes': 11}, {'torch': 'seg.pt'}),
        'synthesis': StageConfig((32, 64), {'name': 'spade_generator'}),
        'perceptual': StageConfig((32, 64), {'name': 'vgg19_features'}, options={'scale': 2.5,
                                                                                  'normalization': 'minmax'}),
        'dissimilarity': StageConfig((32, 64), {'name': 'dissimilarity'}),
    }
    return ModelConfig(label_set=CAMVID, stages=stages, ensemble_weights=(1, 2, 0, 1),
                       provenance={'seed': 3})


def test_model_config_survives_a_save_and_load_round_trip(tmp_path):
    save_model_config(_config(), tmp_path)
    loaded = load_model_config(tmp_path)
    assert loaded == _config()
    assert loaded.perceptual_scale == 2.5 and loaded.perceptual_normalization == 'minmax'
    assert loaded.label_set.num_classes == 11


def test_missing_directory_and_missing_metadata_name_the_path(tmp_path):
    with pytest.raises(ModelError, match='does not exist'):
        load_model_config(tmp_path / 'nope')
    with pytest.raises(ModelError, match=f'{METADATA_FILE} is missing'):
        load_model_config(tmp_path)


def test_metadata_of_another_format_version_is_refused(tmp_path):
    data = _config().to_dict()
    data['format_version'] = 99
    (tmp_path / METADATA_FILE).write_text(yaml.safe_dump(data))
    with pytest.raises(ModelError, match='format_version 99 is not supported'):
        load_model_config(tmp_path)


@pytest.mark.parametrize('mutate, match', [
    (lambda d: d['stages'].pop('synthesis'), 'stages .*synthesis.* missing'),
    (lambda d: d.update(ensemble_weights=[1, 1]), 'ensemble_weights must be 4'),
    (lambda d: d['stages']['segmentation'].pop('input_size'), 'malformed metadata'),
    (lambda d: d['label_set'].update(colors=[[0, 0, 0]]), 'malformed metadata'),
    (lambda d: d['label_set']['colors'].__setitem__(2, [10, 20]), r'label_set.colors\[2\] is \[10, 20\]'),
    (lambda d: d['label_set']['colors'].__setitem__(0, [10, 20, 300]), r'label_set.colors\[0\].*0..255'),
    (lambda d: d['label_set']['colors'].__setitem__(1, 'red'), r'label_set.colors\[1\]'),
])
def test_inconsistent_metadata_is_refused_with_a_reason(tmp_path, mutate, match):
    data = _config().to_dict()
    mutate(data)
    (tmp_path / METADATA_FILE).write_text(yaml.safe_dump(data))
    with pytest.raises(ModelError, match=match):
        load_model_config(tmp_path)


def test_garbage_metadata_is_refused(tmp_path):
    (tmp_path / METADATA_FILE).write_text('[unclosed')
    with pytest.raises(ModelError, match='cannot be read as YAML'):
        load_model_config(tmp_path)


def test_stage_specs_follow_the_configured_resolutions():
    specs = stage_specs(_config())
    assert specs['segmentation'].inputs[0].shape == (1, 3, 64, 128)
    assert dict((t.name, t.shape) for t in specs['dissimilarity'].outputs)['anomaly'] == (1, 1, 32, 64)
    assert specs['synthesis'].inputs[0].dtype == 'int32'


def test_stages_needed_is_the_shortest_prefix_producing_the_outputs():
    assert stages_needed(frozenset({'entropy'})) == ('segmentation',)
    assert stages_needed(frozenset({'perceptual_difference', 'semantic'})) == \
        ('segmentation', 'synthesis', 'perceptual')
    assert stages_needed(frozenset({'anomaly'}))[-1] == 'dissimilarity'
    with pytest.raises(ValueError, match='unknown outputs'):
        stages_needed(frozenset({'nope'}))
