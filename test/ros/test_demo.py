"""`anomaly_seg demo`: the node as its own process, fed over ROS, everything written out."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from node_process import model_backend

from anomaly_seg_ros.cli import build_parser
from anomaly_seg_ros.demo import DemoError, DemoOptions, folder_source, run_demo, synthetic_source
from anomaly_seg_ros.demo.run import _domain_id
from anomaly_seg_ros.ros.node_process import DDS_PROFILE_VARIABLES

pytestmark = pytest.mark.ros


def test_demo_streams_synthetic_frames_and_writes_pictures_sheet_video_and_summary(model_dir, ros_domain_id,
                                                                                   tmp_path, capsys):
    out = tmp_path / 'demo_output'
    summary = run_demo(DemoOptions(source=synthetic_source(5, seed=1, width=160, height=80), out_dir=out,
                                   model_dir=model_dir, backend=model_backend(model_dir), rate_hz=0.0,
                                   progress=False))
    assert (summary.frames_sent, summary.frames_received, summary.frames_dropped) == (5, 5, 0)
    assert summary.domain_id == ros_domain_id  # the user's ROS_DOMAIN_ID wins
    assert set(summary.latency_ms) == {'median', 'p90', 'max'} and summary.output_rate_hz > 0
    assert summary.node['backend'] == model_backend(model_dir)
    for folder in ('camera', 'synthesis', 'anomaly_color', 'overlay', 'entropy', 'softmax_distance',
                   'perceptual_difference', 'dissimilarity'):
        assert sorted(p.name for p in (out / folder).iterdir()) == [f'{i:06d}.jpg' for i in range(5)], folder
    assert len(list((out / 'semantic_color').glob('*.png'))) == 5
    assert cv2.imread(str(out / 'overlay' / '000000.jpg')).shape == (80, 160, 3)
    sheet = cv2.imread(str(out / 'contact_sheet.png'))
    assert sheet is not None and sheet.shape[0] > sheet.shape[1] / 7  # 4 rows of 7 pictures
    capture = cv2.VideoCapture(str(out / 'demo.mp4'))
    assert capture.isOpened() and int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    saved = json.loads((out / 'summary.json').read_text())
    assert saved['frames_received'] == 5 and saved['video'].endswith('demo.mp4')
    printed = capsys.readouterr().out
    assert '5 frames sent' in printed and 'latency' in printed and 'contact_sheet.png' in printed


def test_demo_streams_an_image_folder_at_a_camera_rate(model_dir, ros_domain_id, tmp_path):
    images = tmp_path / 'images'
    images.mkdir()
    for i in range(6):
        cv2.imwrite(str(images / f'frame_{i}.png'), np.full((60, 100, 3), 40 * i, dtype=np.uint8))
    summary = run_demo(DemoOptions(source=folder_source(images), out_dir=tmp_path / 'out', model_dir=model_dir,
                                   backend=model_backend(model_dir), rate_hz=20.0, video=False, progress=False))
    assert summary.frames_sent == 6 and 1 <= summary.frames_received <= 6
    assert summary.frames_dropped == 6 - summary.frames_received
    assert summary.video is None and summary.video_note == 'not requested'
    assert {p.stem for p in (tmp_path / 'out' / 'overlay').iterdir()} <= {f'frame_{i}' for i in range(6)}


def test_a_node_that_cannot_start_is_reported_in_one_line(ros_domain_id, tmp_path):
    bad = tmp_path / 'no_such_model'
    with pytest.raises(DemoError, match=r'exited with status 2 during start-up: .*does not exist'):
        run_demo(DemoOptions(source=synthetic_source(2, width=64, height=32), out_dir=tmp_path / 'out',
                             model_dir=bad, progress=False, startup_timeout_s=60))


def test_the_demo_picks_its_own_ros_domain_unless_one_is_set(monkeypatch):
    monkeypatch.delenv('ROS_DOMAIN_ID', raising=False)
    assert all(1 <= _domain_id() <= 101 for _ in range(20))
    monkeypatch.setenv('ROS_DOMAIN_ID', '42')
    assert _domain_id() == 42


def test_ctrl_c_stops_the_stream_and_the_node_process(model_dir, ros_domain_id, tmp_path):
    out = tmp_path / 'out'
    demo = subprocess.Popen([sys.executable, '-m', 'anomaly_seg_ros.cli', 'demo', '--models', str(model_dir),
                             '--backend', model_backend(model_dir), '--frames', '60', '--size', '128x64',
                             '--rate', '5', '--out', str(out), '--no-progress'],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not list(out.glob('overlay/*.jpg')):  # streaming has begun
            assert demo.poll() is None, demo.stdout.read()
            assert time.monotonic() < deadline, 'the demo never produced an output'
            time.sleep(0.2)
        demo.send_signal(signal.SIGINT)
        assert demo.wait(15) == 130
        assert 'interrupted' in demo.stdout.read()
        with pytest.raises(ProcessLookupError):
            os.killpg(demo.pid, 0)  # the node process (same group) is gone too
        assert json.loads((out / 'summary.json').read_text())['interrupted'] is True
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)


def test_demo_command_line_defaults():
    args = build_parser().parse_args(['demo'])
    assert (args.frames, args.rate, args.size, args.out.name, args.images, args.bag) == \
        (None, 10.0, (512, 256), 'demo_output', None, None)
    with pytest.raises(SystemExit):
        build_parser().parse_args(['demo', '--images', 'a', '--bag', 'b'])


def test_the_demo_runs_the_demo_models_on_synthetic_scenes_and_the_default_model_on_real_frames(monkeypatch,
                                                                                                tmp_path):
    import anomaly_seg_ros.demo as demo
    from anomaly_seg_ros.resources import DEFAULT_MODEL_NAME, DEMO_MODEL_NAME

    chosen = []
    monkeypatch.setattr(demo, 'run_demo', lambda options: chosen.append(options.model_dir))
    (tmp_path / 'frame.png').write_bytes(b'')
    parser = build_parser()
    for argv in (['demo'], ['demo', '--images', str(tmp_path)]):
        args = parser.parse_args(argv)
        args.run(args)
    synthetic, images = chosen
    assert synthetic.name == DEMO_MODEL_NAME
    # run_demo resolves None to the node's own default model, like the node with an empty model_dir.
    assert images is None and DEFAULT_MODEL_NAME != DEMO_MODEL_NAME


def test_the_demo_gives_its_processes_the_large_image_dds_profile_unless_one_is_set(monkeypatch):
    from anomaly_seg_ros.demo.run import _ros_env

    for name in (*DDS_PROFILE_VARIABLES, 'ROS_DISTRO', 'ROS_LOCALHOST_ONLY', 'ROS_AUTOMATIC_DISCOVERY_RANGE'):
        monkeypatch.delenv(name, raising=False)
    env = _ros_env(7)
    assert env['ROS_DOMAIN_ID'] == '7' and env['ROS_LOCALHOST_ONLY'] == '1'
    assert env['FASTDDS_DEFAULT_PROFILES_FILE'].endswith('config/fastdds_large_images.xml')
    monkeypatch.setenv('ROS_DISTRO', 'humble')  # Fast DDS 2.x reads the older variable
    assert 'FASTRTPS_DEFAULT_PROFILES_FILE' in _ros_env(7)
    monkeypatch.setenv('FASTRTPS_DEFAULT_PROFILES_FILE', '/mine.xml')
    assert not {'FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE'} & set(_ros_env(7))
