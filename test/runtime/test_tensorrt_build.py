"""The engine build for TensorRT 10 and 11, with a fake ``tensorrt`` whose enums differ per version."""
from __future__ import annotations

import logging
import shutil

import pytest
from fake_tensorrt import make_fake_trt, patch_cuda, patch_trt

from anomaly_seg_ros.errors import BackendError, ModelError
from anomaly_seg_ros.export.tensorrt_build import build_engines, build_settings
from anomaly_seg_ros.model_config import load_model_config
from anomaly_seg_ros.runtime.tensorrt_backend import TensorRTBackend
from anomaly_seg_ros.runtime.tensorrt_common import platform_tag
from anomaly_seg_ros.stages import STAGE_ORDER


@pytest.mark.parametrize('version, precision, strongly_typed, onnx_format, builder_flags, pinned, cleared', [
    ('10.3.0', 'fp32', False, 'onnx', (), (), ('TF32',)),
    ('10.3.0', 'fp16', False, 'onnx', ('FP16', 'OBEY_PRECISION_CONSTRAINTS'),
     ('NORMALIZATION', 'REDUCE', 'SOFTMAX', 'TOPK'), ()),
    ('10.11.0.33', 'fp16', False, 'onnx', ('FP16', 'OBEY_PRECISION_CONSTRAINTS'),
     ('NORMALIZATION', 'REDUCE', 'SOFTMAX', 'TOPK'), ()),
    ('10.12.0', 'fp16', True, 'onnx_fp16', (), (), ()),
    ('10.14.1', 'fp32', True, 'onnx', (), (), ('TF32',)),
    ('11.0.0', 'fp16', True, 'onnx_fp16', (), (), ()),
    ('11.1.0', 'fp32', True, 'onnx', (), (), ('TF32',)),
])
def test_build_settings_follow_the_tensorrt_version(version, precision, strongly_typed, onnx_format, builder_flags,
                                                    pinned, cleared):
    trt = make_fake_trt(version)
    settings = build_settings(trt, precision)
    assert settings.strongly_typed is strongly_typed
    assert settings.onnx_format == onnx_format
    assert settings.builder_flags == builder_flags and settings.fp32_layer_types == pinned
    assert settings.cleared_flags == cleared  # fp32 engines without TF32, on 10.x and 11.x alike
    if version.startswith('11') or not strongly_typed:
        assert settings.network_flags == 0
    else:  # the bit of the STRONGLY_TYPED member, whatever its value in this version
        assert settings.network_flags == 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    for flag in (*settings.builder_flags, *settings.cleared_flags):
        assert hasattr(trt.BuilderFlag, flag)


def test_tensorrt_before_10_is_refused():
    with pytest.raises(BackendError, match='TensorRT 8.6.1 is too old'):
        build_settings(make_fake_trt('8.6.1'), 'fp32')


def _exported(constant_model_dir, fp16_files: bool = True):
    model_dir, config = constant_model_dir
    if fp16_files:
        for stage in STAGE_ORDER:
            shutil.copy2(model_dir / f'{stage}.onnx', model_dir / f'{stage}.fp16.onnx')
    return model_dir


@pytest.mark.parametrize('version, precision', [('10.3.0', 'fp16'), ('10.3.0', 'fp32'), ('10.13.0', 'fp16'),
                                                ('11.1.0', 'fp16'), ('11.1.0', 'fp32')])
