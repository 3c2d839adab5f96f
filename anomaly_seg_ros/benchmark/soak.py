"""Overload and soak test of ``anomaly_seg_node``: frames far faster than the pipeline, for minutes.

:func:`run_soak` starts the node as its own process (on a ROS domain of its own, localhost only, with
the shipped parameters file), measures the pipeline's own rate with a few frames sent one at a time
(each waits for its output), then publishes camera frames at ``rate_factor`` times that rate (or
``rate_hz``) for ``duration_s`` seconds (or ``max_frames`` frames). Each frame's header stamp is the
wall-clock time of publishing. It subscribes to ``outputs`` (raw: only the header stamp is decoded),
samples the node's resident memory (``VmRSS`` of ``/proc/<pid>/status``) every ``rss_period_s``, and
reads the node's ``/diagnostics`` counters before and after.

The report (:class:`SoakReport`): frames sent, received by the node, processed, dropped by the node
(a waiting frame replaced by a newer one), lost before the node (the DDS queue of depth 1 replaced it
first), outputs received; latency from input stamp to receipt (p50, p99, max; first and last quarter
medians); RSS at the start of the soak, at its end and the maximum; and the checks: the newest frame
wins (output stamps strictly increasing, latency bounded by ``latency_bound_factor`` times the
calibrated per-frame time plus one second), every received frame accounted for, no failed frames,
RSS growth under ``rss_growth_limit_mb``.

``python -m anomaly_seg_ros.benchmark.soak --help``; rclpy is imported only inside the functions that
need it.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AnomalySegError
from ..ros.client import ClientNode, publish_stamped
from ..ros.conversions import header_stamp_from_cdr
from ..ros.node_process import NODE_NAME, NodeProcess, environment, free_domain_id, node_command, ros_environment
from .frames import bench_frames, frame_size_argument
from .machine import load_average, machine_info, process_rss_mb
from .report import write_json

__all__ = ['INPUT_TOPIC', 'FrameClient', 'SoakError', 'SoakReport', 'main', 'run_soak']

INPUT_TOPIC = '/anomaly_seg_soak/image'
_COUNTERS = ('received', 'processed', 'dropped', 'malformed', 'nonfinite', 'failed', 'idle')


class SoakError(AnomalySegError):
    """The node did not start, died during the soak, or never answered."""


@dataclass
class SoakReport:
    """Figures and checks of one soak run (latencies in ms, memory in MiB, rates in Hz)."""

    model_dir: str
    backend: str
    input_size: str
    outputs: list[str]
    duration_s: float
    calibrated_frame_ms: float
    rate_hz: float  # achieved: frames sent / duration
    target_rate_hz: float
    frames_sent: int
    node: dict[str, int]
    lost_before_node: int
    outputs_received: int
    latency_ms: dict[str, float]
    rss_mb: dict[str, float]
    rss_samples: int
    stop_s: float
    exit_code: int | None
    checks: dict[str, bool]
    limits: dict[str, float]
    machine: dict[str, Any] = field(default_factory=dict)
    log: str = ''
    latency_series_ms: list[float] = field(default_factory=list)  # per output of the first topic, in order
    rss_series_mb: list[float] = field(default_factory=list)  # every rss_period_s during the soak

    @property
    def passed(self) -> bool:
        return all(self.checks.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), 'passed': self.passed}

    def lines(self) -> list[str]:
        lat, rss, node = self.latency_ms, self.rss_mb, self.node
        cpu = self.machine.get('cpu_description') or self.machine.get('cpu', '?')
        return [
            f'soak: {self.model_dir} ({self.backend}), {self.input_size} frames, outputs {", ".join(self.outputs)}',
            f'machine: {cpu}, {self.machine.get("usable_cores")} usable cores, load {self.machine.get("load_average")}',
            f'pipeline: {self.calibrated_frame_ms:.1f} ms a frame one at a time; sent at {self.rate_hz:.1f} Hz '
            f'(target {self.target_rate_hz:.1f}) for {self.duration_s:.1f} s',
            f'frames: sent {self.frames_sent}, lost before the node {self.lost_before_node}, node received '
            f'{node["received"]}, processed {node["processed"]}, dropped {node["dropped"]}, failed {node["failed"]}, '
            f'non-finite {node["nonfinite"]}; outputs received {self.outputs_received}',
            f'latency stamp->receipt ms: p50 {lat["p50"]:.1f}, p99 {lat["p99"]:.1f}, max {lat["max"]:.1f} '
            f'(first quarter median {lat["first_quarter_p50"]:.1f}, last {lat["last_quarter_p50"]:.1f})',
            f'node RSS MiB: start {rss["start"]:.1f}, end {rss["end"]:.1f}, max {rss["max"]:.1f} '
            f'(growth {rss["growth"]:+.1f}, {self.rss_samples} samples)',
            f'stop: {self.stop_s:.2f} s after SIGINT, exit code {self.exit_code}',
            'checks: ' + ', '.join(f'{name} {"PASS" if ok else "FAIL"}' for name, ok in self.checks.items()),
        ]


class FrameClient(ClientNode):
    """This process's ROS side: the camera publisher, raw output subscriptions, /diagnostics."""

    def __init__(self, domain_id: int, outputs: Sequence[str]) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        super().__init__(domain_id, 'anomaly_seg_soak')
        self.image_type = Image
        reliable = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        self.publisher = self.node.create_publisher(Image, INPUT_TOPIC, reliable)
        self.received: list[tuple[str, int, int]] = []  # (topic, receipt ns, stamp ns)
        self.diagnostics: list[dict[str, str]] = []
        output_qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.subscriptions = [self.node.create_subscription(Image, f'/{NODE_NAME}/{topic}', self._recorder(topic),
                                                            output_qos, raw=True) for topic in outputs]
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)

    def _recorder(self, topic: str) -> Callable[[bytes], None]:
        def record(data: bytes) -> None:
            self.received.append((topic, time.time_ns(), header_stamp_from_cdr(data)))
        return record

    def _on_diagnostics(self, msg: Any) -> None:
        for status in msg.status:
            if 'anomaly segmentation' in status.name:
                self.diagnostics.append({kv.key: kv.value for kv in status.values})

    def message(self, rgb: np.ndarray) -> Any:
        from std_msgs.msg import Header

        from ..ros.outputs import image_message

        return image_message(self.image_type, Header(frame_id='soak_camera'), rgb, 'rgb8')

    def publish(self, msg: Any) -> int:
        return publish_stamped(self.publisher, msg)

    def counters(self) -> dict[str, int]:
        latest = self.diagnostics[-1] if self.diagnostics else {}
        return {name: int(latest.get(f'frames_{name}', 0)) for name in _COUNTERS}


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else 0.0


