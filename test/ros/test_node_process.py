"""anomaly_seg_node as its own process, started as the launch file starts it, with a real model.

One node serves the module (on a ROS domain of its own); tests that stop or break a node start their
own, on their own domain (``ros_domain_id``).
"""
from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rclpy
from fake_pipeline import rgb_frame
from node_process import model_backend, module_domain, node_command
from probe import Probe, image_msg, stamp_ns
from rclpy.executors import SingleThreadedExecutor

from anomaly_seg_ros.model_config import load_model_config
from anomaly_seg_ros.ros.conversions import image_msg_to_array
from anomaly_seg_ros.ros.node_process import NodeProcess
from anomaly_seg_ros.ros.outputs import OUTPUT_TOPICS

pytestmark = pytest.mark.ros

ENCODINGS = {topic: spec.encoding for topic, spec in OUTPUT_TOPICS.items()}
STARTUP_TIMEOUT_S = 90.0


@dataclass
class SharedNode:
    process: NodeProcess
    domain: int
    backend: str
    num_classes: int


@pytest.fixture(scope='module')
def shared_node(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedNode]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        domain = module_domain(monkeypatch)
        backend = model_backend(model_dir)
        command = node_command('-p', f'model_dir:={model_dir}', '-p', f'backend:={backend}',
                               '-p', 'diagnostics_period:=0.25')
        process = NodeProcess(command, dict(os.environ), tmp_path_factory.mktemp('node') / 'node.log')
        try:
            yield SharedNode(process, domain, backend, load_model_config(model_dir).label_set.num_classes)
        finally:
            process.stop(signal.SIGINT)


def _probe(domain: int) -> tuple[Probe, SingleThreadedExecutor, rclpy.Context]:
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    executor = SingleThreadedExecutor(context=context)
    return Probe(context, executor), executor, context


@pytest.fixture
def probe(shared_node: SharedNode) -> Iterator[Probe]:
    """A probe on the shared node's domain, once the node is up (subscribed to /image)."""
    probe, executor, context = _probe(shared_node.domain)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        publisher = probe.publisher()
        while publisher.get_subscription_count() == 0:
            assert shared_node.process.process.poll() is None, f'node exited:\n{shared_node.process.log()}'
            assert time.monotonic() < deadline, f'node not up after {STARTUP_TIMEOUT_S} s:\n{shared_node.process.log()}'
            probe.spin_until(lambda: False, 0.1)
        yield probe
    finally:
        probe.destroy()
        executor.shutdown()
        context.try_shutdown()


def _stream(probe: Probe, done, timeout: float = 20.0, size=(90, 150), encoding='rgb8') -> set[int]:
    sent: set[int] = set()

    def make():
        msg = image_msg(rgb_frame(*size, seed=len(sent)), probe.now_ns(), 'cam_left', encoding)
        sent.add(stamp_ns(msg))
        return msg

    assert probe.send_until(make, done, timeout), 'no outputs in time'
    return sent


def test_every_output_topic_carries_the_input_stamp_frame_id_size_and_encoding(shared_node, probe):
    probe.subscribe(OUTPUT_TOPICS)
    sent = _stream(probe, lambda: all(probe.messages(t) for t in OUTPUT_TOPICS), encoding='bgr8')
    for topic, encoding in ENCODINGS.items():
        msg = probe.messages(topic)[0]
        assert stamp_ns(msg) in sent and msg.header.frame_id == 'cam_left', topic
        assert (msg.width, msg.height, msg.encoding) == (150, 90, encoding), topic
        values = image_msg_to_array(msg)
        if encoding == '32FC1':
            assert np.all(np.isfinite(values)) and values.min() >= 0.0 and values.max() <= 1.0, topic
        elif topic == 'semantic':
            assert np.all((values < shared_node.num_classes) | (values == 255))


def _diagnostics_after(probe: Probe, since_ns: int, timeout: float = 10.0) -> dict[str, str]:
    """Spin until a /diagnostics message stamped after ``since_ns`` arrives; its key/values."""
    def fresh():
        return [a for a in probe.diagnostics if stamp_ns(a) > since_ns]
    assert probe.spin_until(lambda: bool(fresh()), timeout), 'no diagnostics'
    return {kv.key: kv.value for kv in fresh()[-1].status[0].values}


def test_outputs_nobody_subscribes_to_are_not_computed(probe):
    others = [t for t in OUTPUT_TOPICS if t != 'semantic_color']
    assert probe.spin_until(lambda: all(probe.node.count_subscribers(f'/anomaly_seg/{t}') == 0 for t in others), 10)
    before = _diagnostics_after(probe, probe.now_ns())
    probe.subscribe(['semantic_color'])
    _stream(probe, lambda: len(probe.messages('semantic_color')) >= 3)
    after = _diagnostics_after(probe, probe.now_ns())

    def runs(values, stage):
        return int(values.get(f'stage_runs.{stage}', 0))

    assert runs(after, 'segmentation') >= runs(before, 'segmentation') + 3
    for stage in ('synthesis', 'perceptual', 'dissimilarity'):
        assert runs(after, stage) == runs(before, stage), stage
    published = {k: int(v) - int(before.get(k, 0)) for k, v in after.items() if k.startswith('published.')}
    assert {k for k, v in published.items() if v} == {'published.semantic_color'}


