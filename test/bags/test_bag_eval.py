"""`bag eval`: outputs matched to ground truth by stamp; metrics, coverage and latency."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from anomaly_seg_ros import cli
from anomaly_seg_ros.bags import BagError, BagWriter, evaluate_bag, image_message, make_bag

MS = 1_000_000


def _recorded_bag(path, frames, drop=(), latency_ms=40, output_scale=1, stamp0=10_000 * MS, semantic=True,
                  storage='mcap'):
    """A bag as `bag record` would write it: inputs and gt at their stamps, outputs later."""
    with BagWriter(path, storage) as writer:
        for i, sample in enumerate(frames):
            stamp = stamp0 + i * 100 * MS
            writer.write('/camera/image_raw', image_message(sample.image, 'rgb8', stamp, 'cam'), stamp)
            writer.write('/ground_truth/anomaly', image_message(sample.anomaly, 'mono8', stamp, 'cam'), stamp)
            writer.write('/ground_truth/semantic', image_message(sample.semantic, 'mono8', stamp, 'cam'), stamp)
            if i in drop:
                continue
            scores = (sample.anomaly == 1).astype(np.float32)
            classes = sample.semantic
            if output_scale != 1:
                h, w = scores.shape
                size = (w * output_scale, h * output_scale)
                scores = cv2.resize(scores, size, interpolation=cv2.INTER_NEAREST)
                classes = cv2.resize(classes, size, interpolation=cv2.INTER_NEAREST)
            received = stamp + (latency_ms + i) * MS
            writer.write('/anomaly_seg/anomaly', image_message(scores, '32FC1', stamp, 'cam'), received)
            if semantic:
                writer.write('/anomaly_seg/semantic', image_message(classes, 'mono8', stamp, 'cam'), received)
    return path


def test_outputs_equal_to_the_ground_truth_give_ap_one_and_fpr95_zero(tmp_path, frames):
    bag = _recorded_bag(tmp_path / 'rec', frames)
    result = evaluate_bag(bag, anomaly_topic='/anomaly_seg/anomaly', gt_topic='/ground_truth/anomaly',
                          semantic_topic='/anomaly_seg/semantic', semantic_gt_topic='/ground_truth/semantic')
    assert result.anomaly.ap == 1.0 and result.anomaly.fpr95 == 0.0 and result.anomaly.auroc == 1.0
    assert result.anomaly.anomaly_pixels == sum(int((s.anomaly == 1).sum()) for s in frames)
    assert result.semantic.miou == 1.0
    assert result.semantic.iou.size == 10
    assert (result.input_frames, result.matched_frames, result.coverage) == (3, 3, 1.0)
    latency = result.latency['/anomaly_seg/anomaly']
    assert latency.count == 3 and latency.p50 == pytest.approx(41.0) and latency.max == pytest.approx(42.0)
    assert not result.notes
    assert 'AP 100.00%' in result.format()


def test_missing_outputs_lower_the_coverage_and_larger_outputs_are_resized(tmp_path, frames):
    bag = _recorded_bag(tmp_path / 'rec', frames, drop=(1,), output_scale=2, storage='sqlite3')
    result = evaluate_bag(bag, anomaly_topic='/anomaly_seg/anomaly', gt_topic='/ground_truth/anomaly',
                          input_topic='/camera/image_raw')
    assert result.input_frames == 3 and result.matched_frames == 2
    assert result.coverage == pytest.approx(2 / 3)
    assert result.anomaly.ap == 1.0 and result.anomaly.fpr95 == 0.0
    assert result.semantic is None


def test_ground_truth_from_the_made_bag_matches_outputs_by_original_stamps(tmp_path, frames):
    made = make_bag(frames, tmp_path / 'made').path
    recorded = tmp_path / 'outputs'
    from anomaly_seg_ros.bags.make import DEFAULT_START_NS
    with BagWriter(recorded) as writer:
        for i, sample in enumerate(frames):
            stamp = DEFAULT_START_NS + i * 100 * MS
            writer.write('/anomaly_seg/anomaly', image_message((sample.anomaly == 1).astype(np.float32), '32FC1',
                                                               stamp, 'camera'), stamp + 5 * MS)
    result = evaluate_bag(recorded, anomaly_topic='/anomaly_seg/anomaly', gt_topic='/ground_truth/anomaly',
                          gt_bag=made)
    assert result.matched_frames == 3 and result.anomaly.ap == 1.0
    assert result.latency['/anomaly_seg/anomaly'].p50 == pytest.approx(5.0)


def test_stale_stamps_are_flagged_and_unmatched_outputs_counted(tmp_path, frames):
    bag = _recorded_bag(tmp_path / 'rec', frames, latency_ms=3_600_000)
    result = evaluate_bag(bag, anomaly_topic='/anomaly_seg/anomaly', gt_topic='/ground_truth/anomaly')
    assert any('--restamp' in note for note in result.notes)
    with pytest.raises(BagError, match='no topic /nope'):
        evaluate_bag(bag, anomaly_topic='/nope', gt_topic='/ground_truth/anomaly')
    with pytest.raises(BagError, match='together'):
        evaluate_bag(bag, anomaly_topic='/anomaly_seg/anomaly')


def test_bag_eval_command_prints_metrics_and_writes_json(tmp_path, frames, capsys):
    bag = _recorded_bag(tmp_path / 'rec', frames)
    out = tmp_path / 'eval.json'
    code = cli.main(['bag', 'eval', str(bag), '--semantic-topic', '/anomaly_seg/semantic', '--json', str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert 'AP 100.00%' in printed and 'FPR95 0.00%' in printed and '3/3 input frames' in printed
    data = json.loads(out.read_text())
    assert data['anomaly']['ap'] == 1.0 and data['semantic']['miou'] == 1.0 and data['coverage'] == 1.0
    assert data['latency_ms']['/anomaly_seg/anomaly']['p50'] == pytest.approx(41.0)


def test_bag_eval_command_reports_a_missing_bag_as_one_line(tmp_path, capsys):
    assert cli.main(['bag', 'eval', str(tmp_path / 'none')]) == 2
    assert 'bag not found' in capsys.readouterr().err
