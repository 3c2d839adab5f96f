"""The other side of the node, for the tools that drive it as a process (demo, benchmark, soak):
a node of this process in a ROS context of its own, with its own single-threaded executor.

rclpy is imported when a client is made, not with this module, so the benchmark modules that use it
import without ROS.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ['ClientNode', 'publish_stamped']


def publish_stamped(publisher: Any, msg: Any) -> int:
    """Stamp ``msg``'s header with the wall clock now and publish it; returns the stamp (ns)."""
    stamp = time.time_ns()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
    publisher.publish(msg)
    return stamp


class ClientNode:
    """``node`` named ``name`` in a fresh context on ROS domain ``domain_id``, added to ``executor``."""

    def __init__(self, domain_id: int, name: str) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin_until(self, done: Callable[[], bool], timeout: float, alive: Callable[[], None],
                   step: float = 0.01) -> bool:
        """Spin until ``done()`` or ``timeout`` seconds; ``alive()`` raises when the node process died.
        Returns ``done()``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return True
            alive()
            self.executor.spin_once(timeout_sec=step)
        return done()

    def close(self) -> None:
        """Stop the executor (waiting at most 1 s for a callback in progress), destroy the node, shut
        the context down."""
        try:
            self.executor.shutdown(timeout_sec=1.0)
            self.node.destroy_node()
        finally:
            self.context.try_shutdown()
