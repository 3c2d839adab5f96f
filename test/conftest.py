"""Fixtures shared by the whole suite. Area-specific fixtures live in test/<area>/conftest.py."""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from anomaly_seg_ros.ros.node_process import ros_environment

REPO_ROOT = Path(__file__).resolve().parents[1]
# The real datasets beside the checkout; a clone elsewhere points ANOMALY_SEG_SHARED_DATA at them.
SHARED_DATA = Path(os.environ.get('ANOMALY_SEG_SHARED_DATA') or REPO_ROOT.parent / 'shared' / 'data')
DEMO_MODELS = REPO_ROOT / 'models' / 'demo'

# Each ROS test gets its own DDS domain so parallel runs (and other sessions) never cross-talk.
# Domain ids 0..101 are valid for Fast DDS with default ports; start from a pid-derived offset.
_domain_ids = itertools.count((os.getpid() % 50) + 1)


@pytest.fixture
def ros_domain_id(monkeypatch: pytest.MonkeyPatch) -> int:
    """A fresh ROS_DOMAIN_ID, set in this process's environment (and inherited by children)."""
    domain = next(_domain_ids) % 100 + 1
    for name, value in ros_environment(domain, dds_profile=False).items():
        monkeypatch.setenv(name, value)
    return domain


@pytest.fixture(scope='session')
def shared_data() -> Path:
    """../shared/data (CamVid, Road Anomaly); tests that need it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f'real data not present at {SHARED_DATA} (set ANOMALY_SEG_SHARED_DATA to its folder)')
    return SHARED_DATA


def pytest_configure(config: pytest.Config) -> None:
    # Two cores here; keep torch from oversubscribing when several tests spawn processes.
    os.environ.setdefault('OMP_NUM_THREADS', '2')