def _latency(samples: list[tuple[int, int]]) -> dict[str, float]:
    """``samples``: (receipt ns, stamp ns) in receipt order -> ms figures."""
    ms = [(recv - stamp) / 1e6 for recv, stamp in samples]
    quarter = max(len(ms) // 4, 1)
    return {'n': len(ms), 'p50': _percentile(ms, 50), 'p99': _percentile(ms, 99), 'max': max(ms, default=0.0),
            'first_quarter_p50': _percentile(ms[:quarter], 50), 'last_quarter_p50': _percentile(ms[-quarter:], 50)}


def run_soak(model_dir: str | Path | None = None, *, backend: str = 'onnxruntime', device: str | None = None,
             duration_s: float = 300.0, max_frames: int | None = None, rate_hz: float | None = None,
             rate_factor: float = 4.0, max_rate_hz: float = 200.0, input_size: tuple[int, int] = (640, 480),
             outputs: Sequence[str] = ('anomaly',), calibration_frames: int = 8, rss_period_s: float = 1.0,
             domain_id: int | None = None, parameters: Sequence[str] = (), startup_timeout_s: float = 180.0,
             latency_bound_factor: float = 3.0, rss_growth_limit_mb: float = 50.0, dds_profile: bool = True,
             progress: Callable[[str], None] | None = None) -> SoakReport:
    """Run the soak described in the module docstring; returns its :class:`SoakReport`.

    Args:
        model_dir: model directory (default: the shipped models, else the light configuration with random
            weights, as ``anomaly_seg bench`` chooses).
        input_size: camera frames (W, H), rgb8.
        parameters: extra node parameters, ``'name:=value'``.
        dds_profile: give the node and this process the Fast DDS profile for large images (the shipped
            ``config/fastdds_large_images.xml``); without it frames of 640x480 and more are mostly lost
            between processes (Fast DDS's 512 KB shared-memory segment overflows to fragmented UDP).
    Raises:
        SoakError: the node did not start, died, or answered no calibration frame.
    """
    say = progress or (lambda text: None)
    if model_dir is None:
        from .models import default_cache_dir, resolve_model_dir
        model_dir, _ = resolve_model_dir(None, paper_scale=False, cache_dir=default_cache_dir(), backends=[backend])
    model_dir = Path(model_dir)
    outputs = list(outputs)
    domain = domain_id if domain_id is not None else free_domain_id()
    command = node_command(INPUT_TOPIC, [f'model_dir:={model_dir}', f'backend:={backend}', 'diagnostics_period:=1.0',
                                         *([f'device:={device}'] if device else []), *parameters])
    log_path = Path(tempfile.mkstemp(prefix='anomaly_seg_soak_node_', suffix='.log')[1])
    # The node and this process's DDS participant: the same domain, localhost only, the DDS profile.
    with environment(ros_environment(domain, dds_profile=dds_profile)):
        say(f'starting the node on ROS_DOMAIN_ID {domain} (log {log_path}) ...')
        start_load = load_average()
        node_process = NodeProcess(command, None, log_path, error=SoakError)
        process = node_process.process
        alive = node_process.check_alive
        client = None
        try:
            client = FrameClient(domain, outputs)
            width, height = input_size
            messages = [client.message(rgb) for rgb in bench_frames(width, height, count=4)]
            ready = client.spin_until(lambda: client.publisher.get_subscription_count() > 0 and all(
                s.get_publisher_count() > 0 for s in client.subscriptions), startup_timeout_s, alive)
            if not ready:
                raise SoakError(f'the node did not connect within {startup_timeout_s:.0f} s (log: {log_path})')

            # Discovery is not symmetric: the node may not see our subscriptions yet (it skips frames nobody
            # listens to) or its reader our writer. Send until a frame comes back, then calibrate.
            deadline = time.monotonic() + startup_timeout_s
            while not client.received:
                if time.monotonic() > deadline:
                    raise SoakError(f'the node answered no frame within {startup_timeout_s:.0f} s (log: {log_path})')
                client.publish(messages[0])
                client.spin_until(lambda: bool(client.received), 0.5, alive)
            say(f'calibrating with {calibration_frames} frames sent one at a time ...')
            frame_ms: list[float] = []
            for i in range(calibration_frames):
                start = time.monotonic()
                stamp = client.publish(messages[i % len(messages)])
                # a frame lost on the way (best-effort input) must not stall the calibration for long
                timeout = max(2.0, 10 * float(np.median(frame_ms)) / 1e3) if frame_ms else 10.0
                if client.spin_until(lambda s=stamp: any(r[2] == s for r in client.received), timeout, alive):
                    frame_ms.append((time.monotonic() - start) * 1e3)
            if not frame_ms:
                raise SoakError(f'the node answered none of {calibration_frames} calibration frames (log: {log_path})')
            calibrated = float(np.median(frame_ms))
            rate = rate_hz or min(rate_factor * 1e3 / calibrated, max_rate_hz)
            client.spin_until(lambda: False, 1.5, alive)  # the next diagnostics report: counters before the soak
            before = client.counters()
            client.received.clear()

            say(f'soak: {rate:.1f} Hz ({calibrated:.1f} ms a frame) for '
                f'{f"{max_frames} frames" if max_frames else f"{duration_s:g} s"} ...')
            rss: list[float] = []
            sent: list[int] = []
            start = time.monotonic()
            next_frame = next_sample = start
            end = start + (duration_s if max_frames is None else 1e9)
            while time.monotonic() < end and (max_frames is None or len(sent) < max_frames):
                now = time.monotonic()
                if now >= next_sample:
                    value = process_rss_mb(process.pid)
                    if value is not None:
                        rss.append(value)
                    next_sample += rss_period_s
                    alive()
                if now < next_frame:
                    client.executor.spin_once(timeout_sec=min(next_frame - now, 0.005))
                    continue
                sent.append(client.publish(messages[len(sent) % len(messages)]))
                next_frame += 1.0 / rate
            soak_s = time.monotonic() - start
            client.spin_until(lambda: False, max(2.0, 3 * calibrated / 1e3), alive)  # frames in flight
            final_rss = process_rss_mb(process.pid)
            if final_rss is not None:
                rss.append(final_rss)
            client.spin_until(lambda: False, 1.2, alive)  # a diagnostics report after the last frame
            after = client.counters()
        finally:
            if client is not None:
                client.close()
            stop_s = node_process.stop()

    sent_set = set(sent)
    node = {name: after[name] - before[name] for name in _COUNTERS}
    primary = [(recv, stamp) for topic, recv, stamp in client.received if topic == outputs[0] and stamp in sent_set]
    latency = _latency(primary)
    rss_figures = {'start': rss[0] if rss else 0.0, 'end': rss[-1] if rss else 0.0, 'max': max(rss, default=0.0)}
    rss_figures['growth'] = rss_figures['end'] - rss_figures['start']
    latency_limit = latency_bound_factor * calibrated + 1000.0
    accounted = sum(node[name] for name in ('processed', 'dropped', 'malformed', 'nonfinite', 'failed', 'idle'))
    increasing = all(
        all(a < b for a, b in zip(stamps, stamps[1:]))
        for stamps in ([s for t, _, s in client.received if t == topic and s in sent_set] for topic in outputs))
    checks = {
        'newest_frame_wins': increasing,
        'latency_bounded': bool(primary) and latency['max'] <= latency_limit,
        'frames_accounted': accounted == node['received'] and node['received'] <= len(sent),
        'no_failed_frames': node['failed'] == 0 and node['nonfinite'] == 0,
        'rss_bounded': bool(rss) and rss_figures['growth'] <= rss_growth_limit_mb,
        'clean_stop': process.returncode == 0 and stop_s < 2.0,
    }
    info = machine_info()
    info['load_average_start'] = start_load
    return SoakReport(
        model_dir=str(model_dir), backend=backend, input_size=f'{width}x{height}', outputs=outputs,
        duration_s=round(soak_s, 2), calibrated_frame_ms=round(calibrated, 2),
        rate_hz=round(len(sent) / soak_s, 2) if soak_s > 0 else 0.0, target_rate_hz=round(rate, 2),
        frames_sent=len(sent), node=node, lost_before_node=max(len(sent) - node['received'], 0),
        outputs_received=len(primary), latency_ms={k: round(float(v), 2) for k, v in latency.items()},
        rss_mb={k: round(v, 1) for k, v in rss_figures.items()}, rss_samples=len(rss), stop_s=round(stop_s, 2),
        exit_code=process.returncode, checks=checks,
        limits={'latency_max_ms': round(latency_limit, 1), 'rss_growth_mb': rss_growth_limit_mb},
        machine=info, log=str(log_path),
        latency_series_ms=[round((recv - stamp) / 1e6, 1) for recv, stamp in primary],
        rss_series_mb=[round(v, 1) for v in rss])


def main(argv: Sequence[str] | None = None, prog: str = 'anomaly_seg bench --soak') -> int:
    """``anomaly_seg bench --soak ...``: run a soak, print its figures; exit 1 when a check fails."""
    parser = argparse.ArgumentParser(prog=prog,
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', type=Path, help='model directory (default: shipped, else light random weights)')
    parser.add_argument('--backend', default='onnxruntime', choices=('onnxruntime', 'tensorrt', 'torch'))
    parser.add_argument('--device', help="cpu, cuda or cuda:N (default: the node's choice)")
    parser.add_argument('--duration', type=float, default=300.0, metavar='S', help='seconds of overload (default 300)')
    parser.add_argument('--frames', type=int, metavar='N', help='stop after N frames instead of --duration')
    parser.add_argument('--rate', type=float, metavar='HZ', help='camera rate (default: --rate-factor x pipeline rate)')
    parser.add_argument('--rate-factor', type=float, default=4.0, help='times the pipeline rate (default 4)')
    parser.add_argument('--max-rate', type=float, default=200.0, metavar='HZ', help='rate cap (default 200)')
    parser.add_argument('--input-size', type=frame_size_argument, default=(640, 480), metavar='WxH',
                        help='frames (default 640x480)')
    parser.add_argument('--outputs', default='anomaly', help='output topics to subscribe, comma-separated')
    parser.add_argument('--rss-growth-limit', type=float, default=50.0, metavar='MB', help='RSS check (default 50)')
    parser.add_argument('--domain-id', type=int, help='ROS_DOMAIN_ID of the node (default: from this process id)')
    parser.add_argument('--param', action='append', default=[], metavar='NAME:=VALUE', help='extra node parameter')
    parser.add_argument('--no-dds-profile', action='store_true',
                        help='without the Fast DDS profile for large images (config/fastdds_large_images.xml)')
    parser.add_argument('--json', type=Path, help='also write the report as JSON')
    args = parser.parse_args(argv)
    frames_bad = args.frames is not None and args.frames < 1
    if args.duration <= 0 or frames_bad or (args.rate is not None and args.rate <= 0):
        parser.error('--duration, --frames and --rate must be positive')
    try:
        report = run_soak(args.models, backend=args.backend, device=args.device, duration_s=args.duration,
                          max_frames=args.frames, rate_hz=args.rate, rate_factor=args.rate_factor,
                          max_rate_hz=args.max_rate, input_size=args.input_size,
                          outputs=[t.strip() for t in args.outputs.split(',') if t.strip()],
                          domain_id=args.domain_id, parameters=args.param, rss_growth_limit_mb=args.rss_growth_limit,
                          dds_profile=not args.no_dds_profile,
                          progress=lambda text: print(f'... {text}', file=sys.stderr, flush=True))
    except AnomalySegError as exc:
        print(f'soak: error: {exc}', file=sys.stderr)
        return 2
    print('\n'.join(report.lines()))
    if args.json:
        print(f'JSON written to {write_json(report.to_dict(), args.json)}')
    return 0 if report.passed else 1


if __name__ == '__main__':
    sys.exit(main())