def test_build_writes_engines_metadata_and_timing_cache_and_the_engines_load(
        monkeypatch, constant_model_dir, caplog, version, precision):
    trt = make_fake_trt(version)
    patch_trt(monkeypatch, trt)
    patch_cuda(monkeypatch, (8, 7), 'Orin')
    model_dir = _exported(constant_model_dir)
    with caplog.at_level(logging.INFO, logger='anomaly_seg_ros.tensorrt'):
        config = build_engines(model_dir, precision=precision, workspace_gb=1.5)
    def levels(text: str) -> set[int]:
        return {r.levelno for r in caplog.records if text in r.getMessage()}

    assert levels('BUILDING TensorRT ENGINES for 4 stages') == {logging.WARNING}
    assert levels('.engine in ') == {logging.INFO}  # "built X.engine in N s": progress, not a warning
    settings = build_settings(trt, precision)
    suffix = '.fp16.onnx' if settings.onnx_format == 'onnx_fp16' else '.onnx'
    assert [p.rsplit('/', 1)[-1] for p in trt.calls['parsed']] == [f'{s}{suffix}' for s in STAGE_ORDER]
    assert trt.calls['network_flags'] == [settings.network_flags] * 4
    assert trt.calls['builder_flags'] == list(settings.builder_flags) * 4
    assert trt.calls['cleared_flags'] == (['TF32'] if precision == 'fp32' else []) * 4
    assert trt.calls['pinned'] == [3 if settings.fp32_layer_types else 0] * 4  # norm, reduce, softmax layers
    assert trt.calls['workspace'] == [('WORKSPACE', int(1.5 * 2**30))] * 4
    # The timing cache starts empty, grows with each engine and is saved.
    assert trt.calls['timing_cache'][0] == b'' and (model_dir / 'tensorrt_timing.cache').read_bytes() == b'++++'
    saved = load_model_config(model_dir)
    assert saved.tensorrt['version'] == version and saved.tensorrt['compute_capability'] == '8.7'
    assert saved.tensorrt['gpu_name'] == 'Orin' and saved.tensorrt['platform'] == platform_tag()
    assert saved.tensorrt['precision'] == precision and saved == config
    assert all(saved.stage(s).files['tensorrt'] == f'{s}.engine' for s in STAGE_ORDER)
    TensorRTBackend(model_dir, saved).close()  # the verify step already did this once


def test_build_reuses_an_existing_timing_cache(monkeypatch, constant_model_dir, tmp_path):
    trt = make_fake_trt('10.3.0')
    patch_trt(monkeypatch, trt)
    patch_cuda(monkeypatch)
    cache = tmp_path / 'robot.cache'
    cache.write_bytes(b'old')
    build_engines(_exported(constant_model_dir, False), timing_cache=cache, stages=['segmentation'])
    assert trt.calls['timing_cache'][0] == b'old' and cache.read_bytes() == b'old+'


def test_parser_errors_name_the_node(monkeypatch, constant_model_dir):
    trt = make_fake_trt('10.3.0', parse_errors=[('/network/Resize', 'Resize', 'unsupported mode cubic')])
    patch_trt(monkeypatch, trt)
    patch_cuda(monkeypatch)
    with pytest.raises(ModelError, match=r"segmentation\.onnx:\nnode '/network/Resize' \(Resize\): unsupported"):
        build_engines(_exported(constant_model_dir, False))


def test_fp32_pins_of_the_fp16_build_skip_integer_layers(monkeypatch, constant_model_dir):
    trt = make_fake_trt('10.3.0')
    patch_trt(monkeypatch, trt)
    patch_cuda(monkeypatch)
    build_engines(_exported(constant_model_dir, False), precision='fp16', stages=['segmentation'])
    layers = trt.calls['network'][0].layers
    pinned = [(layer.type.name, layer.input.np_dtype) for layer in layers if layer.precision is trt.float32]
    assert pinned == [('NORMALIZATION', 'float32'), ('REDUCE', 'float32'), ('SOFTMAX', 'float32')]
    integer = [layer for layer in layers if layer.input.np_dtype == 'int32']
    assert [layer.type.name for layer in integer] == ['REDUCE', 'TOPK']
    assert all(layer.precision is None and layer.output_types == {} for layer in integer)
    assert all(layer.output_types == {0: trt.float32} for layer in layers if layer.precision is trt.float32)


def test_a_failed_build_reports_tensorrts_error(monkeypatch, constant_model_dir):
    trt = make_fake_trt('11.1.0', fail_build=True)
    patch_trt(monkeypatch, trt)
    patch_cuda(monkeypatch)
    with pytest.raises(BackendError, match=r'failed to build segmentation\.engine.*fake: out of workspace'):
        build_engines(_exported(constant_model_dir, False))


def test_fp16_on_strongly_typed_tensorrt_needs_the_fp16_graphs(monkeypatch, constant_model_dir):
    patch_trt(monkeypatch, make_fake_trt('11.1.0'))
    patch_cuda(monkeypatch)
    with pytest.raises(ModelError, match=r'segmentation\.fp16\.onnx.*missing.*--fp16'):
        build_engines(_exported(constant_model_dir, False), precision='fp16')
