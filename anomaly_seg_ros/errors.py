"""The package's own exceptions for expected failures.

Each message says what went wrong, names the file involved and says what to do. The CLI and the
node catch :class:`AnomalySegError` once at the top and print it as one line, without a traceback.
"""
from __future__ import annotations

__all__ = [
    'AnomalySegError',
    'BackendError',
    'DatasetError',
    'EngineMismatchError',
    'ImageConversionError',
    'ModelError',
]


class AnomalySegError(Exception):
    """Base class of all expected errors of anomaly_seg_ros."""


class ModelError(AnomalySegError):
    """A model directory, its metadata or one of its files is missing, corrupt or inconsistent."""


class EngineMismatchError(ModelError):
    """A TensorRT engine was built for another TensorRT version or GPU; it must be rebuilt."""


class BackendError(AnomalySegError):
    """A runtime backend is unavailable (library missing, no GPU) or failed to run a stage."""


class DatasetError(AnomalySegError):
    """A dataset path, file or image/label pair is missing or inconsistent."""


class ImageConversionError(AnomalySegError):
    """An image message cannot be converted (unknown encoding, wrong size, truncated data)."""