def test_malformed_frames_are_skipped_counted_and_the_next_good_frame_is_processed(probe):
    probe.subscribe(['anomaly'])
    _stream(probe, lambda: bool(probe.messages('anomaly')))
    before = int(_diagnostics_after(probe, probe.now_ns())['frames_malformed'])
    short = image_msg(rgb_frame(), probe.now_ns())
    short.data = short.data[:100]
    unknown = image_msg(rgb_frame(), probe.now_ns())
    unknown.encoding = 'nv24'
    empty = image_msg(rgb_frame(), probe.now_ns())
    empty.height = empty.width = empty.step = 0
    empty.data = []
    publisher = probe.publisher()
    for count, msg in enumerate((short, unknown, empty), start=1):
        publisher.publish(msg)
        probe.spin_until(lambda: False, 0.3)  # one at a time: a newer frame would replace it unconverted
        values = _diagnostics_after(probe, probe.now_ns())
        assert int(values['frames_malformed']) == before + count, values
    assert 'no pixels' in values['last_malformed']
    probe.received.clear()
    sent = _stream(probe, lambda: bool(probe.messages('anomaly')))
    assert stamp_ns(probe.messages('anomaly')[0]) in sent


def test_onnxruntime_node_never_imports_torch(shared_node, probe):
    if shared_node.backend != 'onnxruntime':
        pytest.skip('the model directory has no ONNX files')
    values = _diagnostics_after(probe, probe.now_ns())
    assert values['backend'] == 'onnxruntime'
    assert values['torch_imported'] == 'False'


# --- nodes of their own --------------------------------------------------------------------------
def _wait_for_node(node: NodeProcess, probe: Probe, timeout: float = STARTUP_TIMEOUT_S) -> None:
    publisher = probe.publisher()
    deadline = time.monotonic() + timeout
    while publisher.get_subscription_count() == 0:
        assert node.process.poll() is None, f'node exited:\n{node.log()}'
        assert time.monotonic() < deadline, f'node not up:\n{node.log()}'
        probe.spin_until(lambda: False, 0.1)


@pytest.mark.parametrize(('pipeline', 'sig'), [('model', signal.SIGINT), ('model, parallel publishing', signal.SIGINT),
                                               ('busy', signal.SIGINT), ('busy', signal.SIGTERM)])
def test_node_shuts_down_within_two_seconds_on_a_signal(pipeline, sig, model_dir, start_node, probe_factory):
    if pipeline.startswith('model'):
        publishing = 'parallel' if 'parallel' in pipeline else 'auto'
        node = start_node('-p', f'model_dir:={model_dir}', '-p', f'backend:={model_backend(model_dir)}',
                          '-p', f'publishing:={publishing}')
    else:  # every frame takes 2 s: the signal arrives during inference
        node = start_node('-p', 'model_dir:=/fake', fake=True, env={'FAKE_PIPELINE_DELAY_S': '0.5'})
    probe = probe_factory()
    _wait_for_node(node, probe)
    probe.subscribe(['anomaly'])
    probe.send_until(lambda: image_msg(rgb_frame(), probe.now_ns()), lambda: False, 0.6)
    seconds = node.stop(sig, timeout=10.0)
    assert node.process.returncode == 0, node.log()
    assert seconds < 2.0, f'took {seconds:.2f} s to stop:\n{node.log()}'
    with pytest.raises(ProcessLookupError):
        os.killpg(node.process.pid, 0)  # nothing left of its process group
    assert 'Traceback' not in node.log()


@pytest.fixture
def probe_factory(ros_context, executor):
    probes = []

    def make() -> Probe:
        probes.append(Probe(ros_context, executor))
        return probes[-1]

    yield make
    for probe in probes:
        probe.destroy()


@pytest.mark.parametrize(('args', 'message'), [
    (('-p', 'model_dir:=/nonexistent/models'), 'model directory /nonexistent/models does not exist'),
    (('-p', 'colormap:=rainbow'), "parameter 'colormap': 'rainbow' is not one of"),
    (('-p', 'qos.input_depth:=deep'), "parameter 'qos.input_depth'"),
    (('-p', 'backend:=openvino'), "parameter 'backend': 'openvino' is not one of"),
])
def test_start_up_errors_end_the_node_with_one_clear_line(args, message, ros_domain_id, start_node):
    node = start_node(*args)
    assert node.process.wait(60) == 2
    log = node.log()
    assert message in log, log
    assert 'Traceback' not in log
    assert len([line for line in log.splitlines() if 'FATAL' in line]) == 1, log


def test_the_ros_environment_puts_node_and_caller_on_one_domain_and_is_undone_after(monkeypatch):
    from anomaly_seg_ros.ros.node_process import environment, ros_environment

    monkeypatch.setenv('ROS_DOMAIN_ID', '5')
    monkeypatch.delenv('ROS_LOCALHOST_ONLY', raising=False)
    env = ros_environment(9, dds_profile=False)
    assert env == {'ROS_DOMAIN_ID': '9', 'ROS_LOCALHOST_ONLY': '1', 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
    with environment(env):
        assert os.environ['ROS_DOMAIN_ID'] == '9' and os.environ['ROS_LOCALHOST_ONLY'] == '1'
    assert os.environ['ROS_DOMAIN_ID'] == '5' and 'ROS_LOCALHOST_ONLY' not in os.environ


def test_a_node_process_that_exited_is_reported_with_its_error_line(tmp_path):
    script = 'import sys; print("starting"); print("[FATAL] cannot start: no model"); print("bye"); sys.exit(2)'
    node = NodeProcess([sys.executable, '-c', script], None, tmp_path / 'node.log', error=ValueError)
    assert node.process.wait(30) == 2
    with pytest.raises(ValueError, match=r'exited with status 2 at start: \[FATAL\] cannot start: no model \(log: '):
        node.check_alive('at start')
    assert node.stop() < 1.0 and 'bye' in node.log()
