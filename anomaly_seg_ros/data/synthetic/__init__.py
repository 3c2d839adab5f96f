"""Synthetic driving scenes in Cityscapes format, with void objects and an anomaly test split.

``render_frame(seed, split, index)`` draws one frame; ``write_dataset`` writes a dataset folder
(see :mod:`.writer` for the layout); ``anomaly_seg data synthetic`` is the command line.
"""
from __future__ import annotations

from .anomalies import ANOMALY_KINDS
from .props import VOID_KINDS
from .scene import SPLITS, SyntheticFrame, frame_rng, render_frame
from .writer import (
    DEFAULT_COUNTS,
    DEFAULT_SIZE,
    GENERATOR_VERSION,
    GenerationReport,
    frame_name,
    frame_paths,
    write_dataset,
    write_frame,
)

__all__ = [
    'ANOMALY_KINDS',
    'DEFAULT_COUNTS',
    'DEFAULT_SIZE',
    'GENERATOR_VERSION',
    'SPLITS',
    'VOID_KINDS',
    'GenerationReport',
    'SyntheticFrame',
    'frame_name',
    'frame_paths',
    'frame_rng',
    'render_frame',
    'write_dataset',
    'write_frame',
]
