"""ONNX export: checked graphs with the contract's names, parity with PyTorch per stage and for the whole
pipeline, FP16 graphs, metadata that travels, the CLI (enforced parity, build-only TensorRT path)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / 'runtime'))  # tiny_models

from tiny_models import frames, tiny_model_dirs  # noqa: E402

from anomaly_seg_ros import cli  # noqa: E402
from anomaly_seg_ros.export import (  # noqa: E402
    OPSET,
    ParityError,
    compare_stages,
    export_model,
    load_frames,
    reference_outputs,
)
from anomaly_seg_ros.export.fp16 import count_ops_by_type  # noqa: E402
from anomaly_seg_ros.imaging import prepare_image  # noqa: E402
from anomaly_seg_ros.model_config import load_model_config  # noqa: E402
from anomaly_seg_ros.pipeline import FLOAT_OUTPUTS, AnomalyPipeline  # noqa: E402
from anomaly_seg_ros.runtime.onnxruntime_backend import OnnxRuntimeBackend  # noqa: E402
from anomaly_seg_ros.stage_modules import load_stage_modules  # noqa: E402
from anomaly_seg_ros.stages import STAGE_ORDER, STAGES, stage_specs  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.numerics]


@pytest.fixture(scope='module')
def dirs(tmp_path_factory) -> tuple[Path, Path]:
    return tiny_model_dirs(tmp_path_factory.getbasetemp())


def test_one_checked_static_opset17_graph_per_stage_with_the_documented_tensor_names(dirs):
    _, exported = dirs
    specs = stage_specs(load_model_config(exported))
    for stage in STAGE_ORDER:
        model = onnx.load(str(exported / f'{stage}.onnx'))
        onnx.checker.check_model(model, full_check=True)
        assert {o.domain: o.version for o in model.opset_import} == {'': OPSET}
        assert {node.domain for node in model.graph.node} <= {''}
        inputs, outputs = STAGES[stage]
        assert tuple(i.name for i in model.graph.input) == inputs
        assert tuple(o.name for o in model.graph.output) == outputs
        for value, tensor in zip((*model.graph.input, *model.graph.output), (*specs[stage].inputs,
                                                                              *specs[stage].outputs)):
            assert tuple(d.dim_value for d in value.type.tensor_type.shape.dim) == tensor.shape, tensor.name
        assert {p.key: p.value for p in model.metadata_props}['stage'] == stage
        # Static shapes: no shape arithmetic is left for TensorRT to evaluate.
        assert not {'Shape', 'ConstantOfShape'} & {node.op_type for node in model.graph.node}, stage


def test_metadata_travels_with_the_exported_files_and_records_parity(dirs):
    source, exported = dirs
    config = load_model_config(exported)
    for stage in STAGE_ORDER:
        files = config.stage(stage).files
        assert files == {'torch': f'{stage}.pt', 'onnx': f'{stage}.onnx', 'onnx_fp16': f'{stage}.fp16.onnx'}
        assert all((exported / name).is_file() for name in files.values())
    assert config.stage('perceptual').options == load_model_config(source).stage('perceptual').options
    export = config.provenance['export']
    assert export['opset'] == 17 and export['fp16'] is True and config.tensorrt is None
    print('\nstored parity (synthetic frames):', export['parity'])
    print('stored fp16 vs fp32:', export['fp16_vs_fp32'])
    for stage, figures in export['parity'].items():
        assert all(value <= 1e-4 for value in figures['max_abs_diff'].values()), stage
    assert export['parity']['segmentation']['semantic_agreement'] >= 0.999


def test_each_stage_matches_pytorch_on_real_frames(dirs, shared_data):
    source, exported = dirs
    config = load_model_config(exported)
    specs = stage_specs(config)
    camera = load_frames(shared_data / 'road_anomaly' / 'frames', 2) + load_frames(shared_data / 'camvid' / 'test', 2)
    modules = load_stage_modules(source, config)
    weights = np.asarray(config.ensemble_weights, np.float32)
    reference = [reference_outputs(modules, specs, prepare_image(f, specs['segmentation'].inputs[0].shape[2:]),
                                   weights) for f in camera]
    results = compare_stages(reference, OnnxRuntimeBackend(exported, config, 'cpu'), specs)
    for result in results:
        print(f'\n{result.stage}: max {result.max_abs} mean {result.mean_abs} agreement {result.semantic_agreement}')
        assert result.violations(1e-4, 0.999) == []


def test_exported_directory_gives_the_same_pipeline_outputs_with_onnxruntime_and_torch(dirs):
    _, exported = dirs
    with AnomalyPipeline.from_model_dir(exported, backend='onnxruntime', device='cpu') as ort_pipeline, \
            AnomalyPipeline.from_model_dir(exported, backend='torch', device='cpu') as torch_pipeline:
        for frame in frames(2, seed=11):
            got, want = ort_pipeline.process(frame), torch_pipeline.process(frame)
            assert np.mean(got.semantic == want.semantic) >= 0.999
            assert np.abs(got.synthesis.astype(int) - want.synthesis.astype(int)).max() <= 1
            for name in FLOAT_OUTPUTS:
                diff = np.abs(got.get(name) - want.get(name))
                print(f'pipeline {name}: max {diff.max():.2e} mean {diff.mean():.2e}')
                assert diff.max() <= 1e-4, name


def test_fp16_graphs_keep_instance_norm_reductions_and_io_types_in_fp32(dirs):
    _, exported = dirs
    for stage in STAGE_ORDER:
        full = onnx.load(str(exported / f'{stage}.onnx'))
        half = onnx.load(str(exported / f'{stage}.fp16.onnx'))
        onnx.checker.check_model(half, full_check=True)
        for a, b in zip((*full.graph.input, *full.graph.output), (*half.graph.input, *half.graph.output)):
            assert a == b, f'{stage}: {a.name} changed'
        in_half = count_ops_by_type(half, onnx.TensorProto.FLOAT16)
        in_full = count_ops_by_type(half, onnx.TensorProto.FLOAT)
        assert in_half.get('Conv', 0) > 0, stage
        for op in ('InstanceNormalization', 'ReduceMean', 'ReduceSum', 'Softmax', 'LogSoftmax', 'TopK'):
            assert op not in in_half, f'{stage}: {op} runs in FP16'
        if stage == 'dissimilarity':
            assert in_full['InstanceNormalization'] > 0 and in_full['ReduceSum'] > 0


def test_parity_violations_fail_the_export(dirs, tmp_path):
    source, _ = dirs
    with pytest.raises(ParityError, match=r'does not reproduce PyTorch: .*max abs diff .* > 0'):
        export_model(source, tmp_path / 'strict', frames=frames(1), tolerance=0.0)
    assert (tmp_path / 'strict' / 'model.yaml').is_file()  # kept for inspection


def test_cli_exports_and_exits_non_zero_when_parity_fails(dirs, tmp_path, capsys, monkeypatch):
    source, _ = dirs
    assert cli.main(['export', '--models', str(source), '--out', str(tmp_path / 'cli')]) == 0
    out = capsys.readouterr().out
    assert '4 stages exported' in out and '[fp32] dissimilarity' in out
    monkeypatch.setattr('anomaly_seg_ros.export.onnx_export.compare_stages', _failing_comparison)
    assert cli.main(['export', '--models', str(source), '--out', str(tmp_path / 'cli2')]) == 2
    assert 'does not reproduce PyTorch' in capsys.readouterr().err


def _failing_comparison(reference, backend, specs):
    results = compare_stages(reference, backend, specs)
    results[0].semantic_agreement = 0.5
    return results


def test_cli_tensorrt_on_an_exported_directory_only_builds_engines(dirs, tmp_path, capsys, monkeypatch):
    _, exported = dirs
    monkeypatch.setattr('anomaly_seg_ros.export.export_model', _must_not_export)
    code = cli.main(['export', '--models', str(exported), '--out', str(tmp_path / 'robot'), '--tensorrt', '--fp16'])
    err = capsys.readouterr().err
    copied = sorted(p.name for p in (tmp_path / 'robot').iterdir())
    assert 'model.yaml' in copied and 'segmentation.fp16.onnx' in copied and 'dissimilarity.onnx' in copied
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        assert code == 2 and 'TensorRT Python bindings are not installed' in err
    else:  # pragma: no cover - machines with TensorRT
        assert code in (0, 2)


def _must_not_export(*args, **kwargs):
    raise AssertionError('the build-only path must not re-export')


def test_weights_exact_in_float16_are_stored_as_float16_with_identical_outputs(tmp_path):
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from anomaly_seg_ros.export import store_exact_float16_weights

    rng = np.random.default_rng(0)
    exact = rng.standard_normal((64, 64)).astype(np.float16).astype(np.float32)  # trained/stored in float16
    inexact = rng.standard_normal((64, 64)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node('MatMul', ['x', 'exact'], ['y']), helper.make_node('MatMul', ['y', 'inexact'], ['z'])],
        'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [2, 64])],
        [helper.make_tensor_value_info('z', TensorProto.FLOAT, [2, 64])],
        [numpy_helper.from_array(exact, 'exact'), numpy_helper.from_array(inexact, 'inexact')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)])
    plain, compact = tmp_path / 'plain.onnx', tmp_path / 'compact.onnx'
    onnx.save(model, str(plain))
    assert store_exact_float16_weights(model) == 1
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(compact))
    dtypes = {t.name: numpy_helper.to_array(t).dtype.name for t in model.graph.initializer}
    assert dtypes == {'exact__float16': 'float16', 'inexact': 'float32'}
    assert compact.stat().st_size < plain.stat().st_size - 64 * 64
    x = {'x': rng.standard_normal((2, 64)).astype(np.float32)}
    outputs = [ort.InferenceSession(str(path), providers=['CPUExecutionProvider']).run(None, x)[0]
               for path in (plain, compact)]
    np.testing.assert_array_equal(*outputs)  # the same values, bit for bit
