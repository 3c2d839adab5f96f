"""Start the anomaly segmentation node (and optionally RViz).

    ros2 launch anomaly_seg_ros anomaly_seg.launch.py image:=/camera/image_raw
    ros2 launch anomaly_seg_ros anomaly_seg.launch.py model_dir:=/path/to/model backend:=tensorrt rviz:=true

Arguments: image (camera topic; with input_transport compressed, <image>/compressed is used),
params_file (default: the package's config/anomaly_seg.yaml), model_dir and backend (empty: the
params file's values), rviz (true: also RViz with rviz_config, default the package's
config/anomaly_seg.rviz; where rviz2 is not installed, a warning and the node alone), dds_profile
(the Fast DDS profile for the node and RViz, default the package's config/fastdds_large_images.xml,
without which Fast DDS loses multi-megabyte images between processes; `keep`: leave the
environment's profile as it is). The profile goes into the one variable the running distribution's
Fast DDS reads; with the shipped profile RMW_FASTRTPS_USE_QOS_FROM_XML=1 is set too, so its DYNAMIC
history memory gives a large frame's memory back.
Python launch format, as ROS 2 Humble reads it.
"""
# ruff: noqa: I001 - ruff takes `launch` for this folder (first party); it is ROS 2's launch package
import os

from ament_index_python.packages import PackageNotFoundError, get_package_prefix
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.logging import get_logger
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'anomaly_seg_ros'
# Fast DDS 2 (Humble, Iron, Jazzy) reads FASTRTPS_..., Fast DDS 3 (Kilted and later) FASTDDS_... and
# warns that the older name is deprecated when it is set.
FAST_DDS_2_DISTRIBUTIONS = ('humble', 'iron', 'jazzy')
# ros2 launch's argument parser refuses `name:=` with nothing after it, so "keep yours" needs a word.
KEEP_PROFILE = 'keep'
SHIPPED_PROFILE = 'fastdds_large_images.xml'
# rmw_fastrtps reads a profile's history memory policy only with this set: the shipped profile's DYNAMIC
# policy frees a large frame's samples once newer frames replace them (another profile may not set it).
QOS_FROM_XML = {'RMW_FASTRTPS_USE_QOS_FROM_XML': '1'}


def _profile_variable():
    if os.environ.get('ROS_DISTRO', '').lower() in FAST_DDS_2_DISTRIBUTIONS:
        return 'FASTRTPS_DEFAULT_PROFILES_FILE'
    return 'FASTDDS_DEFAULT_PROFILES_FILE'


def _installed(package):
    try:
        get_package_prefix(package)
    except PackageNotFoundError:
        return False
    return True


def _nodes(context, *args, **kwargs):
    image = LaunchConfiguration('image').perform(context)
    overrides = {}
    for name in ('model_dir', 'backend'):
        value = LaunchConfiguration(name).perform(context)
        if value:
            overrides[name] = value
    parameters = [LaunchConfiguration('params_file').perform(context)]
    if overrides:
        parameters.append(overrides)
    profile = LaunchConfiguration('dds_profile').perform(context)
    environment = {_profile_variable(): profile} if profile not in ('', KEEP_PROFILE) else {}
    if environment and os.path.basename(profile) == SHIPPED_PROFILE:
        environment.update(QOS_FROM_XML)
    nodes = [Node(
        package=PACKAGE,
        executable='anomaly_seg_node',
        name='anomaly_seg',
        parameters=parameters,
        remappings=[('image', image), ('image/compressed', image + '/compressed')],
        output='screen',
        emulate_tty=True,
        additional_env=environment,
    )]
    if LaunchConfiguration('rviz').perform(context).lower() in ('true', '1'):
        if not _installed('rviz2'):
            # Warn and go on: failing here would stop launch after the node started, leaving it orphaned.
            # LogInfo has no level (launch's Log action is newer than Humble): launch's user logger, as LogInfo.
            get_logger('launch.user').warning('rviz:=true but rviz2 is not installed (sudo apt install '
                                              'ros-$ROS_DISTRO-rviz2); starting the node without RViz')
            return nodes
        nodes.append(Node(
            package='rviz2',
            executable='rviz2',
            name='rviz2',
            arguments=['-d', LaunchConfiguration('rviz_config').perform(context)],
            output='screen',
            additional_env=environment,
        ))
    return nodes


def generate_launch_description():
    share = FindPackageShare(PACKAGE)
    return LaunchDescription([
        DeclareLaunchArgument('image', default_value='/camera/image_raw',
                              description='camera image topic (sensor_msgs/Image)'),
        DeclareLaunchArgument('params_file', default_value=PathJoinSubstitution([share, 'config', 'anomaly_seg.yaml']),
                              description='node parameters (YAML, key anomaly_seg: ros__parameters:)'),
        DeclareLaunchArgument('model_dir', default_value='',
                              description='model directory; empty: the params file value (shipped models)'),
        DeclareLaunchArgument('backend', default_value='',
                              description='onnxruntime, tensorrt or torch; empty: the params file value'),
        DeclareLaunchArgument('rviz', default_value='false', description='also start RViz with the shipped view'),
        DeclareLaunchArgument('rviz_config', default_value=PathJoinSubstitution([share, 'config', 'anomaly_seg.rviz']),
                              description='RViz view file'),
        DeclareLaunchArgument('dds_profile',
                              default_value=PathJoinSubstitution([share, 'config', 'fastdds_large_images.xml']),
                              description='Fast DDS profile file for the node and RViz (large images); '
                                          f'{KEEP_PROFILE}: keep the environment\'s'),
        OpaqueFunction(function=_nodes),
    ])
