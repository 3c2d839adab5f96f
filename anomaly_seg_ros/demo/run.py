"""``anomaly_seg demo``: the node as its own process, fed camera frames over ROS topics.

:func:`run_demo` starts ``anomaly_seg_node`` with the shipped (or given) models and the default
parameters on a ROS domain of its own (``ROS_DOMAIN_ID`` when the user set one), publishes the
frames of a :class:`~.sources.FrameSource` like a camera (fixed rate; the node drops what it
cannot keep up with) or one at a time (``rate_hz=0``), receives every output topic, writes the
pictures (:mod:`.output`) and measures the achieved frame rate and latency. Ctrl-C stops the
stream and the node process.
"""
from __future__ import annotations

import os
import queue
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..benchmark.machine import cpu_description
from ..errors import AnomalySegError
from ..resources import default_model_dir
from ..ros.conversions import image_msg_to_array
from ..ros.node_process import (
    DISCOVERY_VARIABLES,
    NODE_PROGRAM,
    NodeProcess,
    environment,
    free_domain_id,
    node_command,
    ros_environment,
)
from ..ros.outputs import OUTPUT_TOPICS
from .client import IMAGE_TOPIC, DemoClient
from .output import DemoSummary, OutputWriter, format_summary, write_contact_sheet
from .sources import Frame, FrameSource

__all__ = ['DemoError', 'DemoOptions', 'run_demo']

_MEMORY_BUDGET = 512 * 2**20  # frames of a known-size source are prepared in memory up to this


class DemoError(AnomalySegError):
    """The demo cannot run (the node did not start, died, or never answered)."""


@dataclass
class DemoOptions:
    """What to stream where. ``model_dir``/``backend``/``config_file`` ``None``: the shipped defaults.

    ``node_program``: how to start the node (e.g. ``('ros2', 'run', 'anomaly_seg_ros', 'anomaly_seg_node')``);
    ``--ros-args ...`` is appended.
    """

    source: FrameSource
    out_dir: Path = Path('demo_output')
    model_dir: Path | None = None
    backend: str | None = None
    config_file: Path | None = None
    rate_hz: float = 10.0
    video: bool = True
    startup_timeout_s: float = 180.0
    frame_timeout_s: float = 30.0
    progress: bool = True
    node_program: tuple[str, ...] = NODE_PROGRAM


def _start_node(options: DemoOptions, model_dir: Path, env: dict[str, str], log_path: Path) -> NodeProcess:
    """The node (``options.node_program --ros-args ...``) in the demo's process group, so that a Ctrl-C in
    the terminal reaches it too."""
    parameters = [f'model_dir:={model_dir}'] + ([f'backend:={options.backend}'] if options.backend else [])
    command = node_command(IMAGE_TOPIC, parameters, params_file=options.config_file, program=options.node_program)
    return NodeProcess(command, {**os.environ, **env, 'PYTHONUNBUFFERED': '1'}, log_path, own_session=False,
                       error=DemoError)


def _domain_id() -> int:
    """The user's ``ROS_DOMAIN_ID``, else :func:`~..ros.node_process.free_domain_id`."""
    value = os.environ.get('ROS_DOMAIN_ID', '').strip()
    if value:
        if not value.isdigit():
            raise DemoError(f'ROS_DOMAIN_ID={value!r} is not a number; unset it to let the demo pick a domain')
        return int(value)
    return free_domain_id()


def _ros_env(domain_id: int) -> dict[str, str]:
    """Variables for the node and the demo's own participant: domain, DDS profile, and localhost only
    unless the user chose the discovery range."""
    return ros_environment(domain_id, localhost=not any(name in os.environ for name in DISCOVERY_VARIABLES))


def _client(domain_id: int, env: dict[str, str]) -> DemoClient:
    """The demo's node, created with ``env`` in effect (DDS reads it when the participant starts)."""
    with environment(env):
        return DemoClient(domain_id, tuple(OUTPUT_TOPICS))


def _progress(total: int | None, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit='frame', disable=not enabled, leave=enabled)


def _prepared_frames(source: FrameSource, progress: bool) -> Iterator[Frame]:
    """All frames in memory when they fit the budget (prepared while the node loads), else lazily."""
    frames = source.open()
    if source.count is None:
        return frames
    first = next(frames, None)
    if first is None:
        return iter(())
    if source.count * first.rgb.nbytes > _MEMORY_BUDGET:
        return _chain(first, frames)
    with _progress(source.count, 'preparing frames', progress) as bar:
        prepared = [first]
        bar.update(1)
        for frame in frames:
            prepared.append(frame)
            bar.update(1)
    return iter(prepared)


def _chain(first: Frame, rest: Iterator[Frame]) -> Iterator[Frame]:
    yield first
    yield from rest


