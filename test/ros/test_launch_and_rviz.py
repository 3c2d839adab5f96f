"""What the launch file may import (Humble's API; test_launch_real.py runs it through the real launch
libraries) and the RViz view it opens."""
from __future__ import annotations

import ast
from pathlib import Path

import yaml

from anomaly_seg_ros.ros.outputs import OUTPUT_TOPICS

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILE = ROOT / 'launch' / 'anomaly_seg.launch.py'
RVIZ_FILE = ROOT / 'config' / 'anomaly_seg.rviz'
# What the launch file may use: all of it exists in ROS 2 Humble's launch and launch_ros.
HUMBLE_API = {
    'launch': {'LaunchDescription'},
    'launch.actions': {'DeclareLaunchArgument', 'OpaqueFunction'},
    'launch.logging': {'get_logger'},
    'launch.substitutions': {'LaunchConfiguration', 'PathJoinSubstitution'},
    'launch_ros.actions': {'Node'},
    'launch_ros.substitutions': {'FindPackageShare'},
    'ament_index_python.packages': {'PackageNotFoundError', 'get_package_prefix'},
}


def test_launch_file_imports_only_what_humble_has():
    for node in ast.walk(ast.parse(LAUNCH_FILE.read_text())):
        if isinstance(node, ast.ImportFrom):
            assert node.module in HUMBLE_API, node.module
            assert {a.name for a in node.names} <= HUMBLE_API[node.module], node.module
        if isinstance(node, ast.Import):
            assert [a.name for a in node.names] == ['os'], 'only the standard library\'s os is expected'


def test_rviz_view_shows_camera_overlay_heatmap_and_semantic_topics():
    config = yaml.safe_load(RVIZ_FILE.read_text())
    displays = {d['Name']: d for d in config['Visualization Manager']['Displays']}
    topics = {name: d['Topic']['Value'] for name, d in displays.items()}
    assert topics == {'Camera': '/camera/image_raw', 'Overlay': '/anomaly_seg/overlay',
                      'Anomaly heatmap': '/anomaly_seg/anomaly_color', 'Semantic': '/anomaly_seg/semantic_color'}
    for name, topic in topics.items():
        if topic.startswith('/anomaly_seg/'):
            assert topic.rsplit('/', 1)[1] in OUTPUT_TOPICS
            assert OUTPUT_TOPICS[topic.rsplit('/', 1)[1]].encoding == 'rgb8'  # RViz shows colors as they are
            assert displays[name]['Topic']['Reliability Policy'] == 'Reliable'
    assert all(d['Class'] == 'rviz_default_plugins/Image' for d in displays.values())
