"""requirements/robot.txt resolves where robots are (Python 3.10 and 3.12, x86_64 and aarch64) without
numpy 2 or a pip OpenCV over the distribution's. Uses pip's resolver against the package index, no install."""
from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import pip_resolve

ROOT = Path(__file__).resolve().parents[1]
# (Python, the distribution's numpy): Ubuntu 22.04 (Humble, JetPack 6) and 24.04 (Jazzy, Kilted).
DISTRIBUTIONS = [('3.10', '1.21.5'), ('3.12', '1.26.4')]


def _resolve(python: str, machine: str, tmp_path: Path) -> list[tuple[str, str]]:
    metadata = pip_resolve(['-r', str(ROOT / 'requirements' / 'robot.txt')], python, machine, tmp_path,
                       'robot requirements')
    return [(item['name'].lower(), item['version']) for item in metadata]


@pytest.mark.parametrize('machine', ['x86_64', 'aarch64'])
@pytest.mark.parametrize('python, distribution_numpy', DISTRIBUTIONS)
def test_robot_requirements_resolve_without_numpy_2_or_a_pip_opencv(python, distribution_numpy, machine, tmp_path):
    installed = dict(_resolve(python, machine, tmp_path))
    assert 'onnxruntime' in installed and 'rosbags' in installed
    assert not any(name.startswith('opencv') for name in installed)
    assert int(installed.get('numpy', distribution_numpy).split('.')[0]) == 1


ROS_PACKAGES = {'rclpy', 'rcl_interfaces', 'ament_index_python', 'sensor_msgs', 'std_msgs', 'diagnostic_msgs',
                'cv_bridge', 'launch', 'launch_ros', 'builtin_interfaces', 'ros2launch'}


def _declared(*tags: str) -> set[str]:
    import xml.etree.ElementTree as ET

    return {e.text for e in ET.parse(ROOT / 'package.xml').getroot() if e.tag in tags}


def _ros_packages_imported(paths) -> set[str]:
    import re

    pattern = re.compile(r'^\s*(?:from|import) (\w+)|importorskip\(\'(\w+)', re.MULTILINE)
    return {name for path in paths for match in pattern.findall(path.read_text()) for name in match} & ROS_PACKAGES


def test_package_xml_declares_every_ros_package_the_code_imports():
    imported = _ros_packages_imported([*(ROOT / 'anomaly_seg_ros').rglob('*.py'), *(ROOT / 'launch').glob('*.py')])
    assert imported - _declared('exec_depend', 'depend') == set()


def test_package_xml_declares_every_ros_package_the_tests_import():
    # colcon test on a robot: what only the tests use (ros2launch runs the launch file) is a test_depend.
    imported = _ros_packages_imported((ROOT / 'test').rglob('*.py'))
    assert {'rclpy', 'ros2launch'} <= imported  # the scan sees the tests' imports
    assert imported - _declared('exec_depend', 'depend', 'test_depend') == set()
