"""The demo's own ROS node: publishes camera frames, gathers each frame's complete set of outputs.

Used by :mod:`.run`. Spins in a thread of its own; completed frames (every output
topic received for one input stamp) come out of :attr:`DemoClient.completed` as
``(stamp_ns, received_time_s, {topic: sensor_msgs/Image})``.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from ..ros.client import ClientNode, publish_stamped
from ..ros.node_process import NODE_NAME
from ..ros.outputs import image_message

__all__ = ['IMAGE_TOPIC', 'DemoClient']

IMAGE_TOPIC = '/camera/image_raw'
OUTPUT_DEPTH = 30


class DemoClient(ClientNode):
    """Publishes frames on :data:`IMAGE_TOPIC`; subscribes to ``topics`` of the node and /diagnostics."""

    def __init__(self, domain_id: int, topics: tuple[str, ...]) -> None:
        super().__init__(domain_id, 'anomaly_seg_demo')
        self.domain_id = domain_id
        self.topics = topics
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.publisher = self.node.create_publisher(Image, IMAGE_TOPIC, reliable)
        # Deep enough to ride out a few seconds of this process being starved of CPU (it shares the
        # machine with the node): a frame whose outputs overflowed here would count as dropped.
        outputs_qos = QoSProfile(depth=OUTPUT_DEPTH, reliability=ReliabilityPolicy.RELIABLE)
        for topic in topics:
            self.node.create_subscription(Image, f'/{NODE_NAME}/{topic}', self._recorder(topic), outputs_qos)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.completed: queue.Queue[tuple[int, float, dict[str, Any]]] = queue.Queue()
        self.diagnostics: dict[str, str] = {}
        self.diagnostics_received = 0.0  # time.monotonic() of the last status from the node
        self._partial: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._spin, name='demo_executor', daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - the context was shut down under the executor
            pass

    def _recorder(self, topic: str) -> Any:
        def record(msg: Any) -> None:
            received = time.time()
            stamp = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
            with self._lock:
                outputs = self._partial.setdefault(stamp, {})
                outputs[topic] = msg
                if len(outputs) == len(self.topics):
                    del self._partial[stamp]
                    self.completed.put((stamp, received, outputs))
        return record

    def _on_diagnostics(self, msg: Any) -> None:
        for status in msg.status:
            if status.name.startswith(f'{NODE_NAME}:'):
                values = {kv.key: kv.value for kv in status.values}
                if not any(k.startswith('stage_ms.') for k in values):  # an idle period: keep the timings
                    values.update({k: v for k, v in self.diagnostics.items() if k.startswith('stage_ms.')})
                self.diagnostics = values
                self.diagnostics_received = time.monotonic()

    def publish(self, rgb: np.ndarray) -> int:
        """Publish one rgb8 frame stamped now; returns the stamp (ns since the epoch)."""
        return publish_stamped(self.publisher, image_message(Image, Header(frame_id='camera'), rgb, 'rgb8'))

    def forget_older_than(self, stamp: int) -> None:
        with self._lock:
            for old in [s for s in self._partial if s < stamp]:
                del self._partial[old]

    def close(self) -> None:
        super().close()
        self._thread.join(2.0)