def run_demo(options: DemoOptions) -> DemoSummary:
    """Stream ``options.source`` through the node; returns the summary (also saved and printed)."""
    model_dir = Path(options.model_dir).resolve() if options.model_dir else default_model_dir()
    out_dir = Path(options.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    domain_id = _domain_id()
    env = _ros_env(domain_id)
    summary = DemoSummary(source=options.source.description, model_dir=str(model_dir),
                          backend=options.backend or '(config default)', rate_hz=options.rate_hz,
                          out_dir=str(out_dir), domain_id=domain_id, cpu=cpu_description())
    node = _start_node(options, model_dir, env, out_dir / 'node.log')
    client = writer = None
    try:
        client = _client(domain_id, env)
        frames = _prepared_frames(options.source, options.progress)
        writer = OutputWriter(out_dir, (options.rate_hz or 10.0) if options.video else None)
        _stream(options, node, client, writer, frames, summary)
    except KeyboardInterrupt:
        summary.interrupted = True
        raise
    finally:
        node.stop(timeout=5.0)
        if client is not None:
            client.close()
        if writer is not None:
            writer.close()
            sheet = write_contact_sheet(out_dir, writer.frames)
            summary.contact_sheet = str(sheet) if sheet else None
            summary.video = str(writer.video_path) if writer.video_path else None
            summary.video_note = writer.video_note
        summary.save(out_dir / 'summary.json')
    print(format_summary(summary))
    return summary


def _wait_until_ready(options: DemoOptions, node: NodeProcess, client: DemoClient, first: Frame) -> None:
    """Send the first frame every half second until one complete set of outputs comes back."""
    deadline = time.monotonic() + options.startup_timeout_s
    if options.progress:
        print(f'waiting for anomaly_seg_node (ROS domain {client.domain_id}, log: {node.log_path})', file=sys.stderr)
    while time.monotonic() < deadline:
        node.check_alive('during start-up')
        client.publish(first.rgb)
        try:
            client.completed.get(timeout=0.5)
        except queue.Empty:
            continue
        time.sleep(0.3)  # let any late answers to the other warm-up frames arrive, then drop them
        while not client.completed.empty():
            client.completed.get_nowait()
        return
    raise DemoError(f'the node did not answer within {options.startup_timeout_s:g} s (log: {node.log_path})')


def _stream(options: DemoOptions, node: NodeProcess, client: DemoClient, writer: OutputWriter,
            frames: Iterator[Frame], summary: DemoSummary) -> None:
    first = next(frames, None)
    if first is None:
        raise DemoError(f'the source has no frames: {options.source.description}')
    _wait_until_ready(options, node, client, first)
    client.forget_older_than(time.time_ns())

    sent: dict[int, Frame] = {}
    latencies: list[float] = []
    received_times: list[float] = []
    period = 1.0 / options.rate_hz if options.rate_hz > 0 else 0.0

    def collect(timeout: float) -> bool:
        """Write one completed frame if one arrives within ``timeout``; True when one did."""
        try:
            stamp, received, outputs = client.completed.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return False
        frame = sent.pop(stamp, None)
        if frame is None:
            return True  # a late warm-up answer
        for old in [s for s in sent if s < stamp]:
            del sent[old]  # older frames were dropped by the node; it never goes back
        client.forget_older_than(stamp)
        writer.write(frame.name, frame.rgb, {t: image_msg_to_array(m) for t, m in outputs.items()})
        latencies.append((received - stamp / 1e9) * 1e3)
        received_times.append(received)
        return True

    start = time.monotonic()
    with _progress(options.source.count, 'streaming', options.progress) as bar:
        for index, frame in enumerate(_chain(first, frames)):
            if period:
                while collect(start + index * period - time.monotonic()):
                    pass
            node.check_alive('while streaming')
            sent[client.publish(frame.rgb)] = frame
            summary.frames_sent += 1
            if not period:
                deadline = time.monotonic() + options.frame_timeout_s
                while sent and time.monotonic() < deadline:
                    collect(min(0.5, deadline - time.monotonic()))
                    node.check_alive('while streaming')
                sent.clear()  # not back within frame_timeout_s: counted as not received
            bar.update(1)
            bar.set_postfix(received=len(latencies), refresh=False)
        quiet_until = time.monotonic() + max(3.0, 3 * (np.percentile(latencies, 90) / 1e3 if latencies else 1.0))
        while sent and time.monotonic() < quiet_until:
            if collect(0.1):
                quiet_until = time.monotonic() + 3.0
    summary.duration_s = round(time.monotonic() - start, 3)
    summary.frames_received = len(latencies)
    summary.frames_dropped = summary.frames_sent - summary.frames_received
    if len(received_times) > 1:
        summary.output_rate_hz = round((len(received_times) - 1) / (received_times[-1] - received_times[0]), 3)
    if latencies:
        p50, p90 = np.percentile(latencies, [50, 90])
        summary.latency_ms = {'median': round(float(p50), 1), 'p90': round(float(p90), 1),
                              'max': round(float(max(latencies)), 1)}
    ended = time.monotonic()
    while client.diagnostics_received < ended and time.monotonic() < ended + 2.5:  # the node's final counts
        time.sleep(0.05)
    summary.node = dict(client.diagnostics)
    summary.backend = summary.node.get('backend', summary.backend)
