"""Parameter declarations and the one validation function (no ROS graph needed)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from anomaly_seg_ros.ros import parameters
from anomaly_seg_ros.ros.outputs import OUTPUT_TOPICS
from anomaly_seg_ros.ros.parameters import DEFAULTS, PARAMETERS, READ_ONLY, ParameterError, validate, validate_update

CONFIG = Path(__file__).resolve().parents[2] / 'config' / 'anomaly_seg.yaml'


def _flatten(mapping: dict, prefix: str = '') -> dict:
    flat = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f'{prefix}{key}.'))
        else:
            flat[f'{prefix}{key}'] = value
    return flat


def test_config_file_holds_exactly_the_declared_defaults():
    data = yaml.safe_load(CONFIG.read_text())
    assert list(data) == ['anomaly_seg'] and list(data['anomaly_seg']) == ['ros__parameters']
    assert _flatten(data['anomaly_seg']['ros__parameters']) == DEFAULTS


def test_defaults_validate_to_input_size_all_outputs_and_the_model_weights():
    settings = validate(DEFAULTS)
    assert settings.output_size is None
    assert settings.outputs == tuple(OUTPUT_TOPICS)
    assert settings.ensemble_weights is None
    assert (settings.input_reliability, settings.input_depth) == ('best_effort', 1)
    assert settings.backend == 'onnxruntime' and settings.model_dir == ''


@pytest.mark.parametrize(('text', 'expected'), [('input', None), ('network', 'network'), ('640x480', (480, 640)),
                                                (' 64 x 32 ', (32, 64))])
def test_output_size_forms(text, expected):
    assert validate({'output_size': text}).output_size == expected


def test_integer_numbers_are_accepted_where_floats_are_meant():
    settings = validate({'ensemble_weights': [3, 1, 0, 0], 'heatmap_range': [0, 1], 'overlay_alpha': 1})
    assert settings.ensemble_weights == (3.0, 1.0, 0.0, 0.0)
    assert settings.style.overlay_alpha == 1.0


@pytest.mark.parametrize(('name', 'value', 'reason'), [
    ('backend', 'cuda', 'not one of onnxruntime, tensorrt, torch'),
    ('device', 'gpu0', "'cuda:N'"),
    ('input_transport', 'theora', 'not one of raw, compressed'),
    ('precision', 'int4', 'not one of fp32, fp16, int8'),
    ('qos.input_reliability', 'sometimes', 'not one of best_effort, reliable'),
    ('qos.input_depth', 0, r'outside \[1, 100\]'),
    ('qos.output_depth', 1.5, 'must be an integer'),
    ('outputs', ['anomaly', 'heatmap'], "unknown outputs \\['heatmap'\\]"),
    ('outputs', [], 'at least one output'),
    ('publishing', 'sometimes', 'not one of auto, parallel, inline'),
    ('output_size', 'huge', 'WIDTHxHEIGHT'),
    ('output_size', '0x10', 'must be in 1..16384'),
    ('ensemble_weights', [1.0, 0.0, 0.0], 'list of 4 numbers'),
    ('ensemble_weights', [1.0, -1.0, 0.0, 0.0], 'non-negative'),
    ('ensemble_weights', [1.0, float('nan'), 0.0, 0.0], 'finite'),
    ('ensemble_weights', [1e308, 1e308, 0.0, 0.0], 'outside float32 range'),
    ('ensemble_weights', [1e-320, 0.0, 0.0, 0.0], 'outside float32 range'),
    ('input_significant_bits', 7, r'outside \[8, 16\]'),
    ('max_frame_pixels', 0, 'outside'),
    ('output_size', '8192x8192', 'above max_frame_pixels'),
    ('input_significant_bits', 12.5, 'must be an integer'),
    ('colormap', 'rainbow', 'not one of turbo'),
    ('heatmap_range', [1.0, 0.0], 'low < high'),
    ('overlay_alpha', 1.5, r'outside \[0, 1\]'),
    ('overlay_alpha', 'half', 'must be a number'),
    ('diagnostics_period', 0.0, r'outside \[0.1, 60\]'),
    ('model_dir', 7, 'must be a string'),
])
def test_invalid_values_are_rejected_with_a_reason(name, value, reason):
    with pytest.raises(ParameterError, match=reason) as info:
        validate({name: value})
    assert info.value.name == name


def test_unknown_parameter_is_rejected():
    with pytest.raises(ParameterError, match='unknown parameter'):
        validate({'colour_map': 'turbo'})


def test_update_of_a_read_only_parameter_is_rejected_and_names_what_to_do():
    with pytest.raises(ParameterError, match='read-only.*restart the node'):
        validate_update(DEFAULTS, {'backend': 'torch'})
    # setting a read-only parameter to its current value is no change
    assert validate_update(DEFAULTS, {'backend': 'onnxruntime'}).backend == 'onnxruntime'


def test_update_is_validated_together_with_current_values():
    current = {**DEFAULTS, 'heatmap_range': [0.2, 0.6]}
    assert validate_update(current, {'colormap': 'inferno'}).style.value_range == (0.2, 0.6)
    with pytest.raises(ParameterError, match='low < high'):
        validate_update(current, {'heatmap_range': [0.6, 0.6]})


def test_runtime_parameters_are_the_style_size_weights_and_input_bits():
    assert set(DEFAULTS) - READ_ONLY == {'output_size', 'ensemble_weights', 'colormap', 'heatmap_range',
                                         'overlay_alpha', 'input_significant_bits', 'max_frame_pixels'}


def test_every_parameter_has_a_descriptor_with_description_and_range():
    pytest.importorskip('rcl_interfaces')
    for spec in PARAMETERS:
        desc = parameters.descriptor(spec)
        assert desc.description and desc.read_only == spec.read_only, spec.name
        if spec.number_range is not None:
            assert desc.integer_range or desc.floating_point_range, spec.name
