"""Does ``anomaly_seg_node`` give memory back after the largest frame it accepts?

:func:`run_memory_check` starts the node as its own process (its own ROS domain, the shipped
parameters, every output topic subscribed, so every stage runs and every output is published at the
frame's size), sends ``steady_frames`` normal frames one at a time (each waits for all its outputs)
and takes the steady resident memory (``VmRSS``) as the median over the last half of them. Then one
frame of ``large_size`` (default: the largest ``max_frame_pixels`` accepts by default, 4096x2160),
sampling RSS while it runs (the peak), then ``recovery_frames`` normal frames, RSS after each. The
check (issue 16): within ``recovery_frames`` normal frames RSS is back within ``limit_mb`` of the
steady state. A PNG of the RSS per frame is written with ``plot``.

``anomaly_seg bench --memory [--help]``; rclpy is imported only inside the functions that need it.
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
from ..ros.node_process import NodeProcess, environment, free_domain_id, node_command, ros_environment
from ..ros.outputs import OUTPUT_TOPICS
from .frames import bench_frames, frame_size_argument
from .machine import machine_info, process_rss_mb
from .report import write_json
from .soak import INPUT_TOPIC, FrameClient

__all__ = ['MemoryCheckError', 'MemoryReport', 'main', 'run_memory_check']

LARGEST_DEFAULT_FRAME = (4096, 2160)  # the default max_frame_pixels (config/anomaly_seg.yaml) as WxH


class MemoryCheckError(AnomalySegError):
    """The node did not start, died, or did not answer a frame."""


@dataclass
class MemoryReport:
    """RSS figures (MiB) of one run: steady state, the large frame's peak, after each recovery frame."""

    model_dir: str
    backend: str
    normal_size: str
    large_size: str
    outputs: list[str]
    steady_mb: float
    large_peak_mb: float
    after_large_mb: float
    recovery_mb: list[float]
    recovered_after: int | None  # normal frames until RSS was within limit_mb of steady (None: never)
    limit_mb: float
    steady_series_mb: list[float] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    log: str = ''

    @property
    def passed(self) -> bool:
        return self.recovered_after is not None and self.recovered_after <= len(self.recovery_mb)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), 'passed': self.passed}

    def lines(self) -> list[str]:
        above = [f'{value - self.steady_mb:+.0f}' for value in self.recovery_mb]
        peak, after = self.large_peak_mb - self.steady_mb, self.after_large_mb - self.steady_mb
        recovered = ('never' if self.recovered_after is None
                     else 'at once' if self.recovered_after == 0 else f'after {self.recovered_after} normal frames')
        return [
            f'memory: {self.model_dir} ({self.backend}), all {len(self.outputs)} outputs at the frame size',
            f'machine: {self.machine.get("cpu_description") or self.machine.get("cpu", "?")}, '
            f'{self.machine.get("usable_cores")} usable cores',
            f'steady RSS with {self.normal_size} frames: {self.steady_mb:.0f} MiB',
            f'one {self.large_size} frame: peak {self.large_peak_mb:.0f} MiB ({peak:+.0f}), '
            f'after it {self.after_large_mb:.0f} MiB ({after:+.0f})',
            f'RSS above steady after each of {len(self.recovery_mb)} normal frames (MiB): {" ".join(above)}',
            f'within {self.limit_mb:g} MiB of steady: {recovered} -> {"PASS" if self.passed else "FAIL"}',
        ]


def _wait_for_outputs(client: FrameClient, stamp: int, topics: Sequence[str], timeout: float,
                      alive: Callable[[], None], pid: int) -> tuple[bool, float]:
    """Spin until every topic carried ``stamp``; returns (all came, highest RSS seen meanwhile)."""
    peak = 0.0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = {topic for topic, _, s in client.received if s == stamp}
        peak = max(peak, process_rss_mb(pid) or 0.0)
        if seen >= set(topics):
            return True, peak
        alive()
        client.executor.spin_once(timeout_sec=0.02)
    return False, peak


