"""evaluate_dataset with a fake pipeline: per-cue metrics, per-frame AP, figures, the eval command."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from anomaly_seg_ros import cli
from anomaly_seg_ros.errors import DatasetError
from anomaly_seg_ros.evaluation import CueMetrics, anomaly_metrics, evaluate_dataset, iter_cue_maps


def test_evaluate_dataset_reports_each_cue_as_anomaly_metrics_over_all_frames(fake_pipeline, toy):
    frames = toy.make_frames()
    report = evaluate_dataset(fake_pipeline, toy.ListDataset(frames), progress=False, name='toy')
    assert list(report.metrics) == list(toy.cues)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        expected = anomaly_metrics([s.image[:, :, 0] / 255.0 for s in frames], [s.anomaly for s in frames])
    assert dict(report.metrics['anomaly']) == pytest.approx(dict(expected))
    assert report.metrics['anomaly'].auroc > 0.9
    assert report.metrics['entropy'].auroc < 0.5
    assert report.metrics['softmax_distance'].auroc == pytest.approx(0.5)
    # every frame ran once, at its label size, asking for the cues and the semantic map
    assert len(fake_pipeline.calls) == len(frames)
    assert fake_pipeline.calls[0][1] == (*toy.cues, 'semantic')
    assert fake_pipeline.calls[0][2] == (24, 32)


def test_evaluate_dataset_ranks_frames_by_ap_and_skips_frames_without_anomalies(fake_pipeline, toy):
    report = evaluate_dataset(fake_pipeline, toy.ListDataset(toy.make_frames()), num_examples=2, progress=False)
    assert len(report.frames) == 5
    assert np.isnan(report.frames[-1].ap)  # the frame without anomaly pixels
    aps = sorted(f.ap for f in report.frames if not np.isnan(f.ap))
    assert [e.ap for e in report.best] == aps[::-1][:2]
    assert [e.ap for e in report.worst] == aps[:2]
    assert report.best[0].image.dtype == np.uint8 and report.best[0].heatmap.dtype == np.float32


def test_evaluate_dataset_computes_miou_in_the_models_label_set(fake_pipeline, toy):
    report = evaluate_dataset(fake_pipeline, toy.ListDataset(toy.make_frames()), progress=False)
    assert report.semantic is not None
    assert report.semantic.miou == pytest.approx(1.0)  # the fake predicts exactly the labels
    assert report.to_dict()['semantic']['iou']['road'] == pytest.approx(1.0)


def test_evaluate_dataset_honours_limit_and_writes_json_and_figures(fake_pipeline, tmp_path, toy):
    report = evaluate_dataset(fake_pipeline, toy.ListDataset(toy.make_frames()), limit=3, out_dir=tmp_path / 'out',
                              progress=False, name='toy')
    assert report.num_frames == 3
    files = report.info['files']
    for key in ('json', 'pr', 'roc', 'frames'):
        assert (tmp_path / 'out').joinpath(files[key].split('/')[-1]).stat().st_size > 0
    data = json.loads((tmp_path / 'out' / 'metrics.json').read_text())
    assert data['frames'] == 3 and set(data['metrics']) == set(toy.cues)
    assert 0 <= data['metrics']['anomaly']['ap'] <= 1
    assert len(data['per_frame']) == 3
    assert 'anomaly (framework)' in report.format_table()


def test_evaluate_dataset_refuses_a_dataset_without_anomaly_labels(fake_pipeline, toy):
    frames = [s._replace(anomaly=None) for s in toy.make_frames(2)]
    with pytest.raises(DatasetError, match='anomaly labels'):
        evaluate_dataset(fake_pipeline, toy.ListDataset(frames), progress=False)


def test_cue_maps_and_cue_metrics_are_reusable_for_other_tools(fake_pipeline, toy):
    metrics = CueMetrics(('dissimilarity', 'entropy'))
    dataset = toy.ListDataset(toy.make_frames())
    for _, sample, maps, _ in iter_cue_maps(fake_pipeline, dataset, ('dissimilarity', 'entropy'), progress=False):
        combined = {'dissimilarity': maps['dissimilarity'], 'entropy': 0.5 * maps['entropy'] + 0.5}
        metrics.update(combined, sample.anomaly)
    result = metrics.compute()
    assert set(result) == {'dissimilarity', 'entropy'}
    assert result['dissimilarity'].auroc > 0.9


def test_eval_command_prints_the_table_and_writes_the_report(fishyscapes_root, tmp_path, monkeypatch, capsys, toy):
    from anomaly_seg_ros.pipeline import AnomalyPipeline
    opened = {}

    def fake_from_model_dir(model_dir, backend='onnxruntime', device=None, precision='fp32'):
        opened.update(model_dir=model_dir, backend=backend)
        return toy.FakePipeline()

    monkeypatch.setattr(AnomalyPipeline, 'from_model_dir', staticmethod(fake_from_model_dir))
    out = tmp_path / 'report'
    code = cli.main(['eval', '--dataset', 'fishyscapes', '--root', str(fishyscapes_root), '--models',
                     str(tmp_path / 'models'), '--out', str(out), '--limit', '4', '--no-progress'])
    assert code == 0
    printed = capsys.readouterr().out
    assert 'anomaly (framework)' in printed and 'perceptual_difference' in printed
    assert opened['backend'] == 'onnxruntime'
    assert json.loads((out / 'metrics.json').read_text())['frames'] == 4
    assert (out / 'pr_curves.png').is_file() and (out / 'roc_curves.png').is_file() and (out / 'frames.png').is_file()


def test_eval_command_reports_a_missing_dataset_as_one_line(tmp_path, monkeypatch, capsys, toy):
    from anomaly_seg_ros.pipeline import AnomalyPipeline
    monkeypatch.setattr(AnomalyPipeline, 'from_model_dir', staticmethod(lambda *a, **k: toy.FakePipeline()))
    code = cli.main(['eval', '--dataset', 'road_anomaly', '--root', str(tmp_path / 'nowhere'), '--models',
                     str(tmp_path), '--no-progress'])
    assert code == 2
    assert 'nowhere' in capsys.readouterr().err
