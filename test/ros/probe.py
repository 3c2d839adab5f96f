"""The test side of a node test: publishes camera frames, records outputs and diagnostics."""
from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from anomaly_seg_ros.ros.conversions import array_to_image_fields, rgb_to_compressed_fields

_names = itertools.count()


def image_msg(rgb: np.ndarray, stamp_ns: int, frame_id: str = 'camera', encoding: str = 'rgb8') -> Image:
    """sensor_msgs/Image of an HxWx3 uint8 RGB frame (bgr8 swaps channels, mono8 takes the red one)."""
    if encoding == 'bgr8':
        array = np.ascontiguousarray(rgb[:, :, ::-1])
    elif encoding == 'mono8':
        array = np.ascontiguousarray(rgb[:, :, 0])
    else:
        array = rgb
    msg = Image(**array_to_image_fields(array, encoding))
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return msg


def compressed_msg(rgb: np.ndarray, stamp_ns: int, frame_id: str = 'camera') -> CompressedImage:
    msg = CompressedImage(**rgb_to_compressed_fields(rgb, 'png'))
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return msg


def stamp_ns(msg: Any) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


class Probe:
    """A node of its own in ``context``, spun by ``executor``."""

    def __init__(self, context: Any, executor: Any, namespace: str = '/anomaly_seg') -> None:
        self.node = rclpy.create_node(f'probe_{next(_names)}', context=context)
        self.executor = executor
        executor.add_node(self.node)
        self.namespace = namespace
        self.received: dict[str, list[tuple[float, Image]]] = defaultdict(list)
        self.diagnostics: list[DiagnosticArray] = []
        self._subscriptions: dict[str, Any] = {}
        self._publishers: dict[str, Any] = {}
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics.append, 10)

    # --- outputs ---------------------------------------------------------------------------
    def subscribe(self, topics: Iterable[str], depth: int = 50) -> None:
        for topic in topics:
            if topic not in self._subscriptions:
                self._subscriptions[topic] = self.node.create_subscription(
                    Image, f'{self.namespace}/{topic}', self._recorder(topic), depth)

    def _recorder(self, topic: str) -> Callable[[Image], None]:
        def record(msg: Image) -> None:
            self.received[topic].append((time.monotonic(), msg))
        return record

    def unsubscribe(self, topics: Iterable[str]) -> None:
        for topic in topics:
            subscription = self._subscriptions.pop(topic, None)
            if subscription is not None:
                self.node.destroy_subscription(subscription)

    def messages(self, topic: str) -> list[Image]:
        return [msg for _, msg in self.received.get(topic, [])]

    def stamps(self, topic: str) -> set[int]:
        return {stamp_ns(msg) for msg in self.messages(topic)}

    # --- input -----------------------------------------------------------------------------
    def publisher(self, topic: str = '/image', msg_type: type = Image, reliable: bool = True) -> Any:
        key = f'{topic}:{msg_type.__name__}'
        if key not in self._publishers:
            reliability = ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
            self._publishers[key] = self.node.create_publisher(msg_type, topic,
                                                               QoSProfile(depth=10, reliability=reliability))
        return self._publishers[key]

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def wait_for_node_subscription(self, topic: str = '/image', msg_type: type = Image, timeout: float = 30) -> None:
        publisher = self.publisher(topic, msg_type)
        if not self.spin_until(lambda: publisher.get_subscription_count() > 0, timeout):
            raise AssertionError(f'no subscriber on {topic} after {timeout} s')

    def send_until(self, make_msg: Callable[[], Any], done: Callable[[], bool], timeout: float,
                   topic: str = '/image', period: float = 0.1) -> bool:
        """Publish ``make_msg()`` every ``period`` s until ``done()``; like a camera that keeps sending."""
        msg = make_msg()
        publisher = self.publisher(topic, type(msg))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            publisher.publish(msg)
            if self.spin_until(done, period):
                return True
            msg = make_msg()
        return done()

    # --- diagnostics -----------------------------------------------------------------------
    def latest_diagnostics(self) -> dict[str, str]:
        """Key/values of the newest anomaly_seg status ({} before the first)."""
        for array in reversed(self.diagnostics):
            for status in array.status:
                if 'anomaly segmentation' in status.name:
                    return {kv.key: kv.value for kv in status.values}
        return {}

    def wait_for_diagnostics(self, predicate: Callable[[dict[str, str]], bool], timeout: float = 10.0) -> dict:
        """Spin until the newest diagnostics satisfy ``predicate``; returns them."""
        self.spin_until(lambda: bool(self.latest_diagnostics()) and predicate(self.latest_diagnostics()), timeout)
        return self.latest_diagnostics()

    def spin_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            self.executor.spin_once(timeout_sec=0.01)
        return predicate()

    def destroy(self) -> None:
        self.executor.remove_node(self.node)
        self.node.destroy_node()
