"""The TensorRT backend's logic with a fake ``tensorrt`` and fake CUDA buffers (runs everywhere):
metadata checks before deserialization, tensors by name, shared device buffers, checked bools."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fake_tensorrt import FakeDeviceArray, engine_plan, make_fake_trt, patch_cuda, patch_trt

from anomaly_seg_ros.errors import BackendError, EngineMismatchError, ModelError
from anomaly_seg_ros.model_config import ModelConfig, load_model_config, save_model_config
from anomaly_seg_ros.pipeline import AnomalyPipeline
from anomaly_seg_ros.runtime import create_backend, tensorrt_backend
from anomaly_seg_ros.runtime.tensorrt_backend import TensorRTBackend, parse_cuda_device
from anomaly_seg_ros.runtime.tensorrt_common import (
    check_engine_metadata,
    engine_io,
    import_tensorrt,
    parse_version,
    platform_tag,
)
from anomaly_seg_ros.stages import STAGE_ORDER, stage_specs

META = {'version': '10.3.0', 'gpu_name': 'Orin', 'compute_capability': '8.7', 'precision': 'fp16'}


def _engine_dir(constant_model_dir: tuple[Path, ModelConfig], memory: dict[str, int] | None = None,
                **meta: object) -> tuple[Path, ModelConfig]:
    model_dir, config = constant_model_dir
    for stage, spec in stage_specs(config).items():
        (model_dir / f'{stage}.engine').write_bytes(engine_plan(spec, device_memory=(memory or {}).get(stage, 8192)))
        config = config.with_stage(stage, files={**config.stage(stage).files, 'tensorrt': f'{stage}.engine'})
    config = replace(config, tensorrt={**META, 'platform': platform_tag(), **meta})
    save_model_config(config, model_dir)
    return model_dir, load_model_config(model_dir)


@pytest.fixture
def fake(monkeypatch):
    trt = make_fake_trt('10.3.0.30')
    patch_trt(monkeypatch, trt)
    patch_cuda(monkeypatch, (8, 7), 'Orin')
    return trt


def test_pipeline_runs_on_the_engines_with_outputs_kept_on_the_device_between_stages(fake, constant_model_dir):
    model_dir, config = _engine_dir(constant_model_dir)
    backend = create_backend('tensorrt', model_dir, config)
    assert backend.device == 'cuda:0 (Orin)' and len(fake.calls['deserialize']) == 4
    result = AnomalyPipeline(config, backend).process(np.zeros((30, 50, 3), np.uint8))
    assert set(np.unique(result.semantic)) == {1}
    np.testing.assert_allclose(result.anomaly, 0.5)
    # Every stage ran on the backend's non-default stream.
    assert [order[0] for order, _ in fake.calls['execute']] == ['image', 'semantic', 'image', 'image']
    assert {handle for _, handle in fake.calls['execute']} == {0x5EED}
    # The dissimilarity stage read segmentation's and synthesis' outputs where they were written.
    addresses: dict[str, set[int]] = {}
    for name, ptr in fake.calls['set_address']:
        addresses.setdefault(name, set()).add(ptr)
    for name in ('semantic', 'entropy', 'softmax_distance', 'synthesis', 'perceptual_difference'):
        assert len(addresses[name]) == 1, f'{name} was copied instead of shared: {addresses[name]}'
    backend.close()


def test_uploaded_frames_reuse_their_device_buffer(fake, constant_model_dir):
    model_dir, config = _engine_dir(constant_model_dir)
    pipeline = AnomalyPipeline(config, TensorRTBackend(model_dir, config))
    pipeline.process(np.zeros((30, 50, 3), np.uint8), outputs={'semantic'})
    before = FakeDeviceArray.allocations
    for _ in range(3):
        pipeline.process(np.zeros((30, 50, 3), np.uint8), outputs={'semantic'})
    assert FakeDeviceArray.allocations == before
    pipeline.close()


@pytest.mark.parametrize('meta, message', [
    ({'version': '10.1.0'}, r'built with TensorRT 10\.1\.0, this machine has TensorRT 10\.3\.0\.30'),
    ({'version': '11.0.0'}, r'built with TensorRT 11\.0\.0'),
    ({'compute_capability': '9.0', 'gpu_name': 'H100'},
     r'compute capability 9\.0 \(H100\), this GPU \(Orin\) has 8\.7'),
    ({'platform': 'linux-x86_64' if platform_tag() != 'linux-x86_64' else 'linux-aarch64'}, r'built on linux-'),
])
def test_engines_from_another_machine_fail_before_deserialization_with_the_rebuild_command(
        fake, constant_model_dir, meta, message):
    model_dir, config = _engine_dir(constant_model_dir, **meta)
    with pytest.raises(EngineMismatchError, match=message) as info:
        TensorRTBackend(model_dir, config)
    assert f'anomaly_seg export --models {model_dir} --out {model_dir} --tensorrt --fp16' in str(info.value)
    assert fake.calls['deserialize'] == []


def test_model_without_engines_names_the_build_only_command(fake, constant_model_dir):
    model_dir, config = constant_model_dir
    with pytest.raises(ModelError, match=r'segmentation\.engine is missing.*--tensorrt.*never builds'):
        TensorRTBackend(model_dir, config)
    model_dir, config = _engine_dir(constant_model_dir)
    with pytest.raises(ModelError, match=r'records no TensorRT engines.*--tensorrt'):
        TensorRTBackend(model_dir, replace(config, tensorrt=None))


def test_corrupt_engine_is_a_model_error_with_tensorrts_message(fake, constant_model_dir):
    model_dir, config = _engine_dir(constant_model_dir)
    (model_dir / 'synthesis.engine').write_bytes(b'\x00\x01truncated')
    with pytest.raises(ModelError, match=r'synthesis\.engine could not be deserialized.*fake: the plan is corrupt'):
        TensorRTBackend(model_dir, config)


def test_engine_with_other_tensor_names_is_refused(fake, constant_model_dir):
    model_dir, config = _engine_dir(constant_model_dir)
    spec = stage_specs(config)['perceptual']
    (model_dir / 'perceptual.engine').write_bytes(engine_plan(spec, rename={'synthesis': 'resynthesis'}))
    with pytest.raises(ModelError, match=r"perceptual\.engine does not match.*inputs \['synthesis'\] missing"):
        TensorRTBackend(model_dir, config)


@pytest.mark.parametrize('failure, message', [
    ('fail_address', 'set_tensor_address'),
    ('fail_execute', "execute_async_v3 of stage 'segmentation' failed: fake: an illegal memory access"),
])
def test_false_from_tensorrt_is_a_backend_error(monkeypatch, constant_model_dir, failure, message):
    trt = make_fake_trt('10.3.0', **{failure: True})
    patch_trt(monkeypatch, trt)
    patch_cuda(monkeypatch)
    model_dir, config = _engine_dir(constant_model_dir)
    with pytest.raises(BackendError, match=message):
        backend = TensorRTBackend(model_dir, config)
        backend.run('segmentation', {'image': np.zeros((1, 3, 64, 128), np.float32)})


def test_the_tensorrt_backend_needs_a_gpu_device():
    assert parse_cuda_device(None) == 0 and parse_cuda_device('cuda:1') == 1
    with pytest.raises(BackendError, match="runs on a GPU only.*'onnxruntime'"):
        parse_cuda_device('cpu')


def test_missing_tensorrt_says_what_to_install():
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(BackendError, match='python3-libnvinfer.*pip install tensorrt'):
            import_tensorrt()
    else:
        pytest.skip('tensorrt is installed here')


@pytest.mark.parametrize('recorded, running, same', [
    ('10.3.0', '10.3.0.30', True), ('10.3.0.30', '10.3.0.30', True), ('10.3.0.26', '10.3.0.30', False),
    ('10.3.0', '10.3.1', False), ('10.13.0.post1', '10.13.0', True), ('11.1.0', '10.1.1', False),
])
def test_engine_versions_must_be_the_same_release(recorded, running, same):
    gpu = {'compute_capability': (8, 7), 'gpu_name': 'Orin', 'machine': platform_tag()}
    meta = {**META, 'version': recorded}
    if same:
        check_engine_metadata(meta, 'models', trt_version=running, **gpu)
    else:
        with pytest.raises(EngineMismatchError, match='rebuild the engines'):
            check_engine_metadata(meta, 'models', trt_version=running, **gpu)


def test_version_parsing_ignores_tags():
    assert parse_version('10.3.0.30') == (10, 3, 0, 30)
    assert parse_version('11.0.0rc1') == (11, 0, 0)
    with pytest.raises(ValueError):
        parse_version('unknown')


def test_engine_io_maps_tensors_by_name_and_mode(fake, constant_model_dir):
    _, config = constant_model_dir
    spec = stage_specs(config)['dissimilarity']
    engine = fake.Runtime(None).deserialize_cuda_engine(engine_plan(spec))
    inputs, outputs = engine_io(engine, fake)
    assert [name for name, _, _ in inputs] == list(spec.input_names)
    assert outputs == [(t.name, t.shape, t.dtype) for t in spec.outputs]
    assert inputs[2] == ('semantic', stage_specs(config)['segmentation'].outputs[0].shape, 'int32')


def test_only_requested_stages_are_loaded(fake, constant_model_dir):
    model_dir, config = _engine_dir(constant_model_dir)
    backend = TensorRTBackend(model_dir, config, stages=STAGE_ORDER[:1])
    with pytest.raises(ValueError, match="stage 'synthesis' is not loaded"):
        backend.run('synthesis', {})
    backend.close()


@pytest.mark.parametrize('version', ['10.0.1', '10.3.0.30', '11.1.0'])
def test_stage_contexts_share_one_activation_buffer_of_the_largest_engines_size(monkeypatch, constant_model_dir,
                                                                               version):
    trt = make_fake_trt(version)
    patch_trt(monkeypatch, trt)
    patch_cuda(monkeypatch)
    sizes = {'segmentation': 3000, 'synthesis': 50_000, 'perceptual': 7000, 'dissimilarity': 100}
    model_dir, config = _engine_dir(constant_model_dir, memory=sizes, version=version)
    backend = TensorRTBackend(model_dir, config)
    assert trt.calls['contexts'] == ['USER_MANAGED'] * 4  # no context allocates its own
    pointers = {ptr for ptr, _ in trt.calls['device_memory']}
    assert len(trt.calls['device_memory']) == 4 and len(pointers) == 1
    ptr = pointers.pop()
    assert FakeDeviceArray.registry[ptr].data.nbytes == 50_000  # the largest, not the sum
    given = {size for _, size in trt.calls['device_memory']}
    assert given == ({None} if version.startswith('10.0') else {50_000})  # 10.0 takes a pointer only
    AnomalyPipeline(config, backend).process(np.zeros((30, 50, 3), np.uint8))  # every context ran on it
    backend.close()
    assert ptr not in FakeDeviceArray.registry


def test_activation_memory_refused_by_tensorrt_is_a_backend_error(monkeypatch, constant_model_dir):
    trt = make_fake_trt('10.3.0')
    patch_trt(monkeypatch, trt)
    patch_cuda(monkeypatch)
    model_dir, config = _engine_dir(constant_model_dir)
    monkeypatch.setattr(tensorrt_backend, 'device_memory_size', lambda engine, version: 10)  # too small
    with pytest.raises(BackendError, match=r'refused the shared activation memory for segmentation\.engine: '
                                           r'fake: device memory of 10 bytes is less than the 8192 needed'):
        TensorRTBackend(model_dir, config)


def test_asked_precision_must_be_the_engines(fake, constant_model_dir):
    model_dir, config = _engine_dir(constant_model_dir, precision='fp32')
    with pytest.raises(EngineMismatchError, match=r'built for fp32, fp16 was asked for.*--tensorrt --fp16`'):
        create_backend('tensorrt', model_dir, config, precision='fp16')
    assert fake.calls['deserialize'] == []
    model_dir, config = _engine_dir(constant_model_dir, precision='fp16')
    with pytest.raises(EngineMismatchError, match=r'built for fp16, fp32 was asked for'):
        TensorRTBackend(model_dir, config, precision='fp32')
    # fp32 is every caller's default (the node names none): it runs the engines as built, and says so.
    backend = create_backend('tensorrt', model_dir, config)
    assert backend.precision == 'fp16'
    backend.close()
