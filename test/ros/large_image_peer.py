"""One side of a 2048x1024 rgb8 image stream between two processes, best effort as a camera sends it.

    large_image_peer.py publish FRAMES RATE_HZ   waits for a subscriber, sends FRAMES frames, exits
    large_image_peer.py receive                  prints how many frames arrived once stdin closes

Each process reads the Fast DDS profile (or none) from its own environment; the test decides which.
"""
from __future__ import annotations

import sys
import threading
import time

import numpy as np
import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from anomaly_seg_ros.ros.conversions import image_to_cdr

TOPIC = '/large_image_peer/image'


def publish(frames: int, rate_hz: float) -> None:
    node = rclpy.create_node('large_image_publisher')
    publisher = node.create_publisher(Image, TOPIC, qos_profile_sensor_data)
    data = image_to_cdr(np.random.default_rng(0).integers(0, 256, (1024, 2048, 3), np.uint8), 'rgb8', 1, 0, 'camera')
    deadline = time.monotonic() + 30.0
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # the subscriber's side of discovery settles too
    for _ in range(frames):
        publisher.publish(data)
        time.sleep(1.0 / rate_hz)
    time.sleep(1.0)  # let the last frame leave before the participant goes


def receive() -> None:
    node = rclpy.create_node('large_image_subscriber')
    received = []
    node.create_subscription(Image, TOPIC, received.append, qos_profile_sensor_data, raw=True)
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    while not done.is_set():
        rclpy.spin_once(node, timeout_sec=0.1)
    print(len(received), flush=True)


if __name__ == '__main__':
    rclpy.init()
    if sys.argv[1] == 'publish':
        publish(int(sys.argv[2]), float(sys.argv[3]))
    else:
        receive()
