"""The benchmark's parts without running a model: statistics, targets, tables, frames, the model cache."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from anomaly_seg_ros.benchmark import suite
from anomaly_seg_ros.benchmark.frames import bench_frames
from anomaly_seg_ros.benchmark.machine import machine_info, peak_rss_mb, reset_peak_rss, rss_mb, versions
from anomaly_seg_ros.benchmark.node import _node_timings, node_overhead
from anomaly_seg_ros.benchmark.report import format_node, format_pipeline
from anomaly_seg_ros.benchmark.stats import ratio, summarize
from anomaly_seg_ros.benchmark.targets import node_targets, pipeline_targets
from anomaly_seg_ros.ros.conversions import header_stamp_from_cdr


def test_summary_gives_median_and_p90():
    stats = summarize([10.0, 20.0, 30.0, 40.0, 1000.0])
    assert stats['n'] == 5 and stats['median'] == 30.0 and stats['min'] == 10.0 and stats['max'] == 1000.0
    assert stats['p90'] == pytest.approx(616.0)
    assert summarize([])['n'] == 0
    assert ratio(150.0, 100.0) == 1.5 and ratio(1.0, 0.0) is None


def test_bench_frames_are_deterministic_camera_frames():
    a, b = bench_frames(64, 32, count=2, seed=1), bench_frames(64, 32, count=2, seed=1)
    assert a[0].shape == (32, 64, 3) and a[0].dtype.name == 'uint8'
    assert all((x == y).all() for x, y in zip(a, b)) and not (a[0] == a[1]).all()
    with pytest.raises(ValueError):
        bench_frames(0, 10)


def test_machine_description_and_memory_probes():
    info = machine_info()
    assert info['cpu'] and info['logical_cores'] >= 1 and info['usable_cores'] >= 1
    assert info['cpu_description'].startswith(info['cpu'].split()[0])  # model, cores, vector extension
    assert 'python' in versions() and 'numpy' in versions()
    reset_peak_rss()
    assert peak_rss_mb() >= rss_mb() * 0.5 > 0


def _pipeline_doc(torch_ms: float, ort_ms: float, gpu_ms: float | None = None, paper: bool = False) -> dict:
    def run(label: str, device: str, ms: float) -> dict:
        backend, _, precision = label.split('/')
        stats = {'n': 3, 'median': ms, 'p90': ms * 1.1, 'mean': ms, 'min': ms, 'max': ms * 1.2}
        return {'label': label, 'backend': backend, 'device': device, 'precision': precision, 'threads': 2,
                'timings_ms': {'segmentation': stats, 'backend': stats, 'total': stats}, 'fps': 1000 / ms,
                'memory': {'rss_at_load_mb': 10.0, 'peak_rss_mb': 100.0, 'gpu_memory_used_mb': None}}
    runs = [run('onnxruntime/cpu/fp32', 'cpu', ort_ms), run('torch/cpu/fp32', 'cpu', torch_ms)]
    if gpu_ms is not None:
        runs.append(run('tensorrt/cuda/fp16', 'cuda:0 (GPU)', gpu_ms))
    r = round(torch_ms / ort_ms, 3)
    return {'kind': 'pipeline', 'machine': machine_info(), 'versions': versions(),
            'load_average': {'start': [1.0, 1.0, 1.0], 'end': [1.0, 1.0, 1.0]},
            'result': {'model_dir': '/m', 'model_source': 'given', 'stage_input_sizes': {'segmentation': '512x256'},
                       'settings': {'input_size': '2048x1024', 'frames': 3, 'warmup': 1, 'outputs': 'all',
                                    'output_size': 'input', 'onnxruntime_spinning': False,
                                    'omp_wait_policy': 'PASSIVE'},
                       'runs': runs, 'paper_scale': paper,
                       'ratios': [{'baseline': 'torch/cpu/fp32', 'candidate': 'onnxruntime/cpu/fp32', 'backend': r,
                                   'total': r, 'paired_total': r}]}}


def test_cpu_speedup_target_passes_at_one_and_a_half():
    passed = pipeline_targets(_pipeline_doc(150.0, 100.0)['result'], paper_scale=False)
    failed = pipeline_targets(_pipeline_doc(140.0, 100.0)['result'], paper_scale=False)
    assert [t.status for t in passed[:2]] == ['PASS', 'PASS']
    assert [t.status for t in failed[:2]] == ['FAIL', 'FAIL']
    assert passed[2].status == 'NOT MEASURED'


@pytest.mark.parametrize('int8_ms, statuses', [(60.0, ['PASS', 'PASS']), (80.0, ['FAIL', 'FAIL'])])
def test_int8_targets_compare_with_onnxruntime_fp32_and_eager_in_the_same_run(int8_ms, statuses):
    doc = _pipeline_doc(200.0, 100.0)
    result = doc['result']
    int8 = {**result['runs'][0], 'label': 'onnxruntime/cpu/int8', 'precision': 'int8'}
    int8['timings_ms'] = {key: {**stats, 'median': int8_ms} for key, stats in int8['timings_ms'].items()}
    result['runs'].append(int8)
    result['ratios'].append({'baseline': 'torch/cpu/fp32', 'candidate': 'onnxruntime/cpu/int8',
                             'backend': 200.0 / int8_ms, 'total': round(200.0 / int8_ms, 3), 'paired_total': None})
    targets = {t.name: t for t in pipeline_targets(result, paper_scale=False)}
    versus_fp32 = targets['ONNX Runtime CPU INT8 >= 1.5x ONNX Runtime FP32, end to end']
    versus_eager = targets['ONNX Runtime CPU INT8 >= 3x PyTorch eager CPU, end to end']
    assert [versus_fp32.status, versus_eager.status] == statuses
    assert versus_fp32.measured.startswith(f'{100.0 / int8_ms:.2f}x')
    # Without an INT8 run there is no INT8 target at all.
    assert not [name for name in (t.name for t in pipeline_targets(_pipeline_doc(200.0, 100.0)['result'], False))
                if 'INT8' in name]


def test_gpu_target_needs_paper_scale_and_takes_the_fastest_gpu_run():
    doc = _pipeline_doc(150.0, 100.0, gpu_ms=18.0, paper=True)
    (gpu,) = [t for t in pipeline_targets(doc['result'], paper_scale=True) if t.name.startswith('GPU')]
    assert gpu.status == 'PASS' and 'tensorrt/cuda/fp16' in gpu.measured
    (gpu,) = [t for t in pipeline_targets(doc['result'], paper_scale=False) if t.name.startswith('GPU')]
    assert gpu.status == 'NOT MEASURED'


def test_pipeline_table_shows_every_run_ratio_and_target():
    doc = _pipeline_doc(150.0, 100.0)
    doc['targets'] = [t.to_dict() for t in pipeline_targets(doc['result'], paper_scale=False)]
    text = '\n'.join(format_pipeline(doc))
    assert 'onnxruntime/cpu/fp32' in text and 'torch/cpu/fp32' in text and '100.0 / 110.0' in text
    assert '1.5x' in text and 'PASS' in text and 'NOT MEASURED' in text



def test_the_header_names_the_cpu_and_an_int8_run_names_the_cpu_that_chose_its_stages(monkeypatch):
    doc = _pipeline_doc(150.0, 100.0)
    doc['targets'] = []
    doc['machine'] = {**doc['machine'], 'cpu_description': 'AMD EPYC 7B13, 2 vCPUs, AVX2'}
    text = '\n'.join(format_pipeline(doc))
    assert 'machine: AMD EPYC 7B13, 2 vCPUs, AVX2 (the CPU every figure below was measured on)' in text
    assert 'INT8 stage choice' not in text  # no INT8 run, no note
    stages = {'segmentation': 'fp32', 'synthesis': 'int8', 'perceptual': 'int8', 'dissimilarity': 'int8'}
    monkeypatch.setattr(suite, 'load_model_config', lambda model_dir: SimpleNamespace(
        provenance={'int8': {'cpu': 'AMD EPYC, 2 vCPUs, AVX-512 VNNI', 'stages': stages}}))
    int8 = {**doc['result']['runs'][0], 'label': 'onnxruntime/cpu/int8', 'precision': 'int8'}
    doc['result']['runs'].append(int8)
    doc['result']['int8_choice'] = suite._int8_choices(doc['result'])
    assert doc['result']['int8_choice'] == {'/m': {'cpu': 'AMD EPYC, 2 vCPUs, AVX-512 VNNI', 'stages': stages}}
    text = '\n'.join(format_pipeline(doc))
    assert 'INT8 stage choice (model.yaml), this run on AMD EPYC 7B13, 2 vCPUs, AVX2:' in text
    assert ('/m: segmentation fp32, synthesis int8, perceptual int8, dissimilarity int8; chosen by export --int8 on '
            'AMD EPYC, 2 vCPUs, AVX-512 VNNI') in text
    assert 'without VNNI' in text and 're-export with --int8 on the target CPU' in text
    # A model exported before the CPU was recorded says so.
    monkeypatch.setattr(suite, 'load_model_config', lambda model_dir: SimpleNamespace(provenance={'int8': {}}))
    assert suite._int8_choices(doc['result']) == {'/m': {'cpu': None, 'stages': {}}}
    doc['result']['int8_choice'] = suite._int8_choices(doc['result'])
    assert 'a CPU the model does not record' in '\n'.join(format_pipeline(doc))


def _node_doc(publish_ms: float, unsubscribed: int) -> dict:
    timings = {'convert': 0.1, 'prepare': 2.0, 'segmentation': 10.0, 'synthesis': 40.0, 'perceptual': 10.0,
               'dissimilarity': 40.0, 'fetch': 3.0, 'publish': publish_ms}
    def run(name: str, topics: list[str], published: dict) -> dict:
        node_ms = timings['convert'] + timings['prepare'] + timings['fetch'] + timings['publish']
        return {'name': name, 'topics': topics, 'frames_published': 10, 'lost_before_node': 0,
                'node': {'frames_received': 10, 'frames_processed': 9, 'frames_dropped': 1},
                'published': published, 'received': {t: 9 for t in topics}, 'rate_hz': {t: 4.5 for t in topics},
                'latency_ms': {t: summarize([120.0, 130.0]) for t in topics}, 'node_timings_ms': timings,
                'overhead': {'node_ms': node_ms, 'stages_ms': 100.0, 'ratio': node_ms / 100.0}}
    return {'kind': 'node', 'machine': machine_info(), 'versions': versions(),
            'load_average': {'start': None, 'end': None},
            'result': {'settings': {'input_size': '2048x1024', 'rate_hz': 5.0, 'duration_s': 2.0, 'domain_id': 7,
                                    'backend': 'onnxruntime', 'output_size': 'input', 'model_dir': '/m'},
                       'runs': [run('all outputs', ['anomaly', 'overlay'], {'anomaly': 9, 'overlay': 9}),
                                run('only anomaly', ['anomaly'], {'anomaly': 9, 'overlay': unsubscribed})]}}


def test_node_targets_judge_overhead_and_unsubscribed_topics():
    good = node_targets(_node_doc(publish_ms=4.0, unsubscribed=0)['result'])
    bad = node_targets(_node_doc(publish_ms=20.0, unsubscribed=3)['result'])
    assert [t.status for t in good] == ['PASS', 'PASS']
    assert [t.status for t in bad] == ['FAIL', 'FAIL']
    doc = _node_doc(publish_ms=4.0, unsubscribed=0)
    doc['targets'] = [t.to_dict() for t in good]
    text = '\n'.join(format_node(doc))
    assert 'latency p50 ms' in text and 'node overhead' in text and 'unsubscribed topics: 0' in text


def test_parallel_publishing_takes_publishing_off_the_inference_thread_but_not_off_the_frame():
    timings = {'convert': 1.0, 'prepare': 2.0, 'segmentation': 10.0, 'synthesis': 30.0, 'perceptual': 10.0,
               'dissimilarity': 50.0, 'fetch': 3.0, 'publish': 24.0, 'publish_wait': 4.0}
    inline = node_overhead(timings, 'inline')
    parallel = node_overhead(timings, 'parallel')
    assert inline['node_ms'] == parallel['node_ms'] == 30.0 and inline['ratio'] == parallel['ratio'] == 0.3
    assert inline['inference_thread_ms'] == 30.0
    assert parallel['inference_thread_ms'] == 10.0 and parallel['inference_thread_ratio'] == 0.1


def test_node_timings_are_weighted_by_the_frames_each_report_covers():
    first = {'frames_processed': '10'}
    reports = [{'frames_processed': '11', 'stage_ms.publish': '10.0'},
               {'frames_processed': '14', 'stage_ms.publish': '2.0', 'stage_ms.convert': '1.0'},
               {'frames_processed': '14', 'stage_ms.publish': '99.0'}]  # no frame in that period
    timings = _node_timings(reports, first)
    assert timings['publish'] == pytest.approx((10.0 + 3 * 2.0) / 4) and timings['convert'] == 1.0


def test_stamp_is_read_from_a_serialized_image():
    rclpy = pytest.importorskip('rclpy')
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    assert rclpy is not None
    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_000, 123_456_789
    assert header_stamp_from_cdr(serialize_message(msg)) == 1_700_000_000_123_456_789


def test_node_command_makes_the_input_reliable_unless_told_otherwise(tmp_path):
    from anomaly_seg_ros.benchmark.node import NodeBenchOptions, _node_command

    command = _node_command(NodeBenchOptions(backend='torch'), tmp_path)
    assert 'qos.input_reliability:=reliable' in command and f'model_dir:={tmp_path}' in command
    assert 'backend:=torch' in command and 'output_size:=input' in command
    command = _node_command(NodeBenchOptions(parameters=('qos.input_reliability:=best_effort',)), None)
    assert 'qos.input_reliability:=best_effort' in command and 'qos.input_reliability:=reliable' not in command
    assert not any(arg.startswith('model_dir:=') for arg in command)
