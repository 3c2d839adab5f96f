"""``bag record``: write topics (e.g. the node's outputs) to a bag, like ``ros2 bag record``.

Topics are subscribed as soon as a publisher advertises them (their type comes from the graph),
with raw (serialized) subscriptions, so messages are written without decoding. The QoS follows
the publishers: reliable where all of them are reliable, best effort otherwise; keep-last 100.
Each message is written at its receive time (system clock, ns); for messages with a header,
receive time minus header stamp is the latency ``bag eval`` reports.

Recording ends on Ctrl-C or SIGTERM, after ``duration_s``, once every topic has ``count``
messages, or when ``stop`` is set; the bag is always closed properly.
"""
from __future__ import annotations

import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._ros import message_class, ros_node
from .io import BagWriter, typestore

__all__ = ['RecordResult', 'record_bag']

_DEPTH = 100


@dataclass
class RecordResult:
    """The bag written, messages per topic, seconds recorded, requested topics never seen."""

    path: Path
    counts: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0
    missing: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def _qos_for(node: Any, topic: str) -> Any:
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    infos = node.get_publishers_info_by_topic(topic)
    reliable = bool(infos) and all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=_DEPTH, durability=DurabilityPolicy.VOLATILE,
                      reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT)


def record_bag(out: str | Path, topics: Sequence[str], storage: str = 'mcap', duration_s: float | None = None,
               count: int | None = None, stop: threading.Event | None = None) -> RecordResult:
    """Record ``topics`` into the new bag ``out`` until one of the stop conditions (module doc)."""
    if not topics:
        raise ValueError('name at least one topic to record')
    topics = [t if t.startswith('/') else f'/{t}' for t in topics]
    stop = stop or threading.Event()
    result = RecordResult(Path(out))
    previous_term = None
    if threading.current_thread() is threading.main_thread():
        previous_term = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    start = time.monotonic()
    try:
        with BagWriter(out, storage) as writer, ros_node('anomaly_seg_bag_record') as node:
            from rclpy.executors import SingleThreadedExecutor
            executor = SingleThreadedExecutor(context=node.context)
            executor.add_node(node)
            subscriptions: dict[str, Any] = {}
            last_scan = 0.0
            try:
                while not stop.is_set():
                    now = time.monotonic()
                    if duration_s is not None and now - start >= duration_s:
                        break
                    if count is not None and len(subscriptions) == len(topics) \
                            and all(writer.counts.get(t, 0) >= count for t in topics):
                        break
                    if len(subscriptions) + len(result.skipped) < len(topics) and now - last_scan > 0.1:
                        last_scan = now
                        _subscribe_new(node, topics, subscriptions, writer, result)
                    executor.spin_once(timeout_sec=0.05)
            except KeyboardInterrupt:
                pass
            finally:
                executor.shutdown(timeout_sec=0.5)
            result.counts = {t: writer.counts.get(t, 0) for t in topics}
            result.missing = [t for t in topics if t not in subscriptions and t not in result.skipped]
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
    result.duration_s = time.monotonic() - start
    return result


def _subscribe_new(node: Any, topics: Sequence[str], subscriptions: dict[str, Any], writer: BagWriter,
                   result: RecordResult) -> None:
    advertised = dict(node.get_topic_names_and_types())
    for topic in topics:
        if topic in subscriptions or topic in result.skipped or topic not in advertised:
            continue
        msgtype = advertised[topic][0]
        if msgtype not in typestore().types:
            result.skipped[topic] = f'type {msgtype} is not in the ROS 2 Humble type store'
            node.get_logger().warning(f'not recording {topic}: {result.skipped[topic]}')
            continue

        def write(data: bytes, topic: str = topic, msgtype: str = msgtype) -> None:
            writer.write_raw(topic, msgtype, data, time.time_ns())

        subscriptions[topic] = node.create_subscription(message_class(msgtype), topic, write,
                                                        _qos_for(node, topic), raw=True)
