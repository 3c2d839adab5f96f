"""Dataset readers returning one :class:`Sample` structure, and the synthetic scene generator.

Readers: :class:`CityscapesDataset`, :class:`CamVidDataset`, :class:`RoadAnomalyDataset`,
:class:`FishyscapesDataset`, :class:`FolderDataset`; :func:`open_dataset` opens any of them by
kind name. The generator lives in :mod:`anomaly_seg_ros.data.synthetic` (imported on demand).
"""
from __future__ import annotations

from .anomaly_sets import FishyscapesDataset, FolderDataset, RoadAnomalyDataset
from .camvid import CamVidDataset
from .cityscapes import CityscapesDataset
from .registry import DATASET_KINDS, SYNTHETIC_ANOMALY_SPLIT, dataset_splits, open_dataset, open_dataset_for_model
from .sample import Dataset, PairedDataset, Sample, read_label, read_rgb
from .summary import DatasetSummary, summarize

__all__ = [
    'DATASET_KINDS',
    'SYNTHETIC_ANOMALY_SPLIT',
    'CamVidDataset',
    'CityscapesDataset',
    'Dataset',
    'DatasetSummary',
    'FishyscapesDataset',
    'FolderDataset',
    'PairedDataset',
    'RoadAnomalyDataset',
    'Sample',
    'dataset_splits',
    'open_dataset',
    'open_dataset_for_model',
    'read_label',
    'read_rgb',
    'summarize',
]
