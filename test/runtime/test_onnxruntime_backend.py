"""The ONNX Runtime backend: the stage contract, clear errors for bad files, CPU/IOBinding paths, FP16."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from tiny_models import constant_graph

from anomaly_seg_ros.errors import BackendError, ModelError
from anomaly_seg_ros.model_config import load_model_config
from anomaly_seg_ros.pipeline import AnomalyPipeline
from anomaly_seg_ros.runtime import create_backend
from anomaly_seg_ros.runtime.onnxruntime_backend import OnnxRuntimeBackend
from anomaly_seg_ros.stages import STAGE_ORDER, stage_specs


def _copy_onnx_dir(source: Path, target: Path) -> Path:
    target.mkdir()
    for path in source.iterdir():
        if path.suffix in ('.onnx', '.yaml'):
            shutil.copy2(path, target / path.name)
    return target


def _run_chain(backend, config, seed: int = 0) -> dict[str, np.ndarray]:
    specs = stage_specs(config)
    rng = np.random.default_rng(seed)
    values = {'image': backend.upload(rng.random(specs['segmentation'].inputs[0].shape, dtype=np.float32)),
              'ensemble_weights': backend.upload(np.asarray(config.ensemble_weights, np.float32))}
    for stage in STAGE_ORDER:
        values.update(backend.run(stage, values))
    return {name: backend.download(value) for name, value in values.items()}


def test_exported_directory_runs_every_stage_with_the_contract_shapes_and_dtypes(tiny_exported_dir):
    config = load_model_config(tiny_exported_dir)
    backend = create_backend('onnxruntime', tiny_exported_dir, config, device='cpu')
    assert backend.name == 'onnxruntime' and backend.device == 'cpu'
    assert all(providers == ['CPUExecutionProvider'] for providers in backend.providers.values())
    values = _run_chain(backend, config)
    for spec in stage_specs(config).values():
        for tensor in spec.outputs:
            assert values[tensor.name].shape == tensor.shape, tensor.name
            assert values[tensor.name].dtype == np.dtype(tensor.dtype), tensor.name
    assert values['semantic'].min() >= 0 and values['semantic'].max() < config.label_set.num_classes
    for name in ('entropy', 'softmax_distance', 'perceptual_difference', 'dissimilarity', 'anomaly'):
        assert 0.0 <= values[name].min() and values[name].max() <= 1.0, name
    backend.close()


def test_pipeline_runs_on_onnxruntime_without_torch_models(constant_model_dir):
    model_dir, _ = constant_model_dir
    with AnomalyPipeline.from_model_dir(model_dir, backend='onnxruntime', device='cpu') as pipeline:
        result = pipeline.process(np.zeros((40, 60, 3), np.uint8))
    assert result.semantic.shape == (40, 60) and set(np.unique(result.semantic)) == {1}
    np.testing.assert_allclose(result.anomaly, 0.25)
    assert result.synthesis.shape == (40, 60, 3)


def test_io_binding_path_gives_the_same_outputs_as_plain_runs(tiny_exported_dir):
    config = load_model_config(tiny_exported_dir)
    plain = _run_chain(OnnxRuntimeBackend(tiny_exported_dir, config, 'cpu'), config)
    bound_backend = OnnxRuntimeBackend(tiny_exported_dir, config, 'cpu')
    bound_backend._bind = True  # the CUDA code path (OrtValues + IOBinding), exercised on CPU memory
    assert not isinstance(bound_backend.upload(np.zeros(4, np.float32)), np.ndarray)
    bound = _run_chain(bound_backend, config)
    for name, value in plain.items():
        np.testing.assert_array_equal(bound[name], value, err_msg=name)


def test_missing_graph_file_is_a_model_error_naming_the_file_and_the_export_command(constant_model_dir):
    model_dir, config = constant_model_dir
    (model_dir / 'perceptual.onnx').unlink()
    with pytest.raises(ModelError, match=r'perceptual\.onnx is missing.*anomaly_seg export'):
        OnnxRuntimeBackend(model_dir, config, 'cpu')


@pytest.mark.parametrize('damage', ['truncated', 'empty', 'garbage'])
def test_damaged_graph_file_is_a_model_error_naming_the_file(tiny_exported_dir, tmp_path, damage):
    model_dir = _copy_onnx_dir(tiny_exported_dir, tmp_path / 'copy')
    path = model_dir / 'dissimilarity.onnx'
    data = path.read_bytes()
    path.write_bytes({'truncated': data[: len(data) // 2], 'empty': b'',
                      'garbage': bytes(range(256)) * 64}[damage])
    with pytest.raises(ModelError, match=r'dissimilarity\.onnx (is empty|cannot be loaded).*re-export'):
        OnnxRuntimeBackend(model_dir, load_model_config(model_dir), 'cpu')


@pytest.mark.parametrize('change, message', [
    ({'rename': {'entropy': 'entropy_map'}}, r"outputs \['entropy'\] missing; unexpected outputs \['entropy_map'\]"),
    ({'rename': {'image': 'input'}}, r"inputs \['image'\] missing"),
    ({'shapes': {'image': (1, 3, 32, 64)}}, r"input 'image' has shape \(1, 3, 32, 64\), expected \(1, 3, 64, 128\)"),
    ({'dtypes': {'semantic': 'float32'}}, r"output 'semantic' has dtype float32, expected int32"),
])
def test_graph_not_matching_the_metadata_is_a_model_error_saying_what_differs(constant_model_dir, change, message):
    model_dir, config = constant_model_dir
    onnx.save(constant_graph(stage_specs(config)['segmentation'], **change), str(model_dir / 'segmentation.onnx'))
    with pytest.raises(ModelError, match=r'segmentation\.onnx does not match stage .segmentation.') as info:
        OnnxRuntimeBackend(model_dir, config, 'cpu')
    assert re.search(message, str(info.value)), str(info.value)


def test_inputs_with_wrong_shape_are_refused_before_running(constant_model_dir):
    model_dir, config = constant_model_dir
    backend = OnnxRuntimeBackend(model_dir, config, 'cpu')
    with pytest.raises(ValueError, match="input 'image'"):
        backend.run('segmentation', {'image': np.zeros((1, 3, 8, 8), np.float32)})
    with pytest.raises(ValueError, match=r"needs inputs \['semantic'\]"):
        backend.run('synthesis', {})


def test_cuda_device_without_the_cuda_provider_says_what_to_install(constant_model_dir):
    import onnxruntime

    if 'CUDAExecutionProvider' in onnxruntime.get_available_providers():
        pytest.skip('this onnxruntime has the CUDA provider')
    model_dir, config = constant_model_dir
    with pytest.raises(BackendError, match='onnxruntime-gpu'):
        OnnxRuntimeBackend(model_dir, config, 'cuda:0')
    with pytest.raises(BackendError, match='not cpu, cuda or cuda:N'):
        OnnxRuntimeBackend(model_dir, config, 'tpu')
    assert OnnxRuntimeBackend(model_dir, config, None).device == 'cpu'  # None falls back to the CPU


@pytest.mark.numerics
def test_fp16_graphs_run_in_onnxruntime_and_stay_close_to_fp32(tiny_exported_dir):
    config = load_model_config(tiny_exported_dir)
    full = _run_chain(OnnxRuntimeBackend(tiny_exported_dir, config, 'cpu'), config, seed=5)
    half = _run_chain(OnnxRuntimeBackend(tiny_exported_dir, config, 'cpu', precision='fp16'), config, seed=5)
    agreement = float(np.mean(full['semantic'] == half['semantic']))
    figures = {name: (float(np.abs(full[name] - half[name]).max()), float(np.abs(full[name] - half[name]).mean()))
               for name in ('entropy', 'softmax_distance', 'synthesis', 'perceptual_difference', 'dissimilarity',
                            'anomaly')}
    print(f'fp16 vs fp32 (chained): semantic agreement {agreement:.4%}; (max, mean) abs diff {figures}')
    assert agreement >= 0.99
    for name, (largest, mean) in figures.items():
        assert mean < 5e-3 and largest < 0.1, (name, largest, mean)


def test_fp16_precision_without_fp16_files_asks_for_an_fp16_export(constant_model_dir):
    model_dir, config = constant_model_dir
    with pytest.raises(ModelError, match=r'segmentation\.fp16\.onnx is missing.*--fp16'):
        OnnxRuntimeBackend(model_dir, config, 'cpu', precision='fp16')
