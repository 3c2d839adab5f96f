"""What the node's start-up line says about DDS (node_process.dds_summary; no rclpy involved)."""
from __future__ import annotations

import pytest

from anomaly_seg_ros.ros.node_process import dds_summary

PROFILE = '/opt/ros/ws/install/share/anomaly_seg_ros/config/fastdds_large_images.xml'


def test_another_rmw_is_named_without_a_fast_dds_profile():
    env = {'FASTRTPS_DEFAULT_PROFILES_FILE': PROFILE, 'RMW_FASTRTPS_USE_QOS_FROM_XML': '1'}
    assert dds_summary('rmw_cyclonedds_cpp', env) == 'rmw_cyclonedds_cpp (no Fast DDS profile)'


def test_fast_dds_without_a_profile_says_none():
    assert dds_summary('rmw_fastrtps_cpp', {'ROS_DISTRO': 'humble'}) == 'rmw_fastrtps_cpp, profile none'
    assert dds_summary('rmw_fastrtps_cpp', {'FASTRTPS_DEFAULT_PROFILES_FILE': ''}) == 'rmw_fastrtps_cpp, profile none'


@pytest.mark.parametrize('distribution, variable', [('humble', 'FASTRTPS_DEFAULT_PROFILES_FILE'),
                                                    ('jazzy', 'FASTRTPS_DEFAULT_PROFILES_FILE'),
                                                    ('kilted', 'FASTDDS_DEFAULT_PROFILES_FILE'),
                                                    ('kilted', 'FASTRTPS_DEFAULT_PROFILES_FILE'),
                                                    ('', 'FASTDDS_DEFAULT_PROFILES_FILE')])
def test_the_profile_in_effect_names_its_variable_and_whether_qos_comes_from_the_xml(distribution, variable):
    env = {'ROS_DISTRO': distribution, variable: PROFILE, 'RMW_FASTRTPS_USE_QOS_FROM_XML': '1'}
    assert dds_summary('rmw_fastrtps_cpp', env) == f'rmw_fastrtps_cpp, profile {PROFILE} ({variable}), QoS from XML on'
    env['RMW_FASTRTPS_USE_QOS_FROM_XML'] = '0'
    assert dds_summary('rmw_fastrtps_dynamic_cpp', env).endswith(f'({variable}), QoS from XML off')
    del env['RMW_FASTRTPS_USE_QOS_FROM_XML']
    assert dds_summary('rmw_fastrtps_cpp', env).endswith('QoS from XML off')


def test_the_newer_variable_is_not_in_effect_where_fast_dds_2_ignores_it():
    env = {'ROS_DISTRO': 'jazzy', 'FASTDDS_DEFAULT_PROFILES_FILE': PROFILE, 'RMW_FASTRTPS_USE_QOS_FROM_XML': '1'}
    assert dds_summary('rmw_fastrtps_cpp', env) == (
        'rmw_fastrtps_cpp, profile none (FASTDDS_DEFAULT_PROFILES_FILE is set, but this Fast DDS does not read it)')
    env['FASTRTPS_DEFAULT_PROFILES_FILE'] = '/elsewhere.xml'
    assert dds_summary('rmw_fastrtps_cpp', env).startswith(
        'rmw_fastrtps_cpp, profile /elsewhere.xml (FASTRTPS_DEFAULT_PROFILES_FILE)')


def test_the_process_environment_is_the_default(monkeypatch):
    monkeypatch.delenv('ROS_DISTRO', raising=False)
    monkeypatch.delenv('FASTRTPS_DEFAULT_PROFILES_FILE', raising=False)
    monkeypatch.setenv('FASTDDS_DEFAULT_PROFILES_FILE', PROFILE)
    monkeypatch.delenv('RMW_FASTRTPS_USE_QOS_FROM_XML', raising=False)
    assert dds_summary('rmw_fastrtps_cpp') == (
        f'rmw_fastrtps_cpp, profile {PROFILE} (FASTDDS_DEFAULT_PROFILES_FILE), QoS from XML off')
