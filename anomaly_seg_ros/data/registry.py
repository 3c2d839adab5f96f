"""Open any supported dataset by kind name: ``open_dataset('camvid', root, 'val')``."""
from __future__ import annotations

from pathlib import Path

from ..errors import DatasetError
from ..labels import SYNTHETIC, LabelSet
from .anomaly_sets import FishyscapesDataset, FolderDataset, RoadAnomalyDataset
from .camvid import CAMVID_SPLITS, CamVidDataset
from .cityscapes import CityscapesDataset
from .cityscapes import available_splits as _cityscapes_splits
from .sample import PairedDataset

__all__ = ['DATASET_KINDS', 'SYNTHETIC_ANOMALY_SPLIT', 'dataset_splits', 'open_dataset', 'open_dataset_for_model']

DATASET_KINDS = ('cityscapes', 'camvid', 'synthetic', 'road_anomaly', 'fishyscapes', 'folder')
# The anomaly split of a generated synthetic dataset: DIR/anomaly_test in the Fishyscapes layout.
SYNTHETIC_ANOMALY_SPLIT = 'anomaly_test'
_SPLITLESS = ('road_anomaly', 'fishyscapes', 'folder')


def dataset_splits(kind: str, root: str | Path) -> list[str | None]:
    """The splits of a dataset present under ``root`` (``[None]`` for sets without splits)."""
    _check_kind(kind)
    root = Path(root)
    if kind in _SPLITLESS:
        return [None]
    if kind == 'camvid':
        return [s for s in CAMVID_SPLITS if (root / s).is_dir()]
    splits: list[str | None] = list(_cityscapes_splits(root))
    if kind == 'synthetic' and (root / SYNTHETIC_ANOMALY_SPLIT).is_dir():
        splits.append(SYNTHETIC_ANOMALY_SPLIT)
    return splits


def open_dataset(kind: str, root: str | Path, split: str | None = None,
                 label_set: LabelSet | None = None) -> PairedDataset:
    """Open a dataset reader.

    Args:
        kind: one of :data:`DATASET_KINDS`.
        root: the dataset root folder (layouts: see each reader's docstring).
        split: ``train``/``val``/``test`` for cityscapes and camvid; ``train``/``val``/
            ``anomaly_test`` for synthetic (the last one opens ``root/anomaly_test`` with the
            Fishyscapes reader); must be ``None`` for road_anomaly, fishyscapes and folder.
        label_set: overrides the reader's default label set (Cityscapes, CamVid, synthetic).

    Returns:
        A reader with ``__len__``, ``__getitem__(i) -> Sample``, ``names``, ``label_set``, ``root``.

    Raises:
        DatasetError: unknown kind, missing or wrong split, bad paths, inconsistent pairs.
    """
    _check_kind(kind)
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f'dataset root not found: {root} is not a directory (--root of a {kind} dataset)')
    if kind in _SPLITLESS:
        if split is not None:
            raise DatasetError(f'a {kind} dataset has no splits; drop the split {split!r}')
        if kind == 'road_anomaly':
            return RoadAnomalyDataset(root, label_set)
        if kind == 'fishyscapes':
            return FishyscapesDataset(root, label_set)
        return FolderDataset(root, label_set)
    if split is None:
        present = [s for s in dataset_splits(kind, root) if s]
        raise DatasetError(f'a {kind} dataset needs a split; splits present under {root}: '
                           f'{", ".join(present) or "none"}')
    if kind == 'cityscapes':
        return CityscapesDataset(root, split, label_set)
    if kind == 'camvid':
        return CamVidDataset(root, split, label_set)
    if split == SYNTHETIC_ANOMALY_SPLIT:
        anomaly_root = root / SYNTHETIC_ANOMALY_SPLIT
        if not anomaly_root.is_dir():
            raise DatasetError(f'synthetic anomaly split not found: {anomaly_root} is not a directory; '
                               f'generate it with `anomaly_seg data synthetic --out {root} --anomaly-test N`')
        return FishyscapesDataset(anomaly_root, label_set or SYNTHETIC)
    return CityscapesDataset(root, split, label_set or SYNTHETIC, require_instances=True)


def _check_kind(kind: str) -> None:
    if kind not in DATASET_KINDS:
        raise DatasetError(f'unknown dataset kind {kind!r}; choose one of {", ".join(DATASET_KINDS)}')


def open_dataset_for_model(kind: str, root: str | Path, split: str | None, label_set: LabelSet) -> PairedDataset:
    """A reader in a model's label set where the dataset's raw ids are that set's (Cityscapes-format data for a
    Cityscapes-class model), else in the dataset's own labels (CamVid frames for a Cityscapes-class model: their
    void mask and anomaly labels hold, their classes are compared through :func:`~..labels.class_mapping`)."""
    native = open_dataset(kind, root, split)
    own = native.label_set
    if own is not None and dict(own.raw_names) != dict(label_set.raw_names):
        return native
    return open_dataset(kind, root, split, label_set)
