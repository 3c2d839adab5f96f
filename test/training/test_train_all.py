"""A tiny end-to-end `anomaly_seg train all`, then the directory it leaves is used as a product would."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from anomaly_seg_ros.cli import main
from anomaly_seg_ros.model_config import load_model_config
from anomaly_seg_ros.pipeline import AnomalyPipeline
from anomaly_seg_ros.training import criterion_of, tune_ensemble

pytestmark = [pytest.mark.slow, pytest.mark.numerics]

_SETS = [
    'input_sizes={segmentation: [64, 128], synthesis: [32, 64], perceptual: [32, 64], dissimilarity: [32, 64]}',
    'segmentation.batch_size=2', 'synthesis.batch_size=2', 'dissimilarity.batch_size=2',
    'synthesis.discriminator={ndf: 8, n_layers: 3}', 'calibration.frames=6',
]


@pytest.fixture(scope='module')
def trained(tmp_path_factory, tiny_dataset):
    out = tmp_path_factory.mktemp('train_all') / 'model'
    argv = ['train', 'all', '--dataset', 'synthetic', '--root', str(tiny_dataset), '--out', str(out), '--quiet',
            '--epochs-segmentation', '1', '--epochs-synthesis', '1', '--epochs-dissimilarity', '1', '--half-weights']
    for item in _SETS:
        argv += ['--set', item]
    assert main(argv) == 0
    return out


def test_train_all_leaves_a_model_directory_that_every_backend_loads(trained):
    config = load_model_config(trained)
    for stage in ('segmentation', 'synthesis', 'perceptual', 'dissimilarity'):
        assert (trained / f'{stage}.pt').is_file() and (trained / f'{stage}.onnx').is_file()
        assert config.stage(stage).files['onnx'] == f'{stage}.onnx'
    frame = np.random.default_rng(0).integers(0, 255, (64, 128, 3), dtype=np.uint8)
    results = {}
    for backend in ('torch', 'onnxruntime'):
        with AnomalyPipeline.from_model_dir(trained, backend=backend) as pipeline:
            results[backend] = pipeline.process(frame)
            assert results[backend].anomaly.shape == (64, 128)
            assert 0.0 <= results[backend].anomaly.min() and results[backend].anomaly.max() <= 1.0
    np.testing.assert_allclose(results['torch'].anomaly, results['onnxruntime'].anomaly, atol=1e-3)


def test_train_all_records_calibration_ensemble_and_provenance(trained):
    config = load_model_config(trained)
    assert config.perceptual_normalization == 'calibrated' and config.perceptual_scale > 0
    assert config.perceptual_scale != 1.0
    assert sum(config.ensemble_weights) == pytest.approx(1.0)
    provenance = config.provenance
    assert provenance['command'].startswith('anomaly_seg train all')
    assert provenance['seed'] == 0 and provenance['training_time_s'] > 0
    assert set(provenance['validation']) >= {'segmentation_miou', 'dissimilarity_ap', 'ensemble_fpr95'}
    assert set(provenance['stages']) >= {'segmentation', 'synthesis', 'perceptual', 'dissimilarity', 'ensemble'}
    assert provenance['config']['export']['torch_dtype'] == 'float16'
    assert provenance['stages']['ensemble']['criterion'] == 'lowest FPR95, ties by AP'
    assert criterion_of(trained) == 'lowest_fpr95'    # the light preset's: the paper's rule
    manifest = (trained / 'MANIFEST.md').read_text()
    assert provenance['command'] in manifest and 'segmentation_miou' in manifest
    for stage in ('segmentation', 'synthesis', 'dissimilarity'):
        work = trained / 'training' / stage
        assert (work / 'checkpoint.pt').is_file() and (work / 'metrics.csv').is_file()
        assert yaml.safe_load((work / 'config.yaml').read_text())['seed'] == 0
        assert any((work / 'tensorboard').iterdir())


def test_resume_of_a_finished_run_reuses_the_generated_data(trained, tiny_dataset, capsys):
    argv = ['train', 'dissimilarity', '--dataset', 'synthetic', '--root', str(tiny_dataset), '--out', str(trained),
            '--quiet', '--resume', '--epochs', '1']
    for item in _SETS:
        argv += ['--set', item]
    # The first call regenerates: --half-weights changed the network files the cache key hashes.
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count('data generator: reusing') == 4   # train and val, sources A and B
    assert 'dissimilarity: 1 epochs' in out


def test_tune_ensemble_refuses_the_anomaly_test_split(trained, capsys):
    assert main(['tune-ensemble', '--models', str(trained), '--split', 'anomaly_test', '--quiet']) == 2
    assert 'refusing to tune the ensemble on the anomaly test split' in capsys.readouterr().err


def test_tune_ensemble_keeping_ap_chooses_weights_no_worse_than_any_single_cue_on_ap(trained, tiny_dataset):
    result = tune_ensemble(trained, 'synthetic', tiny_dataset, 'val', bins=1024, write=False, show_progress=False,
                           log=lambda _: None, criterion='lowest_fpr95_keeping_ap')
    assert result.ap >= max(cue['ap'] for cue in result.single_cues.values())
    with pytest.raises(ValueError, match='unknown ensemble criterion'):
        tune_ensemble(trained, 'synthetic', tiny_dataset, 'val', write=False, criterion='highest_ap')


def test_ablation_trains_the_resynthesis_only_network_and_writes_the_table(trained, tiny_dataset, tmp_path):
    out = tmp_path / 'ablation'
    assert main(['train', 'ablation', '--models', str(trained), '--dataset', 'synthetic', '--root',
                 str(tiny_dataset), '--out', str(out), '--quiet']) == 0
    table = (out / 'ablation.md').read_text()
    for method in ('softmax entropy', 'softmax distance', 'perceptual difference', 're-synthesis only',
                   'dissimilarity without ensemble', 'full framework'):
        assert method in table
    rows = json.loads((out / 'ablation.json').read_text())['rows']
    assert len(rows) == 6
    ablation = load_model_config(out / 'resynthesis_only')
    assert ablation.stage('dissimilarity').architecture['use_uncertainty'] is False
    assert ablation.provenance['stages']['dissimilarity']['sources'] == ['A']