def run_memory_check(model_dir: str | Path | None = None, *, backend: str = 'onnxruntime', device: str | None = None,
                     normal_size: tuple[int, int] = (1280, 720), large_size: tuple[int, int] = LARGEST_DEFAULT_FRAME,
                     steady_frames: int = 8, recovery_frames: int = 10, limit_mb: float = 100.0,
                     parameters: Sequence[str] = (), domain_id: int | None = None, frame_timeout_s: float = 120.0,
                     startup_timeout_s: float = 180.0,
                     progress: Callable[[str], None] | None = None) -> MemoryReport:
    """Run the check described in the module docstring.

    Args:
        model_dir: model directory (default: the shipped default model).
        normal_size, large_size: camera frames (W, H), rgb8.
        parameters: extra node parameters, ``'name:=value'`` (e.g. a larger ``max_frame_pixels``).
    Raises:
        MemoryCheckError: the node did not start, died, or answered no frame within ``frame_timeout_s``.
    """
    say = progress or (lambda text: None)
    if model_dir is None:
        from .models import default_cache_dir, resolve_model_dir
        model_dir, _ = resolve_model_dir(None, paper_scale=False, cache_dir=default_cache_dir(), backends=[backend])
    model_dir = Path(model_dir)
    topics = list(OUTPUT_TOPICS)
    domain = domain_id if domain_id is not None else free_domain_id()
    command = node_command(INPUT_TOPIC, [f'model_dir:={model_dir}', f'backend:={backend}',
                                         *([f'device:={device}'] if device else []), *parameters])
    log_path = Path(tempfile.mkstemp(prefix='anomaly_seg_memory_node_', suffix='.log')[1])
    with environment(ros_environment(domain, dds_profile=True)):
        say(f'starting the node on ROS_DOMAIN_ID {domain} (log {log_path}) ...')
        node_process = NodeProcess(command, None, log_path, error=MemoryCheckError)
        process = node_process.process
        alive = node_process.check_alive
        client = None
        try:
            client = FrameClient(domain, topics)
            normal = [client.message(rgb) for rgb in bench_frames(*normal_size, count=2)]
            large = client.message(bench_frames(*large_size, count=1)[0])
            ready = client.spin_until(lambda: client.publisher.get_subscription_count() > 0 and all(
                s.get_publisher_count() > 0 for s in client.subscriptions), startup_timeout_s, alive)
            if not ready:
                raise MemoryCheckError(f'the node did not connect within {startup_timeout_s:.0f} s (log: {log_path})')

            def send(msg: Any, what: str) -> float:
                # The input is best effort and discovery is asymmetric: resend a frame that got no answer.
                for _ in range(3):
                    done, peak = _wait_for_outputs(client, client.publish(msg), topics, frame_timeout_s / 3, alive,
                                                   process.pid)
                    if done:
                        return peak
                raise MemoryCheckError(f'the node answered no {what} frame within {frame_timeout_s:.0f} s '
                                       f'(log: {log_path})')

            def settled_rss() -> float:
                client.spin_until(lambda: False, 0.3, alive)  # the publishing thread lets go of the frame
                return process_rss_mb(process.pid) or 0.0

            say(f'{steady_frames} frames of {normal_size[0]}x{normal_size[1]} ...')
            steady_series = []
            for i in range(steady_frames):
                send(normal[i % 2], 'normal')
                steady_series.append(settled_rss())
            steady = float(np.median(steady_series[steady_frames // 2:]))
            say(f'one frame of {large_size[0]}x{large_size[1]} ...')
            large_peak = send(large, 'large')
            after_large = settled_rss()
            say(f'{recovery_frames} frames of {normal_size[0]}x{normal_size[1]} ...')
            recovery = []
            for i in range(recovery_frames):
                send(normal[i % 2], 'normal')
                recovery.append(settled_rss())
        finally:
            if client is not None:
                client.close()
            node_process.stop()

    within = [i for i, value in enumerate([after_large, *recovery]) if value - steady <= limit_mb]
    return MemoryReport(
        model_dir=str(model_dir), backend=backend, normal_size=f'{normal_size[0]}x{normal_size[1]}',
        large_size=f'{large_size[0]}x{large_size[1]}', outputs=topics, steady_mb=round(steady, 1),
        large_peak_mb=round(max(large_peak, after_large), 1), after_large_mb=round(after_large, 1),
        recovery_mb=[round(v, 1) for v in recovery], recovered_after=within[0] if within else None,
        limit_mb=limit_mb, steady_series_mb=[round(v, 1) for v in steady_series], machine=machine_info(),
        log=str(log_path))


def plot(report: MemoryReport, path: Path) -> Path:
    """RSS per frame (steady frames, the large frame's peak, recovery frames) as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    steady, recovery = report.steady_series_mb, report.recovery_mb
    figure = Figure(figsize=(7, 3.5), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    x_large = len(steady)
    axes.plot(range(len(steady)), steady, 'o-', label=f'{report.normal_size} frames')
    axes.plot([x_large], [report.large_peak_mb], 'rv', label=f'{report.large_size} frame (peak)')
    axes.plot([x_large], [report.after_large_mb], 'r^', label=f'after the {report.large_size} frame')
    axes.plot(range(x_large + 1, x_large + 1 + len(recovery)), recovery, 'o-', color='C0')
    axes.axhline(report.steady_mb, color='grey', lw=0.8)
    axes.axhspan(report.steady_mb, report.steady_mb + report.limit_mb, color='green', alpha=0.1,
                 label=f'steady + {report.limit_mb:g} MiB')
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel('frame')
    axes.set_ylabel('node RSS (MiB)')
    axes.set_title(f'anomaly_seg_node memory ({report.backend}), {"PASS" if report.passed else "FAIL"}')
    axes.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def main(argv: Sequence[str] | None = None, prog: str = 'anomaly_seg bench --memory') -> int:
    """``anomaly_seg bench --memory ...``: run the check, print its figures; exit 1 when it fails."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', type=Path, help='model directory (default: the shipped default model)')
    parser.add_argument('--backend', default='onnxruntime', choices=('onnxruntime', 'tensorrt', 'torch'))
    parser.add_argument('--device', help="cpu, cuda or cuda:N (default: the node's choice)")
    parser.add_argument('--normal-size', type=frame_size_argument, default=(1280, 720), metavar='WxH',
                        help='default 1280x720')
    parser.add_argument('--large-size', type=frame_size_argument, default=LARGEST_DEFAULT_FRAME, metavar='WxH',
                        help='the large frame (default 4096x2160, the largest the default max_frame_pixels accepts)')
    parser.add_argument('--steady-frames', type=int, default=8, metavar='N', help='default 8')
    parser.add_argument('--recovery-frames', type=int, default=10, metavar='N', help='default 10')
    parser.add_argument('--limit', type=float, default=100.0, metavar='MB', help='RSS above steady (default 100)')
    parser.add_argument('--param', action='append', default=[], metavar='NAME:=VALUE', help='extra node parameter')
    parser.add_argument('--domain-id', type=int, help='ROS_DOMAIN_ID of the node (default: a free one)')
    parser.add_argument('--json', type=Path, help='also write the report as JSON')
    parser.add_argument('--plot', type=Path, metavar='PNG', help='also draw RSS per frame')
    args = parser.parse_args(argv)
    if args.steady_frames < 2 or args.recovery_frames < 1:
        parser.error('--steady-frames must be at least 2, --recovery-frames at least 1')
    try:
        report = run_memory_check(args.models, backend=args.backend, device=args.device, normal_size=args.normal_size,
                                  large_size=args.large_size, steady_frames=args.steady_frames,
                                  recovery_frames=args.recovery_frames, limit_mb=args.limit, parameters=args.param,
                                  domain_id=args.domain_id,
                                  progress=lambda text: print(f'... {text}', file=sys.stderr, flush=True))
    except AnomalySegError as exc:
        print(f'memory: error: {exc}', file=sys.stderr)
        return 2
    print('\n'.join(report.lines()))
    if args.json:
        print(f'JSON written to {write_json(report.to_dict(), args.json)}')
    if args.plot:
        print(f'plot written to {plot(report, args.plot)}')
    return 0 if report.passed else 1


if __name__ == '__main__':
    raise SystemExit(main())
