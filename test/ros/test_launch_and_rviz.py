"""The launch file against recording stand-ins of launch/launch_ros (every argument combination, RViz
present or not, without starting processes; test_launch_real.py runs it through the real libraries) and
the RViz view."""
from __future__ import annotations

import ast
import importlib.util
import sys
import types
from pathlib import Path

import pytest
import yaml

from anomaly_seg_ros.ros.outputs import OUTPUT_TOPICS

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILE = ROOT / 'launch' / 'anomaly_seg.launch.py'
RVIZ_FILE = ROOT / 'config' / 'anomaly_seg.rviz'
# What the launch file may use: all of it exists in ROS 2 Humble's launch and launch_ros.
HUMBLE_API = {
    'launch': {'LaunchDescription'},
    'launch.actions': {'DeclareLaunchArgument', 'LogInfo', 'OpaqueFunction'},
    'launch.substitutions': {'LaunchConfiguration', 'PathJoinSubstitution'},
    'launch_ros.actions': {'Node'},
    'launch_ros.substitutions': {'FindPackageShare'},
    'ament_index_python.packages': {'PackageNotFoundError', 'get_package_prefix'},
}
INSTALLED = {'rviz2'}  # what the stand-in ament index finds; tests change it


class _Recorded:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration(_Recorded):
    def perform(self, context):
        return context[self.args[0]]


@pytest.fixture
def launch_module(monkeypatch):
    """The launch file imported against recording stand-ins of launch and launch_ros."""
    not_found = type('PackageNotFoundError', (KeyError,), {})

    def get_package_prefix(package):
        if package not in INSTALLED:
            raise not_found(package)
        return f'/opt/ros/test/{package}'

    classes = {'LaunchConfiguration': _LaunchConfiguration, 'PackageNotFoundError': not_found,
               'get_package_prefix': get_package_prefix}
    for module_name, names in HUMBLE_API.items():
        module = types.ModuleType(module_name)
        for name in names:
            setattr(module, name, classes.get(name) or type(name, (_Recorded,), {}))
        monkeypatch.setitem(sys.modules, module_name, module)
    spec = importlib.util.spec_from_file_location('anomaly_seg_launch', LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_launch_file_imports_only_what_humble_has():
    for node in ast.walk(ast.parse(LAUNCH_FILE.read_text())):
        if isinstance(node, ast.ImportFrom):
            assert node.module in HUMBLE_API, node.module
            assert {a.name for a in node.names} <= HUMBLE_API[node.module], node.module
        if isinstance(node, ast.Import):
            assert [a.name for a in node.names] == ['os'], 'only the standard library\'s os is expected'


def _arguments(description):
    return {a.args[0]: a.kwargs for a in description.args[0] if type(a).__name__ == 'DeclareLaunchArgument'}


def _started(description, context):
    opaque = [a for a in description.args[0] if type(a).__name__ == 'OpaqueFunction'][0]
    return [node.kwargs for node in opaque.kwargs['function'](context)]


CONTEXT = {'image': '/front/image_raw', 'params_file': '/cfg/a.yaml', 'model_dir': '', 'backend': '', 'rviz': 'false',
           'rviz_config': '/share/anomaly_seg.rviz', 'dds_profile': '/share/fastdds_large_images.xml'}


def _node_action(description, context):
    (node,) = _started(description, context)
    return node


def test_launch_arguments_and_defaults(launch_module):
    arguments = _arguments(launch_module.generate_launch_description())
    assert set(arguments) == {'image', 'params_file', 'model_dir', 'backend', 'rviz', 'rviz_config', 'dds_profile'}
    assert arguments['image']['default_value'] == '/camera/image_raw'
    assert arguments['model_dir']['default_value'] == '' and arguments['backend']['default_value'] == ''
    assert all(kwargs.get('description') for kwargs in arguments.values())


def test_launch_starts_the_node_with_params_file_remappings_and_overrides(launch_module):
    description = launch_module.generate_launch_description()
    context = CONTEXT
    node = _node_action(description, context)
    assert (node['package'], node['executable'], node['name']) == ('anomaly_seg_ros', 'anomaly_seg_node',
                                                                    'anomaly_seg')
    assert node['parameters'] == ['/cfg/a.yaml']  # empty arguments leave the params file's values
    assert ('image', '/front/image_raw') in node['remappings']
    assert ('image/compressed', '/front/image_raw/compressed') in node['remappings']
    node = _node_action(description, {**context, 'model_dir': '/models/x', 'backend': 'tensorrt'})
    assert node['parameters'] == ['/cfg/a.yaml', {'model_dir': '/models/x', 'backend': 'tensorrt'}]


@pytest.mark.parametrize('distribution, variable', [('humble', 'FASTRTPS_DEFAULT_PROFILES_FILE'),
                                                    ('jazzy', 'FASTRTPS_DEFAULT_PROFILES_FILE'),
                                                    ('kilted', 'FASTDDS_DEFAULT_PROFILES_FILE')])
def test_node_and_rviz_get_the_large_image_dds_profile_in_the_variable_their_fast_dds_reads(
        launch_module, monkeypatch, distribution, variable):
    monkeypatch.setenv('ROS_DISTRO', distribution)
    description = launch_module.generate_launch_description()
    default = _arguments(description)['dds_profile']['default_value']
    assert default.args[0][1:] == ['config', 'fastdds_large_images.xml']
    assert (ROOT / 'config' / 'fastdds_large_images.xml').is_file()
    node, rviz = _started(description, {**CONTEXT, 'rviz': 'true'})
    # Only that one (Kilted warns about the older name), and with the shipped profile the variable that lets
    # rmw_fastrtps read its history memory policy.
    expected = {variable: CONTEXT['dds_profile'], 'RMW_FASTRTPS_USE_QOS_FROM_XML': '1'}
    assert node['additional_env'] == expected and rviz['additional_env'] == expected
    (node,) = _started(description, {**CONTEXT, 'dds_profile': '/robot/own_profile.xml'})
    assert node['additional_env'] == {variable: '/robot/own_profile.xml'}  # its QoS settings are the user's to enable
    assert rviz['executable'] == 'rviz2' and rviz['arguments'] == ['-d', CONTEXT['rviz_config']]


@pytest.mark.parametrize('keep', ['keep', ''])
def test_dds_profile_keep_leaves_the_users_own_profile(launch_module, keep):
    (node,) = _started(launch_module.generate_launch_description(), {**CONTEXT, 'dds_profile': keep})
    assert node['additional_env'] == {}


def test_rviz_requested_where_it_is_not_installed_warns_and_starts_the_node_alone(launch_module, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], 'INSTALLED', set())
    node, warning = launch_module._nodes({**CONTEXT, 'rviz': 'true'})
    assert node.kwargs['executable'] == 'anomaly_seg_node'
    assert type(warning).__name__ == 'LogInfo' and 'rviz2 is not installed' in warning.kwargs['msg']


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
