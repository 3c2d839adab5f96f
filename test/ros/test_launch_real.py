"""launch/anomaly_seg.launch.py run by the real launch libraries of Humble and Jazzy.

The libraries are ../shared/vendor/ros2_launch/<distribution> (pure Python, unchanged; no wheels
exist); the package sits in an ament prefix laid out as colcon installs it (share files, the ament
index marker, lib/anomaly_seg_ros/anomaly_seg_node), so `FindPackageShare`, `launch_ros` Node and
`ros2launch`'s file lookup work as on a robot. Each test launches as `ros2 launch` does (a process:
test/ros/launch_runner.py) and watches the node from a probe on the test's ROS domain.
"""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from ..conftest import DEMO_MODELS, REPO_ROOT, SHARED_DATA

pytestmark = pytest.mark.ros

HERE = Path(__file__).resolve().parent
VENDORED_LAUNCH = SHARED_DATA.parent / 'vendor' / 'ros2_launch'
DISTRIBUTIONS = ('humble', 'jazzy')
STARTUP_S = 90.0


@pytest.fixture(scope='module')
def ament_prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An install prefix with the package as `colcon build --symlink-install` lays it out (setup.py's data
    files linked one by one; ros2launch's file search does not enter linked folders)."""
    prefix = tmp_path_factory.mktemp('install')
    share = prefix / 'share' / 'anomaly_seg_ros'
    for pattern in ('launch/*.launch.py', 'config/*.yaml', 'config/*.rviz', 'config/*.xml', 'package.xml'):
        for source in REPO_ROOT.glob(pattern):
            target = share / source.relative_to(REPO_ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source)
    (share / 'models').symlink_to(REPO_ROOT / 'models')  # read by path, never searched
    index = prefix / 'share' / 'ament_index' / 'resource_index' / 'packages'
    index.mkdir(parents=True)
    (index / 'anomaly_seg_ros').touch()
    executable = prefix / 'lib' / 'anomaly_seg_ros' / 'anomaly_seg_node'
    executable.parent.mkdir(parents=True)
    executable.write_text(f'#!/bin/sh\nexec {sys.executable} -m anomaly_seg_ros.ros.node "$@"\n')
    executable.chmod(executable.stat().st_mode | stat.S_IXUSR)
    return prefix


@pytest.fixture(scope='module')
def rviz_prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prefix with a stand-in rviz2 executable that writes its arguments and DDS variables to
    $FAKE_RVIZ_RECORD and waits for a signal (no RViz here; the launch side is what is tested)."""
    prefix = tmp_path_factory.mktemp('rviz_install')
    index = prefix / 'share' / 'ament_index' / 'resource_index' / 'packages'
    index.mkdir(parents=True)
    (index / 'rviz2').touch()
    executable = prefix / 'lib' / 'rviz2' / 'rviz2'
    executable.parent.mkdir(parents=True)
    executable.write_text(f"""#!{sys.executable}
import json, os, signal, sys
keys = [k for k in os.environ if k.endswith('_DEFAULT_PROFILES_FILE') or k.startswith('RMW_FASTRTPS')]
with open(os.environ['FAKE_RVIZ_RECORD'], 'w') as record:
    json.dump({{'argv': sys.argv[1:], 'env': {{k: os.environ[k] for k in keys}}}}, record)
signal.sigwait([signal.SIGINT, signal.SIGTERM])
""")
    executable.chmod(executable.stat().st_mode | stat.S_IXUSR)
    return prefix


@pytest.fixture(params=DISTRIBUTIONS)
def launch(request: pytest.FixtureRequest, ament_prefix: Path, ros_domain_id: int,
           tmp_path: Path) -> Iterator:
    """``launch(*arguments, env=None)``: `ros2 launch anomaly_seg_ros anomaly_seg.launch.py ARGS` with one
    distribution's launch libraries, as its own session; killed with all it started at the end."""
    libraries = VENDORED_LAUNCH / request.param
    if not libraries.is_dir():
        pytest.skip(f'the vendored launch libraries are not present at {libraries} (../shared is absent)')
    pytest.importorskip('osrf_pycommon', reason='launch needs osrf-pycommon (requirements/dev.txt)')
    started: list[subprocess.Popen] = []

    def start(*arguments: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        variables = {**os.environ, **(env or {})}
        for name in ('ROS_DISTRO', 'FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE',
                     'RMW_FASTRTPS_USE_QOS_FROM_XML'):
            if name not in (env or {}):
                variables.pop(name, None)  # each test states the environment the launch file reads
        variables['PYTHONPATH'] = os.pathsep.join(
            [str(libraries), str(HERE / 'launch_stubs'), str(REPO_ROOT), variables.get('PYTHONPATH', '')])
        variables['PYTHONDONTWRITEBYTECODE'] = '1'  # the vendored folder is read-only
        variables['AMENT_PREFIX_PATH'] = os.pathsep.join([str(ament_prefix), variables.get('AMENT_PREFIX_PATH', '')])
        log = (tmp_path / f'launch{len(started)}.log').open('w')
        process = subprocess.Popen([sys.executable, str(HERE / 'launch_runner.py'), *arguments], env=variables,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        process.log_path = log.name
        started.append(process)
        return process

    yield start
    for process in started:
        _kill_session(process.pid)
        process.wait(timeout=10)


def _session_processes(session: int) -> list[int]:
    """Processes of the session ``session`` (launch, the node and anything they started)."""
    found = []
    for entry in Path('/proc').iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / 'stat').read_text().rsplit(')', 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == session and fields[0] != 'Z':
                found.append(int(entry.name))
    return found


def _kill_session(session: int) -> None:
    for pid in _session_processes(session):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _log(process: subprocess.Popen) -> str:
    return Path(process.log_path).read_text()


def _node_facts(probe, process: subprocess.Popen, topic: str) -> dict[str, str]:
    """Wait for the launched node to subscribe to ``topic`` and report; its diagnostics' static facts."""
    publisher = probe.publisher(topic)
    if not probe.spin_until(lambda: publisher.get_subscription_count() > 0 or process.poll() is not None,
                            STARTUP_S) or process.poll() is not None:
        raise AssertionError(f'no node subscribed to {topic}; launch output:\n{_log(process)}')
    facts = probe.wait_for_diagnostics(lambda values: 'model_dir' in values, timeout=30)
    assert facts, f'no diagnostics from the node; launch output:\n{_log(process)}'
    return facts


def _finished(process: subprocess.Popen) -> str:
    assert process.wait(timeout=60) == 0, _log(process)
    return _log(process)


def test_arguments_are_listed_with_descriptions_and_defaults(launch):
    output = _finished(launch('--show-args'))
    for name in ('image', 'params_file', 'model_dir', 'backend', 'rviz', 'rviz_config', 'dds_profile'):
        assert f"'{name}':" in output, output
    assert "(default: '/camera/image_raw')" in output and "(default: 'false')" in output
    assert 'keep the environment' in output


def test_default_arguments_start_the_shipped_model_with_the_profile_and_sigint_ends_everything(
        launch, probe, ament_prefix):
    process = launch()
    facts = _node_facts(probe, process, '/camera/image_raw')
    share = ament_prefix / 'share' / 'anomaly_seg_ros'
    assert facts['model_dir'] == str(share / 'models' / 'cityscapes_camvid')
    assert facts['input_topic'] == '/camera/image_raw (raw)'
    assert facts['dds_profile'] == str(share / 'config' / 'fastdds_large_images.xml')
    assert facts['torch_imported'] == 'False'

    process.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal of `ros2 launch` sends to launch
    assert process.wait(timeout=30) == 0, _log(process)
    deadline = time.monotonic() + 5
    while _session_processes(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _session_processes(process.pid) == [], 'processes left after launch ended'
    output = _log(process)
    assert 'history memory' not in output  # the launch file set RMW_FASTRTPS_USE_QOS_FROM_XML with the profile
    if 'DDS rmw_fastrtps' in output:  # the start-up line names the profile in effect (ROS_DISTRO unset: FASTDDS_)
        assert (f"profile {share / 'config' / 'fastdds_large_images.xml'} (FASTDDS_DEFAULT_PROFILES_FILE), "
                'QoS from XML on') in output, output
    else:
        assert 'DDS rmw_' in output, output
    assert 'Traceback' not in output, output


def test_remapped_image_model_dir_and_backend_reach_the_node_and_missing_rviz_only_warns(launch, probe):
    process = launch('image:=/front/image_raw', f'model_dir:={DEMO_MODELS}', 'backend:=onnxruntime', 'rviz:=true')
    facts = _node_facts(probe, process, '/front/image_raw')
    assert facts['model_dir'] == str(DEMO_MODELS) and facts['backend'] == 'onnxruntime'
    assert facts['input_topic'] == '/front/image_raw (raw)'
    (warning,) = [line for line in _log(process).splitlines() if 'rviz2 is not installed' in line]
    assert warning.startswith('[WARNING] [launch.user]:'), warning  # a warning, not INFO

    from probe import image_msg, stamp_ns

    probe.subscribe(['anomaly'])
    frame = np.zeros((96, 160, 3), np.uint8)
    assert probe.send_until(lambda: image_msg(frame, probe.now_ns()), lambda: bool(probe.messages('anomaly')),
                            timeout=30, topic='/front/image_raw'), _log(process)
    assert stamp_ns(probe.messages('anomaly')[0]) > 0 and process.poll() is None


@pytest.mark.parametrize('distribution, variable', [('humble', 'FASTRTPS_DEFAULT_PROFILES_FILE'),
                                                    ('jazzy', 'FASTRTPS_DEFAULT_PROFILES_FILE'),
                                                    ('kilted', 'FASTDDS_DEFAULT_PROFILES_FILE')])
def test_rviz_gets_the_view_and_the_node_and_rviz_the_profile_in_the_variable_their_fast_dds_reads(
        launch, probe, ament_prefix, rviz_prefix, tmp_path, distribution, variable):
    record = tmp_path / 'rviz.json'
    paths = os.pathsep.join([str(rviz_prefix), os.environ.get('AMENT_PREFIX_PATH', '')])
    process = launch('rviz:=true', f'model_dir:={DEMO_MODELS}',
                     env={'ROS_DISTRO': distribution, 'AMENT_PREFIX_PATH': paths, 'FAKE_RVIZ_RECORD': str(record)})
    facts = _node_facts(probe, process, '/camera/image_raw')
    assert probe.spin_until(record.is_file, 30), _log(process)
    rviz = json.loads(record.read_text())
    share = ament_prefix / 'share' / 'anomaly_seg_ros'
    profile = str(share / 'config' / 'fastdds_large_images.xml')
    assert rviz['argv'][:2] == ['-d', str(share / 'config' / 'anomaly_seg.rviz')]
    # Only that variable (Kilted warns about the older name), and the one that lets rmw_fastrtps read the
    # shipped profile's history memory policy.
    assert rviz['env'] == {variable: profile, 'RMW_FASTRTPS_USE_QOS_FROM_XML': '1'}
    assert facts['dds_profile'] == profile
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0 and _session_processes(process.pid) == [], _log(process)


def test_a_profile_of_the_users_is_given_without_enabling_its_qos_settings(launch, probe, rviz_prefix, tmp_path):
    record, own_profile = tmp_path / 'rviz.json', tmp_path / 'own_profile.xml'
    own_profile.write_text((REPO_ROOT / 'config' / 'fastdds_large_images.xml').read_text())
    paths = os.pathsep.join([str(rviz_prefix), os.environ.get('AMENT_PREFIX_PATH', '')])
    process = launch('rviz:=true', f'model_dir:={DEMO_MODELS}', f'dds_profile:={own_profile}',
                     env={'AMENT_PREFIX_PATH': paths, 'FAKE_RVIZ_RECORD': str(record)})
    assert _node_facts(probe, process, '/camera/image_raw')['dds_profile'] == str(own_profile)
    assert probe.spin_until(record.is_file, 30), _log(process)
    # Its history memory and publish mode are the user's to enable (another profile may not set them).
    assert json.loads(record.read_text())['env'] == {'FASTDDS_DEFAULT_PROFILES_FILE': str(own_profile)}


def test_params_file_is_read_and_dds_profile_keep_leaves_the_users_profile(launch, probe, tmp_path):
    parameters = yaml.safe_load((REPO_ROOT / 'config' / 'anomaly_seg.yaml').read_text())
    parameters['anomaly_seg']['ros__parameters'].update(model_dir=str(DEMO_MODELS), colormap='viridis')
    params_file = tmp_path / 'robot.yaml'
    params_file.write_text(yaml.safe_dump(parameters))
    own_profile = tmp_path / 'own_profile.xml'
    own_profile.write_text((REPO_ROOT / 'config' / 'fastdds_large_images.xml').read_text())
    process = launch(f'params_file:={params_file}', 'dds_profile:=keep',
                     env={'FASTDDS_DEFAULT_PROFILES_FILE': str(own_profile)})
    facts = _node_facts(probe, process, '/camera/image_raw')
    assert facts['model_dir'] == str(DEMO_MODELS) and facts['colormap'] == 'viridis'
    assert facts['dds_profile'] == str(own_profile)
