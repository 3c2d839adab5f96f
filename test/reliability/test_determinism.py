"""The same bag through the node twice on the CPU gives byte-identical outputs on every topic.

A bag of camera frames (``bags.make_bag``) is published message by message (the bag's serialized
bytes as they are) to the node as its own process, each frame once the previous one has come back on
every output topic, so no frame is dropped. Outputs are recorded serialized (header and data) per
topic and stamp. The bag goes through one node twice, then through a second node started afresh.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sensor_msgs.msg import Image

from anomaly_seg_ros.bags import make_bag, read_messages
from anomaly_seg_ros.bags.io import header_stamp_ns
from anomaly_seg_ros.data.sample import Sample
from anomaly_seg_ros.export import synthetic_frames
from anomaly_seg_ros.ros.conversions import header_stamp_from_cdr
from anomaly_seg_ros.ros.outputs import OUTPUT_TOPICS

pytestmark = pytest.mark.ros

TOPIC = '/camera/image_raw'
FRAMES = 5
STARTUP_TIMEOUT_S = 90.0


@pytest.fixture
def bag(tmp_path: Path) -> Path:
    frames = synthetic_frames(FRAMES, (96, 160), seed=11)
    samples = [Sample(f'f{i}', frame, None, None, None, None) for i, frame in enumerate(frames)]
    return make_bag(samples, tmp_path / 'frames_bag', topic=TOPIC).path


class _Recorder:
    """Raw subscriptions to every output topic of the node: (topic, stamp) -> serialized message."""

    def __init__(self, probe: Any) -> None:
        self.probe = probe
        self.outputs: dict[tuple[str, int], bytes] = {}
        self.subscriptions = [probe.node.create_subscription(Image, f'/anomaly_seg/{topic}', self._record(topic), 50,
                                                             raw=True) for topic in OUTPUT_TOPICS]

    def _record(self, topic: str) -> Any:
        def record(data: bytes) -> None:
            key = (topic, header_stamp_from_cdr(data))
            assert key not in self.outputs, f'{key} published twice'
            self.outputs[key] = bytes(data)
        return record

    def connected(self) -> bool:
        return all(s.get_publisher_count() > 0 for s in self.subscriptions)

    def complete(self, stamp: int) -> bool:
        return all((topic, stamp) in self.outputs for topic in OUTPUT_TOPICS)

    def close(self) -> None:
        for subscription in self.subscriptions:
            self.probe.node.destroy_subscription(subscription)


def _play(bag: Path, probe: Any, node: Any) -> dict[tuple[str, int], bytes]:
    recorder = _Recorder(probe)
    publisher = probe.publisher(TOPIC)
    assert probe.spin_until(lambda: node.process.poll() is not None or (
        publisher.get_subscription_count() > 0 and recorder.connected()), STARTUP_TIMEOUT_S), node.log()
    assert node.process.poll() is None, node.log()
    try:
        for message in read_messages(bag, [TOPIC]):
            stamp = header_stamp_ns(message.decode())
            publisher.publish(message.raw)  # the bag's bytes, unchanged
            assert probe.spin_until(lambda s=stamp: recorder.complete(s), 30), (stamp, node.log())
        probe.spin_until(lambda: False, 0.3)  # nothing more may come
        return dict(recorder.outputs)
    finally:
        recorder.close()


def test_the_same_bag_twice_through_the_node_gives_identical_outputs(bag, tiny_model, ros_domain_id, start_node,
                                                                    probe_factory):
    parameters = ('-p', f'model_dir:={tiny_model}', '-p', 'backend:=onnxruntime', '-p', 'device:=cpu',
                  '-p', 'qos.input_reliability:=reliable', '-p', 'qos.output_depth:=50', '-r', f'image:={TOPIC}')
    probe = probe_factory()
    first_node = start_node(*parameters)
    first = _play(bag, probe, first_node)
    again = _play(bag, probe, first_node)  # the same node, warm
    first_node.stop()
    second_node = start_node(*parameters)  # a fresh process
    second = _play(bag, probe, second_node)
    second_node.stop()

    assert len(first) == FRAMES * len(OUTPUT_TOPICS)
    for name, run in (('same node, second pass', again), ('second node', second)):
        assert run.keys() == first.keys(), name
        differing = sorted(key for key in first if run[key] != first[key])
        assert not differing, f'{name}: outputs differ for {differing}'
    print(f'\n{len(first)} outputs ({FRAMES} frames x {len(OUTPUT_TOPICS)} topics), '
          f'{sum(map(len, first.values()))} bytes, identical in 3 passes (2 node processes)')
