"""The node benchmark: ``anomaly_seg_node`` as its own process, fed camera frames at a fixed rate.

The node runs on a ROS domain of its own (``ROS_DOMAIN_ID``, localhost only) with the shipped
parameters file and the given model directory and backend. This process publishes rgb8 frames whose
header stamp is the wall-clock time of publishing, and subscribes to output topics in two runs: every
output topic, then ``~/anomaly`` alone. Per topic it measures input-stamp-to-output latency (receive
time minus the stamp the node copied into the output) and the output rate; from the node's
``/diagnostics`` it takes frames received, processed and dropped, and the node's own per-frame timings:
``convert`` (message to array), the pipeline's ``prepare``, four stages and ``fetch``, and ``publish``
(rendering, colorizing, message building and publishing). The node's overhead is
convert + prepare + fetch + publish against the four stages: what the node adds to every frame. With
``publishing: parallel`` the publishing runs beside the next frame's inference, so the inference
thread itself only spends convert + prepare + fetch + publish_wait (waiting for the previous frame's
publishing); that share is reported beside it.

The node's input subscription is made reliable (``qos.input_reliability:=reliable``) unless
``parameters`` set it: with the shipped best-effort input, 2048x1024 rgb8 frames (6 MB) were mostly
lost before reaching the node on a loaded 2-core machine (at most a third delivered at 1 to 3 Hz, often
none; docs/PERFORMANCE.md), which leaves little to time. Pass
``qos.input_reliability:=best_effort`` to measure that loss.

Outputs are subscribed raw (serialized bytes, only the header stamp is decoded) so that this
process spends as little CPU as possible on the node's 2048x1024 outputs: on a small machine the
subscriber competes with the node for the same cores.

rclpy is imported inside the functions that need it (this module is also imported without ROS).
"""
from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AnomalySegError
from ..ros.client import ClientNode, publish_stamped
from ..ros.conversions import header_stamp_from_cdr
from ..ros.node_process import (
    NODE_NAME,
    NodeProcess,
    dds_profile_in_use,
    environment,
    free_domain_id,
    node_command,
    ros_environment,
)
from .frames import bench_frames
from .stats import summarize

__all__ = ['NodeBenchError', 'NodeBenchOptions', 'node_overhead', 'run_node_benchmark']

INPUT_TOPIC = '/anomaly_seg_bench/image'
_STAGES = ('segmentation', 'synthesis', 'perceptual', 'dissimilarity')
_NODE_WORK = ('convert', 'prepare', 'fetch', 'publish')


class NodeBenchError(AnomalySegError):
    """The node did not start, died, or never answered."""


@dataclass
class NodeBenchOptions:
    """What to run. ``model_dir``/``backend`` ``None``: the parameters file's values."""

    model_dir: Path | None = None
    backend: str | None = None
    device: str | None = None
    input_size: tuple[int, int] = (2048, 1024)  # (W, H)
    rate_hz: float = 5.0
    duration_s: float = 20.0
    warmup_s: float = 3.0
    domain_id: int | None = None
    output_size: str = 'input'
    startup_timeout_s: float = 180.0
    parameters: tuple[str, ...] = ()  # extra node parameters, 'name:=value'
    dds_profile: bool = True  # the Fast DDS profile for large images, as the launch file gives the node
    runs: tuple[tuple[str, tuple[str, ...] | None], ...] = (('all outputs', None), ('only anomaly', ('anomaly',)))


class _Client(ClientNode):
    """This process's ROS node: the camera publisher, raw output subscriptions, /diagnostics."""

    def __init__(self, domain_id: int) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        super().__init__(domain_id, 'anomaly_seg_bench')
        self._image_type = Image
        self._qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.publisher = self.node.create_publisher(Image, INPUT_TOPIC, self._qos)
        self.received: dict[str, list[tuple[int, int]]] = defaultdict(list)  # topic -> [(recv ns, stamp ns)]
        self.diagnostics: list[tuple[float, dict[str, str]]] = []  # (monotonic, key/values)
        self._subscriptions: dict[str, Any] = {}
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)

    def _on_diagnostics(self, msg: Any) -> None:
        for status in msg.status:
            if 'anomaly segmentation' in status.name:
                self.diagnostics.append((time.monotonic(), {kv.key: kv.value for kv in status.values}))

    def subscribe(self, topics: Sequence[str]) -> None:
        for topic in topics:
            record = self.received[topic]
            def callback(data: bytes, record: list[tuple[int, int]] = record) -> None:
                record.append((time.time_ns(), header_stamp_from_cdr(data)))
            self._subscriptions[topic] = self.node.create_subscription(
                self._image_type, f'/{NODE_NAME}/{topic}', callback, self._qos, raw=True)

    def unsubscribe_all(self) -> None:
        for subscription in self._subscriptions.values():
            self.node.destroy_subscription(subscription)
        self._subscriptions.clear()

    def connected(self) -> bool:
        return all(s.get_publisher_count() > 0 for s in self._subscriptions.values())

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=min(0.01, max(deadline - time.monotonic(), 0.0)))

    def image(self, rgb: np.ndarray) -> Any:
        from std_msgs.msg import Header

        from ..ros.outputs import image_message

        return image_message(self._image_type, Header(frame_id='bench_camera'), rgb, 'rgb8')

    def stream(self, messages: Sequence[Any], rate_hz: float, seconds: float) -> list[int]:
        """Publish ``messages`` round robin at ``rate_hz`` for ``seconds``; returns the stamps sent (ns)."""
        period = 1.0 / rate_hz
        stamps = []
        start = time.monotonic()
        next_time = start
        index = 0
        while next_time < start + seconds:
            now = time.monotonic()
            if now < next_time:
                self.executor.spin_once(timeout_sec=min(next_time - now, 0.01))
                continue
            stamps.append(publish_stamped(self.publisher, messages[index % len(messages)]))
            index += 1
            next_time += period
        return stamps

