"""rclpy plumbing shared by ``bag play`` and ``bag record``; imports rclpy only when called.

Each tool runs its node in its own rclpy Context without rclpy's signal handlers, so Ctrl-C
arrives as a plain KeyboardInterrupt (the tool then closes the bag cleanly), and two tools can
share one process (the tests do).
"""
from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .io import BagError

__all__ = ['message_class', 'ros_node']


@contextmanager
def ros_node(name: str) -> Iterator[Any]:
    """A node in a fresh context (ROS_DOMAIN_ID etc. from the environment); shut down on exit."""
    try:
        import rclpy
        from rclpy.context import Context
    except ImportError as exc:
        raise BagError('rclpy is not available: source a ROS 2 installation (Humble or later) or install '
                       'the ROS 2 Python wheels (requirements/ros.txt)') from exc
    context = Context()
    try:
        from rclpy.signals import SignalHandlerOptions
        rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    except (ImportError, TypeError):  # rclpy without signal handler options
        rclpy.init(context=context)
    node = None
    try:
        node = rclpy.create_node(name, context=context, start_parameter_services=False)
        yield node
    finally:
        if node is not None:
            node.destroy_node()
        if context.ok():
            rclpy.shutdown(context=context)


def message_class(msgtype: str) -> Any:
    """The rclpy message class of ``pkg/msg/Name``; BagError when its package is not installed."""
    parts = msgtype.split('/')
    if len(parts) != 3:
        raise BagError(f'cannot interpret message type {msgtype!r} (expected pkg/msg/Name)')
    package, kind, name = parts
    try:
        return getattr(importlib.import_module(f'{package}.{kind}'), name)
    except (ImportError, AttributeError) as exc:
        raise BagError(f'message type {msgtype} is not installed for rclpy (package {package})') from exc
