"""``bag play``: publish a bag's topics with their recorded timing, like ``ros2 bag play``.

Messages go out as their recorded CDR bytes (rclpy's ``Publisher.publish`` takes serialized
``bytes`` on Humble and later), so any message type installed for rclpy plays without decoding.
Where a publisher refuses bytes, the message is deserialized with ``rclpy.serialization`` first.

Timing: message k is published at ``t0 + (time_k - time_0) / rate`` on the wall clock, where
``time`` is the bag's receive time. ``restamp`` shifts every ``header.stamp`` by the offset between
the start of playback and the bag's start (wall clock, per loop), so stamps look live (a node's
latency can be measured against them) while messages recorded together keep equal stamps.
Publishers are reliable, keep-last ``depth``: best-effort and reliable subscribers both receive.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._ros import message_class, ros_node
from .io import BagError, BagMessage, bag_topics, read_messages

__all__ = ['PlayResult', 'play_bag']


@dataclass
class PlayResult:
    """Messages published per topic, loops completed, wall time in seconds."""

    counts: dict[str, int] = field(default_factory=dict)
    loops: int = 0
    wall_s: float = 0.0


def _restamped(message: BagMessage, offset_ns: int) -> bytes:
    msg = message.decode()
    header = getattr(msg, 'header', None)
    if header is None or offset_ns == 0:
        return message.raw
    total = int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec) + offset_ns
    header.stamp.sec, header.stamp.nanosec = divmod(max(total, 0), 1_000_000_000)
    return message.encode(msg)


def _wait_for_subscribers(node: Any, publishers: dict[str, Any], topics: Sequence[str], timeout_s: float,
                          stop: threading.Event) -> None:
    unknown = [t for t in topics if t not in publishers]
    if unknown:
        raise BagError(f'cannot wait for subscribers of {", ".join(unknown)}: not played from this bag')
    deadline = time.monotonic() + timeout_s
    while not stop.is_set():
        waiting = [t for t in topics if publishers[t].get_subscription_count() < 1]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise BagError(f'no subscriber on {", ".join(waiting)} after {timeout_s:g} s; start the consumer '
                           'first or drop --wait-for')
        time.sleep(0.05)


def play_bag(path: str | Path, rate: float = 1.0, loop: bool = False, topics: Sequence[str] | None = None,
             restamp: bool = False, depth: int = 10, wait_for: Sequence[str] = (), wait_timeout_s: float = 30.0,
             start_delay_s: float = 0.5, stop: threading.Event | None = None,
             on_message: Callable[[BagMessage], None] | None = None) -> PlayResult:
    """Publish the bag at ``path`` (see the module doc). Returns when done, on ``stop``, or on Ctrl-C.

    Args:
        rate: playback speed factor (2.0 = twice as fast).
        loop: start over at the end until stopped.
        topics: topics to play (default all).
        restamp: shift header stamps to the wall clock of playback.
        depth: publisher queue depth.
        wait_for: topics that must have a subscriber before playback starts.
        start_delay_s: pause after creating publishers (discovery) before the first message.
        stop: set it to end playback from another thread.
        on_message: called after each publish (for progress).
    """
    if not rate > 0:
        raise ValueError(f'rate must be positive, got {rate}')
    available = bag_topics(path)
    selected = list(available) if topics is None else list(topics)
    missing = [t for t in selected if t not in available]
    if missing:
        raise BagError(f'bag {path} has no topic {", ".join(missing)}; topics: {", ".join(sorted(available))}')
    stop = stop or threading.Event()
    result = PlayResult(counts={t: 0 for t in selected})
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE)
    start = time.monotonic()
    with ros_node('anomaly_seg_bag_play') as node:
        classes = {t: message_class(available[t][0]) for t in selected}
        publishers = {t: node.create_publisher(classes[t], t, qos) for t in selected}
        _wait_for_subscribers(node, publishers, wait_for, wait_timeout_s, stop)
        stop.wait(start_delay_s)
        raw_ok: dict[str, bool] = {}
        try:
            while not stop.is_set():
                t0_wall = 0.0
                t0_bag: int | None = None
                offset_ns = 0
                for message in read_messages(path, selected):
                    if t0_bag is None:
                        t0_wall, t0_bag = time.monotonic(), message.timestamp_ns
                        offset_ns = time.time_ns() - t0_bag if restamp else 0
                    delay = t0_wall + (message.timestamp_ns - t0_bag) / 1e9 / rate - time.monotonic()
                    if delay > 0 and stop.wait(delay):
                        break
                    data = _restamped(message, offset_ns) if restamp else message.raw
                    _publish(publishers[message.topic], classes[message.topic], data, raw_ok, message.topic)
                    result.counts[message.topic] += 1
                    if on_message is not None:
                        on_message(message)
                else:
                    result.loops += 1
                if not loop:
                    break
        except KeyboardInterrupt:
            pass
        # Let reliable publishers deliver the last messages before the node goes away.
        _drain(publishers, timeout_s=1.0)
    result.wall_s = time.monotonic() - start
    return result


def _publish(publisher: Any, cls: Any, data: bytes, raw_ok: dict[str, bool], topic: str) -> None:
    if raw_ok.get(topic, True):
        try:
            publisher.publish(data)
            raw_ok[topic] = True
            return
        except TypeError:
            raw_ok[topic] = False
    from rclpy.serialization import deserialize_message
    publisher.publish(deserialize_message(data, cls))


def _drain(publishers: dict[str, Any], timeout_s: float) -> None:
    from rclpy.duration import Duration
    for publisher in publishers.values():
        wait = getattr(publisher, 'wait_for_all_acked', None)
        if wait is not None and publisher.get_subscription_count() > 0:
            try:
                wait(Duration(seconds=timeout_s))
            except Exception:  # not supported by every rmw (best-effort peers, older rclpy)
                time.sleep(0.1)