def _node_command(options: NodeBenchOptions, model_dir: Path | None) -> list[str]:
    parameters = ['diagnostics_period:=1.0', f'output_size:={options.output_size}']
    if model_dir is not None:
        parameters.append(f'model_dir:={model_dir}')
    if options.backend:
        parameters.append(f'backend:={options.backend}')
    if options.device:
        parameters.append(f'device:={options.device}')
    return node_command(INPUT_TOPIC, [*parameters, *_parameters(options)])


def _parameters(options: NodeBenchOptions) -> list[str]:
    """The extra node parameters: reliable input unless set (see the module docstring), then the user's."""
    parameters = list(options.parameters)
    if not any(p.startswith('qos.input_reliability:=') for p in parameters):
        parameters.insert(0, 'qos.input_reliability:=reliable')
    return parameters


def _number(values: dict[str, str], key: str) -> float | None:
    try:
        return float(values[key])
    except (KeyError, ValueError):
        return None


def _window(diagnostics: list[tuple[float, dict[str, str]]], start: float, end: float
            ) -> tuple[dict[str, str], dict[str, str], list[dict[str, str]]]:
    """(last report before ``start``, last report up to ``end``, reports in between)."""
    before = [values for when, values in diagnostics if when <= start]
    inside = [values for when, values in diagnostics if start < when <= end]
    first = before[-1] if before else {}
    last = inside[-1] if inside else first
    return first, last, inside


def _node_timings(reports: list[dict[str, str]], first: dict[str, str]) -> dict[str, float]:
    """Mean per-frame ms of each ``stage_ms.*`` key, weighted by the frames each report covers."""
    sums: dict[str, float] = defaultdict(float)
    weights: dict[str, float] = defaultdict(float)
    processed = _number(first, 'frames_processed') or 0.0
    for values in reports:
        now = _number(values, 'frames_processed') or processed
        frames, processed = now - processed, now
        if frames <= 0:
            continue
        for key, text in values.items():
            if key.startswith('stage_ms.'):
                sums[key[9:]] += float(text) * frames
                weights[key[9:]] += frames
    order = ['convert', 'prepare', *_STAGES, 'fetch', 'publish', 'publish_wait', 'total']
    names = sorted(sums, key=lambda k: (order.index(k) if k in order else len(order), k))
    return {name: round(sums[name] / weights[name], 2) for name in names if weights[name]}


def node_overhead(timings: dict[str, float], publishing: str) -> dict[str, Any]:
    """The node's own work per frame against the four stages (see the module docstring).

    ``timings``: mean ms per frame by name (:func:`_node_timings`); ``publishing``: 'inline' or
    'parallel', as the node's diagnostics say.
    """
    stages = sum(timings.get(stage, 0.0) for stage in _STAGES)
    node_ms = sum(timings.get(key, 0.0) for key in _NODE_WORK)
    inference_thread_ms = node_ms
    if publishing == 'parallel':
        inference_thread_ms += timings.get('publish_wait', 0.0) - timings.get('publish', 0.0)
    return {'node_ms': round(node_ms, 2), 'stages_ms': round(stages, 2),
            'ratio': round(node_ms / stages, 4) if stages > 0 else None,
            'parts_ms': {key: timings.get(key) for key in _NODE_WORK},
            'publishing': publishing, 'inference_thread_ms': round(inference_thread_ms, 2),
            'inference_thread_ratio': round(inference_thread_ms / stages, 4) if stages > 0 else None}


def _delta(first: dict[str, str], last: dict[str, str], key: str) -> int:
    return int((_number(last, key) or 0) - (_number(first, key) or 0))


