"""Where the shipped files are: the default and demo models and the default configuration.

Looked up in this order: the package's share directory under colcon/ament
(``share/anomaly_seg_ros``), the same directory under a pip install prefix, and the source
checkout (an editable install or running from the repository).
"""
from __future__ import annotations

import sys
from pathlib import Path

from .errors import ModelError

__all__ = ['DEFAULT_MODEL_NAME', 'DEMO_MODEL_NAME', 'default_config_file', 'default_model_dir', 'share_directories']

PACKAGE = 'anomaly_seg_ros'
# The node's, eval's and bench's model: Cityscapes classes, trained further on real CamVid frames.
DEFAULT_MODEL_NAME = 'cityscapes_camvid'
# The synthetic-scene model of `anomaly_seg demo` and CI (small, made from the project's own generator).
DEMO_MODEL_NAME = 'demo'


def share_directories() -> list[Path]:
    """Candidate share directories, most specific first."""
    candidates: list[Path] = []
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
        try:
            candidates.append(Path(get_package_share_directory(PACKAGE)))
        except (PackageNotFoundError, OSError):  # OSError: AMENT_PREFIX_PATH unset (no ROS sourced)
            pass
    except ImportError:
        pass
    candidates.append(Path(sys.prefix) / 'share' / PACKAGE)
    candidates.append(Path(__file__).resolve().parents[1])  # the source checkout
    return candidates


def default_model_dir(name: str = DEFAULT_MODEL_NAME) -> Path:
    """The shipped model directory ``models/<name>``; raises ModelError when none is installed."""
    for share in share_directories():
        candidate = share / 'models' / name
        if (candidate / 'model.yaml').is_file():
            return candidate
    searched = ', '.join(str(s / 'models' / name) for s in share_directories())
    raise ModelError(f'no shipped model {name!r} found (searched {searched}); pass a model directory '
                     '(parameter model_dir / --models) or reinstall the package')


def default_config_file() -> Path:
    """config/anomaly_seg.yaml of the installed package or checkout."""
    for share in share_directories():
        candidate = share / 'config' / 'anomaly_seg.yaml'
        if candidate.is_file():
            return candidate
    raise FileNotFoundError('config/anomaly_seg.yaml not found in any share directory')
