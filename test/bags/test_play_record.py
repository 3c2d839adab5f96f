"""`bag play` and `bag record` through real rclpy: payloads, stamps, restamping, Ctrl-C."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from anomaly_seg_ros import cli
from anomaly_seg_ros.bags import (
    BagWriter,
    evaluate_bag,
    header_stamp_ns,
    image_message,
    make_bag,
    play_bag,
    read_messages,
    record_bag,
)

pytest.importorskip('rclpy')  # imported here, in the main thread, before any tool thread starts
pytestmark = pytest.mark.ros

TOPICS = ['/camera/image_raw', '/ground_truth/anomaly']


def test_recorded_messages_equal_the_played_ones(tmp_path, frames, ros_domain_id):
    made = make_bag(frames, tmp_path / 'made', rate=20.0).path
    recorded: dict = {}
    recorder = threading.Thread(target=lambda: recorded.update(
        result=record_bag(tmp_path / 'rec', TOPICS, storage='sqlite3', count=3, duration_s=30)))
    recorder.start()
    played = play_bag(made, topics=TOPICS, wait_for=TOPICS, wait_timeout_s=20, start_delay_s=0.2)
    recorder.join(timeout=40)
    assert not recorder.is_alive()
    assert played.counts == {t: 3 for t in TOPICS} and played.loops == 1
    assert recorded['result'].counts == {t: 3 for t in TOPICS}
    original = {(m.topic, header_stamp_ns(m.decode())): m.raw for m in read_messages(made)}
    copies = list(read_messages(tmp_path / 'rec'))
    assert len(copies) == 6
    for message in copies:
        assert message.raw == original[(message.topic, header_stamp_ns(message.decode()))]
    # played at 20 Hz, received times recorded: 3 frames span 100 ms (not a burst; a busy machine delays receipts)
    times = [m.timestamp_ns for m in copies if m.topic == TOPICS[0]]
    assert 50 < (times[-1] - times[0]) / 1e6 < 2000, np.diff(times) / 1e6


def test_record_command_stops_on_sigint_and_restamped_play_measures_latency(tmp_path, frames, ros_domain_id):
    # A bag holding ground truth and a perfect "node output" with the same stamps.
    source = tmp_path / 'source'
    with BagWriter(source) as writer:
        for i, sample in enumerate(frames):
            stamp = 1_000_000_000 + i * 50_000_000
            writer.write('/ground_truth/anomaly', image_message(sample.anomaly, 'mono8', stamp, 'cam'), stamp)
            scores = (sample.anomaly == 1).astype(np.float32)
            writer.write('/anomaly_seg/anomaly', image_message(scores, '32FC1', stamp, 'cam'), stamp)
    topics = ['/ground_truth/anomaly', '/anomaly_seg/anomaly']
    record = subprocess.Popen([sys.executable, '-m', 'anomaly_seg_ros.cli', 'bag', 'record', '--out',
                               str(tmp_path / 'rec'), '--topics', *topics], env=os.environ.copy(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        code = cli.main(['bag', 'play', str(source), '--restamp', '--wait-for', *topics, '--wait-timeout', '30',
                         '--delay', '0.2'])
        assert code == 0
        time.sleep(0.5)
        start_play = time.time_ns()
        record.send_signal(signal.SIGINT)
        out, err = record.communicate(timeout=20)
    finally:
        if record.poll() is None:
            record.kill()
    assert record.returncode == 0, err
    assert 'recorded' in out
    result = evaluate_bag(tmp_path / 'rec', anomaly_topic='/anomaly_seg/anomaly', gt_topic='/ground_truth/anomaly')
    assert result.anomaly.ap == 1.0 and result.anomaly.fpr95 == 0.0
    assert result.input_frames == 3 and result.coverage == 1.0
    latency = result.latency['/anomaly_seg/anomaly']
    assert latency.count == 3 and 0 <= latency.p50 < 1000  # restamped: live stamps, receipt shortly after
    # the stamps were moved to playback time, the 50 ms spacing kept
    stamps = sorted(header_stamp_ns(m.decode()) for m in read_messages(tmp_path / 'rec', ['/anomaly_seg/anomaly']))
    assert abs(stamps[0] - start_play) < 60e9
    assert np.diff(stamps).tolist() == [50_000_000, 50_000_000]


def test_play_loops_until_stopped(tmp_path, frames, ros_domain_id):
    made = make_bag(frames, tmp_path / 'made', rate=50.0).path
    stop = threading.Event()
    timer = threading.Timer(2.0, stop.set)  # the player's start-up included (slower on a busy, slower CPU)
    timer.start()
    result = play_bag(made, loop=True, rate=2.0, topics=['/camera/image_raw'], start_delay_s=0.0, stop=stop)
    timer.join()
    assert result.loops >= 2  # 3 frames at 100 Hz effective: a pass takes 20 ms
    assert result.counts['/camera/image_raw'] >= 3 * result.loops


def test_record_without_publishers_ends_after_duration_and_lists_missing_topics(tmp_path, ros_domain_id):
    result = record_bag(tmp_path / 'rec', ['/nobody/publishes'], duration_s=0.5)
    assert result.missing == ['/nobody/publishes'] and result.counts == {'/nobody/publishes': 0}
    assert 0.5 <= result.duration_s < 5
    assert (tmp_path / 'rec' / 'metadata.yaml').is_file()


def test_publish_falls_back_to_deserializing_where_bytes_are_refused():
    from rclpy.serialization import serialize_message
    from std_msgs.msg import String

    from anomaly_seg_ros.bags.play import _publish

    class BytesRefusingPublisher:
        def __init__(self):
            self.sent = []

        def publish(self, msg):
            if isinstance(msg, bytes):
                raise TypeError('Expected String, got bytes')
            self.sent.append(msg)

    publisher, raw_ok = BytesRefusingPublisher(), {}
    for text in ('a', 'b'):
        _publish(publisher, String, serialize_message(String(data=text)), raw_ok, '/t')
    assert [m.data for m in publisher.sent] == ['a', 'b'] and raw_ok == {'/t': False}


def test_play_command_gives_itself_the_large_image_dds_profile_unless_one_is_set_or_refused(monkeypatch, tmp_path):
    import anomaly_seg_ros.bags as bags
    from anomaly_seg_ros.bags import PlayResult
    from anomaly_seg_ros.ros.node_process import DDS_PROFILE_VARIABLES as variables

    for name in (*variables, 'ROS_DISTRO'):
        monkeypatch.delenv(name, raising=False)
    seen = []
    monkeypatch.setattr(bags, 'play_bag', lambda *a, **k: seen.append({n: os.environ.get(n) for n in variables})
                        or PlayResult())
    assert cli.main(['bag', 'play', str(tmp_path)]) == 0
    assert seen[-1]['FASTDDS_DEFAULT_PROFILES_FILE'].endswith('config/fastdds_large_images.xml')
    assert 'FASTDDS_DEFAULT_PROFILES_FILE' not in os.environ  # only while playing
    cli.main(['bag', 'play', str(tmp_path), '--no-dds-profile'])
    assert seen[-1] == {n: None for n in variables}
    monkeypatch.setenv('FASTRTPS_DEFAULT_PROFILES_FILE', '/mine.xml')
    cli.main(['bag', 'play', str(tmp_path)])
    assert seen[-1] == {'FASTDDS_DEFAULT_PROFILES_FILE': None, 'FASTRTPS_DEFAULT_PROFILES_FILE': '/mine.xml'}