def _one_run(client: _Client, process: NodeProcess, name: str, topics: tuple[str, ...], all_topics: Sequence[str],
             messages: Sequence[Any], options: NodeBenchOptions) -> dict[str, Any]:
    client.unsubscribe_all()
    client.received.clear()
    client.subscribe(topics)
    client.spin_until(client.connected, 30.0, lambda: process.check_alive(f'while subscribing to {", ".join(topics)}'),
                      step=0.05)
    client.stream(messages, options.rate_hz, options.warmup_s)  # the node sees the subscribers, caches warm up
    client.spin_for(1.5)
    start = time.monotonic()
    stamps = client.stream(messages, options.rate_hz, options.duration_s)
    end_stream = time.monotonic()
    client.spin_for(max(2.5, 3.0 / options.rate_hz))  # in-flight frames and the next diagnostics report
    first, last, inside = _window(client.diagnostics, start, time.monotonic())
    sent = set(stamps)
    duration = end_stream - start
    latency, rate, received = {}, {}, {}
    for topic in topics:
        samples = [(recv - stamp) / 1e6 for recv, stamp in client.received[topic] if stamp in sent]
        latency[topic] = summarize(samples)
        received[topic] = len(samples)
        rate[topic] = round(len(samples) / duration, 3) if duration > 0 else 0.0
    node = {key: _delta(first, last, key) for key in
            ('frames_received', 'frames_processed', 'frames_dropped', 'frames_idle', 'frames_failed')}
    published = {topic: _delta(first, last, f'published.{topic}') for topic in all_topics}
    timings = _node_timings(inside, first)
    overhead = node_overhead(timings, last.get('publishing', 'inline'))
    return {
        'name': name, 'topics': list(topics), 'frames_published': len(stamps),
        'lost_before_node': max(len(stamps) - node['frames_received'], 0),
        'node': node, 'published': published, 'received': received, 'rate_hz': rate, 'latency_ms': latency,
        'input_rate_hz': round(len(stamps) / duration, 3) if duration > 0 else 0.0,
        'node_timings_ms': timings, 'overhead': overhead,
        'diagnostics_reports': len(inside),
    }


def run_node_benchmark(options: NodeBenchOptions, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Start the node, run :attr:`NodeBenchOptions.runs`, stop it; returns the measurements (JSON-ready)."""
    from ..ros.outputs import OUTPUT_TOPICS

    if options.rate_hz <= 0 or options.duration_s <= 0:
        raise ValueError('rate and duration must be positive')
    say = progress or (lambda text: None)
    domain = options.domain_id if options.domain_id is not None else free_domain_id()
    model_dir = Path(options.model_dir) if options.model_dir is not None else None
    log_path = Path(tempfile.mkstemp(prefix='anomaly_seg_bench_node_', suffix='.log')[1])
    width, height = options.input_size
    # The node and this process's DDS participant: the same domain, localhost only.
    with environment(ros_environment(domain, dds_profile=options.dds_profile)):
        dds_profile = dds_profile_in_use()
        say(f'starting the node on ROS_DOMAIN_ID {domain} (log {log_path}) ...')
        process = NodeProcess(_node_command(options, model_dir), None, log_path, error=NodeBenchError)
        client = None
        try:
            client = _Client(domain)
            messages = [client.image(rgb) for rgb in bench_frames(width, height, count=2)]
            if not client.spin_until(lambda: client.publisher.get_subscription_count() > 0,
                                     options.startup_timeout_s, lambda: process.check_alive('while starting'),
                                     step=0.05):
                raise NodeBenchError(f'the node did not subscribe to {INPUT_TOPIC} within '
                                     f'{options.startup_timeout_s:.0f} s (log: {log_path})')
            runs = []
            for name, topics in options.runs:
                chosen = tuple(OUTPUT_TOPICS) if topics is None else tuple(topics)
                say(f'run "{name}": {options.rate_hz} Hz for {options.duration_s} s ...')
                runs.append(_one_run(client, process, name, chosen, tuple(OUTPUT_TOPICS), messages, options))
                process.check_alive(f'during run "{name}"')
            static = client.diagnostics[-1][1] if client.diagnostics else {}
        finally:
            if client is not None:
                client.close()
            process.stop()
    return {
        'settings': {'input_size': f'{width}x{height}', 'rate_hz': options.rate_hz, 'duration_s': options.duration_s,
                     'warmup_s': options.warmup_s, 'domain_id': domain, 'output_size': options.output_size,
                     'backend': static.get('backend', options.backend), 'device': static.get('device'),
                     'model_dir': static.get('model_dir', str(model_dir) if model_dir else 'default'),
                     'torch_imported_in_node': static.get('torch_imported'),
                     'parameters': _parameters(options),
                     'dds_profile': dds_profile,
                     'log': str(log_path)},
        'runs': runs,
    }
