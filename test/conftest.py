"""Fixtures shared by the whole suite. Area-specific fixtures live in test/<area>/conftest.py."""
from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
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


def write_object_bank(root: Path, categories: dict[str, int]) -> Path:
    """A bank of RGBA ellipse cutouts (alpha = the ellipse), ``count`` per category, with its manifest.json, in
    the layout of ../shared/data/coco_objects (manifest categories with spaces, folders with underscores)."""
    import cv2
    import numpy as np
    records = []
    rng = np.random.default_rng(5)
    for category, count in categories.items():
        folder = root / category.replace(' ', '_')
        folder.mkdir(parents=True)
        for k in range(count):
            h, w = int(rng.integers(20, 60)), int(rng.integers(20, 60))
            rgba = np.zeros((h, w, 4), np.uint8)
            cv2.ellipse(rgba, (w // 2, h // 2), (w // 2 - 1, h // 2 - 1), 0, 0, 360,
                        (int(rng.integers(255)), 200, 30, 255), -1)
            name = f'{category.replace(" ", "_")}/train2017_{k}.png'
            cv2.imwrite(str(root / name), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
            records.append({'file': name, 'category': category, 'image_licence': {'name': 'Attribution License'}})
    (root / 'manifest.json').write_text(json.dumps(records))
    return root


@pytest.fixture(scope='session')
def object_bank_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Training categories chair, cup; held-out horse, teddy bear; potted plant (excluded from both)."""
    return write_object_bank(tmp_path_factory.mktemp('objects'),
                             {'chair': 3, 'cup': 2, 'horse': 2, 'teddy bear': 2, 'potted plant': 2})


def pytest_configure(config: pytest.Config) -> None:
    # Two cores here; keep torch from oversubscribing when several tests spawn processes.
    os.environ.setdefault('OMP_NUM_THREADS', '2')
    # A shell starts background jobs (`make test &`, nohup) with SIGINT ignored, and children inherit that
    # through exec: the tests that stop the node, launch or the demo with Ctrl-C need it delivered.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


# -- pip's resolver for another platform, no install (the requirements tests) ------------------------
_NETWORK_TROUBLE = ('Could not fetch URL', 'Connection', 'Temporary failure', 'Max retries', 'timed out')


def pip_resolve(requirements: Sequence[str], python: str, machine: str, tmp_path: Path, what: str) -> list[dict]:
    """The metadata (name, version, requires_dist, ...) of every distribution pip would install for
    ``requirements`` (pip arguments: ``-r FILE`` or requirement strings) on manylinux ``machine`` with
    Python ``python``. Skips the test when the package index cannot be reached; fails it, naming ``what``,
    when the requirements do not resolve."""
    report = tmp_path / f'pip_report_{python}_{machine}.json'
    command = [sys.executable, '-m', 'pip', 'install', '--dry-run', '--quiet', '--ignore-installed',
               '--target', str(tmp_path / 'target'), '--report', str(report), '--python-version', python,
               '--only-binary=:all:', '--platform', f'manylinux2014_{machine}',
               '--platform', f'manylinux_2_28_{machine}', *requirements]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired:
        pytest.skip('the package index did not answer within 240 s')
    if result.returncode != 0:
        if any(text in result.stderr for text in _NETWORK_TROUBLE) and 'ResolutionImpossible' not in result.stderr:
            pytest.skip(f'package index unreachable: {result.stderr.strip().splitlines()[-1]}')
        pytest.fail(f'{what} do not resolve for Python {python} {machine}:\n{result.stderr[-2000:]}')
    return [item['metadata'] for item in json.loads(report.read_text())['install']]
