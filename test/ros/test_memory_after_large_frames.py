"""After a large frame the node gives its memory back (issue 16): the heap trim rule, the DDS profile's
history memory, and the node measured as a process."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest

from anomaly_seg_ros.ros.node_process import QOS_FROM_XML_VARIABLES, dds_profile_environment
from anomaly_seg_ros.runtime.host_memory import HeapTrimmer, trim_heap

from ..conftest import DEMO_MODELS, REPO_ROOT


def test_the_heap_is_trimmed_after_a_frame_smaller_than_the_one_before_only():
    calls = []
    trimmer = HeapTrimmer(trim=lambda: calls.append(1))
    steady = [trimmer.frame_done(640 * 480) for _ in range(5)]
    grown = trimmer.frame_done(4096 * 2160)
    shrunk = trimmer.frame_done(640 * 480)
    after = [trimmer.frame_done(640 * 480) for _ in range(3)]
    assert steady == [False] * 5 and not grown and shrunk and after == [False] * 3
    assert len(calls) == trimmer.trims == 1


def test_the_heap_trim_runs_on_this_c_library():
    assert trim_heap()  # glibc here; the node runs on glibc systems (Ubuntu, JetPack)


def test_the_shipped_profile_frees_samples_and_its_environment_lets_rmw_read_that():
    root = ElementTree.parse(REPO_ROOT / 'config' / 'fastdds_large_images.xml').getroot()
    namespace = {'dds': 'http://www.eprosima.com'}
    for kind in ('data_writer', 'data_reader'):
        (profile,) = root.findall(f'dds:profiles/dds:{kind}', namespace)
        assert profile.get('is_default_profile') == 'true'
        assert profile.findtext('dds:historyMemoryPolicy', namespaces=namespace) == 'DYNAMIC'
    assert QOS_FROM_XML_VARIABLES == {'RMW_FASTRTPS_USE_QOS_FROM_XML': '1'}
    environment = dds_profile_environment()
    assert environment and environment.items() >= QOS_FROM_XML_VARIABLES.items()


@pytest.mark.ros
def test_after_a_large_frame_the_node_is_back_near_its_steady_memory(ros_domain_id, tmp_path):
    """`anomaly_seg bench --memory` as its own process (Fast DDS reads the large-image profile once per
    process, so this one's earlier participants could not send the frames). Without the profile's DYNAMIC
    history memory the node here stayed 105-124 MiB above steady."""
    report, plot = tmp_path / 'memory.json', tmp_path / 'rss.png'
    command = [sys.executable, '-m', 'anomaly_seg_ros.cli', 'bench', '--memory', '--models', str(DEMO_MODELS),
               '--normal-size', '640x480', '--large-size', '2560x1440', '--steady-frames', '4',
               '--recovery-frames', '3', '--limit', '50', '--domain-id', str(ros_domain_id),
               '--json', str(report), '--plot', str(plot)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'steady RSS with 640x480 frames' in result.stdout and 'PASS' in result.stdout
    figures = json.loads(report.read_text())
    assert figures['large_peak_mb'] > figures['steady_mb'] + 50  # the large frame did cost memory
    assert figures['passed'] and figures['recovery_mb'][-1] - figures['steady_mb'] <= 50
    assert plot.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
