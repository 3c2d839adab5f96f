"""`anomaly_seg bench` on a tiny model: it runs, prints the table and writes well-formed JSON.

Nothing here checks a timing: only that every figure is present, consistent and of the right kind.
"""
from __future__ import annotations

import json
from pathlib import Path

from anomaly_seg_ros.cli import main

STATUSES = {'PASS', 'FAIL', 'NOT MEASURED'}
STAGES = ('segmentation', 'synthesis', 'perceptual', 'dissimilarity')


def _bench(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / 'bench.json'
    assert main(['bench', '--frames', '2', '--warmup', '1', '--input-size', '160x96', '--quiet', '--json', str(out),
                 *args]) == 0
    return json.loads(out.read_text())


def test_bench_times_onnxruntime_and_torch_interleaved_and_writes_table_and_json(tiny_dir, tmp_path, capsys):
    doc = _bench(tmp_path, '--models', str(tiny_dir))
    text = capsys.readouterr().out
    for expected in ('median / p90', 'onnxruntime/cpu/fp32', 'torch/cpu/fp32', 'backend (4 stages)',
                     'frames per second', 'peak RSS', 'speed-ups against PyTorch eager', 'targets:', 'machine:',
                     'versions:', 'OMP_WAIT_POLICY PASSIVE'):
        assert expected in text, expected
    assert doc['kind'] == 'pipeline'
    assert {'cpu', 'cpu_description', 'logical_cores', 'physical_cores', 'usable_cores', 'gpus'} <= set(doc['machine'])
    assert f'machine: {doc["machine"]["cpu_description"]} (the CPU every figure below' in text
    assert {'python', 'numpy', 'onnxruntime', 'torch'} <= set(doc['versions'])
    assert len(doc['load_average']['end']) == 3
    result = doc['result']
    assert result['settings']['input_size'] == '160x96' and result['settings']['frames'] == 2
    assert [run['label'] for run in result['runs']] == ['onnxruntime/cpu/fp32', 'torch/cpu/fp32']
    for run in result['runs']:
        timings = run['timings_ms']
        assert set(timings) == {'prepare', *STAGES, 'fetch', 'backend', 'total'}
        for stats in timings.values():
            assert stats['n'] == 2 and 0 <= stats['min'] <= stats['median'] <= stats['p90'] <= stats['max']
        assert timings['backend']['median'] <= timings['total']['max']
        assert run['fps'] > 0 and run['threads'] >= 1
        assert run['memory']['peak_rss_mb'] > 0 and run['memory']['gpu_memory_used_mb'] is None
    (ratio,) = result['ratios']
    assert ratio['baseline'] == 'torch/cpu/fp32' and ratio['candidate'] == 'onnxruntime/cpu/fp32'
    assert ratio['backend'] > 0 and ratio['total'] > 0 and ratio['paired_total'] > 0
    targets = {t['name']: t for t in doc['targets']}
    assert all(t['status'] in STATUSES for t in targets.values())
    cpu = [t for name, t in targets.items() if name.startswith('ONNX Runtime CPU >= 1.5x')]
    assert len(cpu) == 2 and all(t['status'] in ('PASS', 'FAIL') for t in cpu)
    gpu = [t for name, t in targets.items() if name.startswith('GPU')]
    assert gpu[0]['status'] == 'NOT MEASURED'


def test_bench_of_one_output_runs_only_the_stages_it_needs(tiny_dir, tmp_path):
    doc = _bench(tmp_path, '--models', str(tiny_dir), '--backend', 'onnxruntime', '--outputs', 'semantic',
                 '--output-size', 'network', '--threads', '1')
    (run,) = doc['result']['runs']
    assert set(run['timings_ms']) == {'prepare', 'segmentation', 'fetch', 'backend', 'total'}
    assert run['threads'] == 1
    assert doc['result']['ratios'] == []
    assert doc['result']['settings']['outputs'] == ['semantic']
    assert doc['result']['settings']['output_size'] == 'network'
    assert any(t['status'] == 'NOT MEASURED' and 'torch' in t['measured'] for t in doc['targets'])


def test_bench_rejects_an_unknown_backend(capsys):
    try:
        main(['bench', '--backend', 'onnxruntime,caffe'])
    except SystemExit as exc:
        assert 'caffe' in str(exc)
    else:
        raise AssertionError('an unknown backend was accepted')


def test_bench_names_the_missing_model_directory(tmp_path, capsys):
    assert main(['bench', '--models', str(tmp_path / 'nowhere'), '--quiet']) == 2
    assert 'nowhere' in capsys.readouterr().err


def test_bench_compares_two_model_directories_run_by_run(tiny_dir, tmp_path, capsys):
    doc = _bench(tmp_path, '--models', str(tiny_dir), '--models', str(tiny_dir), '--backend', 'onnxruntime')
    labels = [run['label'] for run in doc['result']['runs']]
    assert labels == [f'onnxruntime/cpu/fp32@{tiny_dir.name}0', f'onnxruntime/cpu/fp32@{tiny_dir.name}1']
    assert all(run['model_dir'] == str(tiny_dir) for run in doc['result']['runs'])
    assert 'speed vs onnxruntime/cpu/fp32@' in capsys.readouterr().out
