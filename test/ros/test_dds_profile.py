"""The shipped Fast DDS profile (config/fastdds_large_images.xml) and the side that needs it.

Fast DDS writes a message into the shared-memory segment of the *sending* participant; its default
segment (512 KB) cannot hold a 2048x1024 frame. Two processes, best-effort as a camera publishes.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from anomaly_seg_ros.ros.node_process import DDS_PROFILE_VARIABLES, ros_environment

pytestmark = pytest.mark.ros
pytest.importorskip('rclpy')

HERE = Path(__file__).resolve().parent
PROFILE = HERE.parents[1] / 'config' / 'fastdds_large_images.xml'
FRAMES = 12


def _environment(domain: int, profile: bool) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in DDS_PROFILE_VARIABLES}
    env.update(ros_environment(domain, dds_profile=False))
    if profile:
        env.update({name: str(PROFILE) for name in DDS_PROFILE_VARIABLES})
    return env


def _frames_received(domain: int, publisher_profile: bool, subscriber_profile: bool) -> int:
    peer = [sys.executable, str(HERE / 'large_image_peer.py')]
    receiver = subprocess.Popen([*peer, 'receive'], env=_environment(domain, subscriber_profile),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        subprocess.run([*peer, 'publish', str(FRAMES), '4'], env=_environment(domain, publisher_profile),
                       check=True, timeout=60)
        output, _ = receiver.communicate(input='', timeout=30)  # closing stdin ends the receiver
    finally:
        receiver.kill()
    return int(output.split()[-1])


def test_a_publisher_with_the_profile_delivers_2048x1024_frames_to_a_subscriber_without_it(ros_domain_id):
    received = _frames_received(ros_domain_id, publisher_profile=True, subscriber_profile=False)
    assert received >= FRAMES - 2, f'{received} of {FRAMES} frames arrived'


def test_the_profile_on_the_subscriber_alone_does_not_carry_large_frames(ros_domain_id):
    # Why the camera driver (or the bag player) needs the profile, not only the node: this is
    # Fast DDS's behaviour that the README's advice rests on.
    received = _frames_received(ros_domain_id, publisher_profile=False, subscriber_profile=True)
    assert received <= FRAMES // 2, f'{received} of {FRAMES} frames arrived through the default segment'
