"""INT8 export: calibrated Q/DQ graphs beside the float ones, the accuracy check that refuses a model beyond
its margins, the stages kept in float and why, evaluation sets refused, the int8 precision of the backends
(ONNX Runtime, and TensorRT engines from the symmetric graphs against the fake module)."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent / 'runtime'))  # tiny_models, fake_tensorrt

from fake_tensorrt import make_fake_trt, patch_cuda, patch_trt  # noqa: E402
from tiny_models import tiny_model_dirs  # noqa: E402

from anomaly_seg_ros import cli  # noqa: E402
from anomaly_seg_ros.benchmark.machine import cpu_description  # noqa: E402
from anomaly_seg_ros.errors import ModelError  # noqa: E402
from anomaly_seg_ros.export import quantization  # noqa: E402
from anomaly_seg_ros.export.quantization import AccuracyCheck, Int8Margins, QuantizationError, quantize_model  # noqa: E402
from anomaly_seg_ros.export.tensorrt_build import build_engines, build_settings  # noqa: E402
from anomaly_seg_ros.model_config import load_model_config  # noqa: E402
from anomaly_seg_ros.pipeline import AnomalyPipeline  # noqa: E402
from anomaly_seg_ros.runtime.onnxruntime_backend import OnnxRuntimeBackend  # noqa: E402
from anomaly_seg_ros.runtime.stage_files import ONNX_INT8  # noqa: E402
from anomaly_seg_ros.stages import STAGE_ORDER  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.numerics]
LOOSE = ['--int8-max-ap-drop', '100', '--int8-max-fpr95-rise', '100', '--int8-min-semantic-miou', '0']


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory) -> Path:
    from anomaly_seg_ros.data.synthetic import write_dataset

    root = tmp_path_factory.mktemp('int8_data')
    write_dataset(root, {'train': 4, 'val': 3}, size=(128, 64), seed=0, progress=False)
    return root


@pytest.fixture
def model(tmp_path, tmp_path_factory) -> Path:
    """A writable copy of the tiny exported model (FP32 and FP16 graphs)."""
    exported = tiny_model_dirs(tmp_path_factory.getbasetemp())[1]
    target = tmp_path / 'model'
    shutil.copytree(exported, target)
    return target


def _export_int8(model: Path, data: Path, *extra: str) -> int:
    return cli.main(['export', '--models', str(model), '--out', str(model), '--int8', '--calibration',
                     f'synthetic:{data}:train', '--calibration-frames', '3', '--validation-frames', '3',
                     '--int8-methods', 'minmax', '--int8-all-stages', *extra])


def _zero_points(path: Path) -> list[np.ndarray]:
    graph = onnx.load(str(path)).graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    return [constants[node.input[2]] for node in graph.node
            if node.op_type == 'QuantizeLinear' and len(node.input) > 2 and node.input[2] in constants]


def test_int8_graphs_are_written_beside_the_float_ones_and_recorded(model, tiny_data, capsys):
    assert _export_int8(model, tiny_data, *LOOSE) == 0
    out = capsys.readouterr().out
    assert 'INT8 model in' in out and 'semantic mIoU against FP32' in out
    this_cpu = cpu_description()  # the stages are chosen by speed on this CPU, and model.yaml and the report say which
    assert f'stages chosen by their speed on {this_cpu}; on a CPU without VNNI' in out
    config = load_model_config(model)
    for stage in STAGE_ORDER:
        files = config.stage(stage).files
        assert files[ONNX_INT8] == f'{stage}.int8.onnx' and files['onnx_int8_tensorrt'] == f'{stage}.int8-tensorrt.onnx'
        cpu, tensorrt = _zero_points(model / files[ONNX_INT8]), _zero_points(model / files['onnx_int8_tensorrt'])
        assert cpu and all(z.dtype == np.uint8 for z in cpu)  # what ONNX Runtime's x86 kernels run fastest
        assert tensorrt and all(z.dtype == np.int8 and not z.any() for z in tensorrt)  # symmetric, as TensorRT needs
        assert (model / files['onnx']).is_file()  # the float graph stays
    int8 = config.provenance['int8']
    assert int8['stages'] == dict.fromkeys(STAGE_ORDER, 'int8')
    assert int8['calibration']['dataset'] == 'synthetic' and int8['calibration']['split'] == 'train'
    assert int8['calibration']['frames'] == 3 and int8['calibration']['method'] == 'minmax'
    assert int8['validation']['split'] == 'val' and int8['within_margins'] is True
    assert int8['cpu'] == this_cpu
    assert {'ap', 'fpr95', 'auroc'} <= set(int8['accuracy']['int8']) and 'semantic_miou_vs_fp32' in int8['accuracy']
    assert not list(model.glob('int8_*'))  # the scratch folder is gone

    frame = np.random.default_rng(0).integers(0, 255, (64, 128, 3), np.uint8)
    with AnomalyPipeline.from_model_dir(model, precision='int8') as pipeline:
        assert pipeline.backend.precision == 'int8'
        result = pipeline.process(frame)
    with AnomalyPipeline.from_model_dir(model) as pipeline:
        reference = pipeline.process(frame)
    assert result.anomaly.shape == reference.anomaly.shape and np.isfinite(result.anomaly).all()
    assert np.abs(result.anomaly - reference.anomaly).mean() < 0.1  # quantized, not a different model


def test_export_int8_adds_the_int8_graphs_and_check_to_the_models_manifest(model, tiny_data):
    from anomaly_seg_ros.training.manifest import write_manifest

    manifest = write_manifest(model)
    assert 'int8' not in manifest.read_text()
    assert _export_int8(model, tiny_data, *LOOSE) == 0
    text = manifest.read_text()
    assert '| synthesis.int8.onnx |' in text and '| dissimilarity.int8-tensorrt.onnx |' in text
    assert '## INT8' in text and 'INT8 stages: segmentation, synthesis, perceptual, dissimilarity' in text
    assert 'check on 3 frames' in text


def test_retraining_a_stage_deletes_the_graphs_exported_from_its_old_weights(model, tiny_data, caplog):
    from anomaly_seg_ros.stage_modules import load_network
    from anomaly_seg_ros.training.model_dir import save_stage_network

    assert _export_int8(model, tiny_data, *LOOSE) == 0
    config = load_model_config(model)
    stage = config.stage('dissimilarity')
    network = load_network(model / stage.files['torch'], 'dissimilarity', stage.architecture)
    save_stage_network(model, config, 'dissimilarity', network)
    for suffix in ('.onnx', '.fp16.onnx', '.int8.onnx', '.int8-tensorrt.onnx'):
        assert not (model / f'dissimilarity{suffix}').exists()
        assert (model / f'synthesis{suffix}').is_file()  # the other stages keep theirs
    assert 'dissimilarity retrained' in caplog.text and 'anomaly_seg export' in caplog.text
    with pytest.raises(ModelError, match='anomaly_seg export'):
        AnomalyPipeline.from_model_dir(model, backend='onnxruntime')


def test_a_model_beyond_the_margins_is_refused_and_nothing_is_written(model, tiny_data, capsys):
    before = (model / 'model.yaml').read_text()
    status = _export_int8(model, tiny_data, '--int8-min-semantic-miou', '101')
    assert status == 2
    assert 'loses too much against FP32' in capsys.readouterr().err
    assert (model / 'model.yaml').read_text() == before
    assert not list(model.glob('*.int8*.onnx')) and not list(model.glob('int8_*'))
    # --force-int8 writes it, and model.yaml says it is outside the margins.
    assert _export_int8(model, tiny_data, '--int8-min-semantic-miou', '101', '--force-int8') == 0
    assert load_model_config(model).provenance['int8']['within_margins'] is False


@pytest.mark.parametrize('spec', ['road_anomaly:/data/road_anomaly', 'camvid:/data/camvid:test'])
def test_evaluation_sets_are_refused_for_calibration(model, spec, capsys):
    with pytest.raises(SystemExit):
        cli.main(['export', '--models', str(model), '--out', str(model), '--int8', '--calibration', spec])
    assert 'evaluation set' in capsys.readouterr().err


def test_stages_int8_does_not_speed_up_stay_in_float_with_the_reason(model, tiny_data, monkeypatch):
    monkeypatch.setattr(quantization, '_stage_speed',
                        lambda source, quantized, inputs: (10.0, 14.0 if 'segmentation' in source.name else 5.0))
    report = _quantize(model, tiny_data, Int8Margins(100, 100, 0))
    assert report.stages == {'segmentation': 'fp32', 'synthesis': 'int8', 'perceptual': 'int8',
                             'dissimilarity': 'int8'}
    config = load_model_config(model)
    assert ONNX_INT8 not in config.stage('segmentation').files and not (model / 'segmentation.int8.onnx').exists()
    assert 'not 1.1x faster' in config.provenance['int8']['kept_in_fp32']['segmentation']
    with OnnxRuntimeBackend(model, config, 'cpu', precision='int8') as backend:  # segmentation runs its FP32 graph
        assert backend._paths['segmentation'].name == 'segmentation.onnx'
        assert backend._paths['synthesis'].name == 'synthesis.int8.onnx'


def test_the_costliest_stage_is_kept_in_float_until_the_model_is_within_the_margins(model, tiny_data, monkeypatch):
    costs = {'segmentation': 0.2, 'synthesis': 3.0, 'perceptual': 0.1, 'dissimilarity': 0.3}  # AP points

    def check(model_dir, config, validation):
        drop = sum(cost for stage, cost in costs.items() if ONNX_INT8 in config.stage(stage).files)
        return AccuracyCheck({'ap': 50.0, 'fpr95': 20.0, 'auroc': 90.0},
                             {'ap': 50.0 - drop, 'fpr95': 20.0, 'auroc': 90.0}, 99.0)

    monkeypatch.setattr(quantization, '_check', check)
    monkeypatch.setattr(quantization, '_stage_speed', lambda source, quantized, inputs: (10.0, 5.0))
    report = _quantize(model, tiny_data, Int8Margins(ap_drop=1.0))
    assert report.stages['synthesis'] == 'fp32' and list(report.kept_in_fp32) == ['synthesis']
    assert all(report.stages[s] == 'int8' for s in ('segmentation', 'perceptual', 'dissimilarity'))
    assert report.check.ap_drop == pytest.approx(0.6)


def _quantize(model: Path, data: Path, margins: Int8Margins):
    from anomaly_seg_ros.data import open_dataset

    train = open_dataset('synthetic', data, 'train')
    return quantize_model(model, [train[i].image for i in range(2)], open_dataset('synthetic', data, 'val'),
                          calibration_source={'dataset': 'synthetic'}, validation_source={'dataset': 'synthetic'},
                          validation_frames=2, methods=('minmax',), margins=margins)


def test_no_stage_faster_in_int8_is_an_error_naming_the_figures(model, tiny_data, monkeypatch):
    monkeypatch.setattr(quantization, '_stage_speed', lambda source, quantized, inputs: (10.0, 12.0))
    with pytest.raises(QuantizationError, match='no stage runs 1.1x faster in INT8'):
        _quantize(model, tiny_data, Int8Margins())
    assert not list(model.glob('*.int8*.onnx'))


def test_int8_precision_without_int8_graphs_says_how_to_make_them(model):
    with pytest.raises(ModelError, match='export .* --int8 --calibration'):
        OnnxRuntimeBackend(model, load_model_config(model), 'cpu', precision='int8')


@pytest.mark.parametrize('version, strongly_typed, builder_flags', [
    ('10.3.0', False, ('INT8',)), ('10.13.0', True, ()), ('11.1.0', True, ())])
def test_int8_engines_are_built_from_the_symmetric_graphs_with_the_flags_of_the_version(
        model, tiny_data, monkeypatch, version, strongly_typed, builder_flags):
    monkeypatch.setattr(quantization, '_stage_speed',
                        lambda source, quantized, inputs: (10.0, 14.0 if 'segmentation' in source.name else 5.0))
    _quantize(model, tiny_data, Int8Margins(100, 100, 0))
    trt = make_fake_trt(version)
    settings = build_settings(trt, 'int8')
    assert settings.strongly_typed is strongly_typed and settings.builder_flags == builder_flags
    assert all(hasattr(trt.BuilderFlag, flag) for flag in builder_flags)
    patch_trt(monkeypatch, trt)
    patch_cuda(monkeypatch)
    config = build_engines(model, precision='int8')
    parsed = [p.rsplit('/', 1)[-1] for p in trt.calls['parsed']]
    assert parsed == ['segmentation.onnx', 'synthesis.int8-tensorrt.onnx', 'perceptual.int8-tensorrt.onnx',
                      'dissimilarity.int8-tensorrt.onnx']  # the stage kept in float is built from its FP32 graph
    assert trt.calls['builder_flags'] == list(builder_flags) * 4 and trt.calls['cleared_flags'] == []
    assert config.tensorrt['precision'] == 'int8'
