"""Start the anomaly segmentation node (and optionally RViz).

    ros2 launch anomaly_seg_ros anomaly_seg.launch.py image:=/camera/image_raw
    ros2 launch anomaly_seg_ros anomaly_seg.launch.py model_dir:=/path/to/model backend:=tensorrt rviz:=true

Arguments: image (camera topic; with input_transport compressed, <image>/compressed is used),
params_file (default: the package's config/anomaly_seg.yaml), model_dir and backend (empty: the
params file's values), rviz (true: also RViz with rviz_config, default the package's
config/anomaly_seg.rviz), dds_profile (the Fast DDS profile for the node and RViz, default the
package's config/fastdds_large_images.xml, without which Fast DDS loses multi-megabyte images
between processes; empty: leave the environment as it is).
Python launch format, as ROS 2 Humble reads it.
"""
# ruff: noqa: I001 - ruff takes `launch` for this folder (first party); it is ROS 2's launch package
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'anomaly_seg_ros'
# Fast DDS 3 (Kilted and later) reads the first, Fast DDS 2 (Humble, Jazzy) the second.
DDS_PROFILE_VARIABLES = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')


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
    environment = {name: profile for name in DDS_PROFILE_VARIABLES} if profile else {}
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
                                          'empty: keep the environment\'s'),
        OpaqueFunction(function=_nodes),
    ])
