"""Reader of the Cityscapes format (Cordts et al. 2016), also written by the synthetic generator."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..labels import CITYSCAPES, LabelSet
from .sample import PairedDataset, Sample, check_same_size, read_label

__all__ = ['CityscapesDataset', 'available_splits']

_IMAGE_SUFFIX = '_leftImg8bit'


def available_splits(root: str | Path) -> list[str]:
    """Split folders present under ``root/leftImg8bit`` (sorted; empty if there is none)."""
    images = Path(root) / 'leftImg8bit'
    return sorted(p.name for p in images.iterdir() if p.is_dir()) if images.is_dir() else []


class CityscapesDataset(PairedDataset):
    """Images and fine annotations in the Cityscapes layout.

    Layout (``<city>`` folders may be any names; every image needs its labelIds file)::

        root/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png
        root/gtFine/<split>/<city>/<name>_gtFine_labelIds.png      uint8 labelIds (0..33)
        root/gtFine/<split>/<city>/<name>_gtFine_instanceIds.png   uint16, labelId*1000+k on instances

    Samples: ``semantic`` = train ids of ``label_set`` (default Cityscapes 19 classes; a smaller
    set such as ``labels.SYNTHETIC`` maps other labelIds to 255), ``instance`` = instanceIds as
    int32 (``None`` where the instanceIds file is absent, unless ``require_instances``), ``void`` =
    labelIds in ``label_set.void_ids`` (0..6), ``anomaly`` = ``None``.
    The raw labelIds stay available through :meth:`raw_labels` (e.g. for class swapping).

    Raises:
        DatasetError: missing folders, an image without labelIds (or instanceIds when required),
            an empty split; on load, unreadable files or image/label size mismatches.
    """

    kind = 'cityscapes'

    def __init__(self, root: str | Path, split: str = 'train', label_set: LabelSet | None = None,
                 annotations: str = 'gtFine', require_instances: bool = False) -> None:
        super().__init__(root, label_set or CITYSCAPES)
        self.split = split
        self.annotations = annotations
        self.instance_paths: list[Path | None] = []
        image_dir = self.root / 'leftImg8bit' / split
        label_dir = self.root / annotations / split
        if not image_dir.is_dir():
            found = available_splits(self.root)
            hint = f'splits present: {", ".join(found)}' if found else \
                f'{self.root} has no leftImg8bit/ folder; is this a Cityscapes-format dataset root?'
            raise DatasetError(f'Cityscapes split {split!r} not found: {image_dir} is not a directory ({hint})')
        if not label_dir.is_dir():
            raise DatasetError(f'annotations for split {split!r} not found: {label_dir} is not a directory; '
                               f'the dataset needs {annotations}/ beside leftImg8bit/')
        for image_path in sorted(image_dir.rglob(f'*{_IMAGE_SUFFIX}.png')):
            name = image_path.name[: -len(f'{_IMAGE_SUFFIX}.png')]
            gt_dir = label_dir / image_path.parent.relative_to(image_dir)
            label_path = gt_dir / f'{name}_{annotations}_labelIds.png'
            instance_path = gt_dir / f'{name}_{annotations}_instanceIds.png'
            self._add(name, image_path, label_path)
            if not instance_path.is_file():
                if require_instances:
                    raise DatasetError(f'instance file missing for image {image_path}: expected {instance_path}')
                instance_path = None
            self.instance_paths.append(instance_path)
        self._finish(image_dir, f'*{_IMAGE_SUFFIX}.png images')

    def raw_labels(self, index: int) -> np.ndarray:
        """HxW uint8 Cityscapes labelIds of sample ``index`` (unmapped, as stored)."""
        return self._read_label(self.label_paths[self._index(index)][0])

    def _read_label(self, path: Path) -> np.ndarray:
        raw = read_label(path)
        if raw.dtype != np.uint8:
            if raw.max(initial=0) > 255:
                raise DatasetError(f'label file {path} holds values above 255; expected Cityscapes labelIds (0..33)')
            raw = raw.astype(np.uint8)
        return raw

    def load(self, index: int) -> Sample:
        image, raw = self._read_pair(index)
        instance = None
        instance_path = self.instance_paths[index]
        if instance_path is not None:
            instance = read_label(instance_path).astype(np.int32)
            check_same_size(self.image_paths[index], image, instance_path, instance)
        label_set = self.label_set
        assert label_set is not None
        return Sample(name=self.names[index], image=image, semantic=label_set.to_train_ids(raw),
                      instance=instance, void=label_set.void_mask(raw), anomaly=None)
