"""Reader of CamVid in the SegNet split layout (Brostow et al. 2008; SegNet tutorial files)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..labels import CAMVID, LabelSet
from .sample import PairedDataset, Sample, list_images, read_label, require_dir

__all__ = ['CAMVID_SPLITS', 'CamVidDataset']

CAMVID_SPLITS = ('train', 'val', 'test')


class CamVidDataset(PairedDataset):
    """CamVid images with class-index label maps, paired by file name.

    Layout (as ``../shared/data/camvid`` and the SegNet tutorial)::

        root/<split>/<name>.png         RGB image, 480x360
        root/<split>annot/<name>.png    uint8 class index 0..10, 11 = Unlabelled (void)

    Samples: ``semantic`` = train ids of ``label_set`` (default ``labels.CAMVID``: 0..10, void
    11 -> 255), ``void`` = class 11, ``instance`` and ``anomaly`` = ``None``.

    Raises:
        DatasetError: missing folders, an image without its label file, an empty split; on load,
            unreadable files or image/label size mismatches.
    """

    kind = 'camvid'

    def __init__(self, root: str | Path, split: str = 'train', label_set: LabelSet | None = None) -> None:
        super().__init__(root, label_set or CAMVID)
        self.split = split
        image_dir = self.root / split
        if not image_dir.is_dir():
            present = [s for s in CAMVID_SPLITS if (self.root / s).is_dir()]
            raise DatasetError(f'CamVid split {split!r} not found: {image_dir} is not a directory '
                               f'(splits present: {", ".join(present) or "none; is this the CamVid root?"})')
        label_dir = require_dir(self.root / f'{split}annot', f'CamVid labels of split {split!r}')
        for image_path in list_images(image_dir):
            self._add(image_path.stem, image_path, label_dir / f'{image_path.stem}.png')
        self._finish(image_dir, 'images')

    def raw_labels(self, index: int) -> np.ndarray:
        """HxW uint8 CamVid class indices of sample ``index`` (11 = void), as stored."""
        return self._read_label(self.label_paths[self._index(index)][0])

    def _read_label(self, path: Path) -> np.ndarray:
        raw = read_label(path)
        return raw if raw.dtype == np.uint8 else np.clip(raw, 0, 255).astype(np.uint8)

    def load(self, index: int) -> Sample:
        image, raw = self._read_pair(index)
        label_set = self.label_set
        assert label_set is not None
        return Sample(name=self.names[index], image=image, semantic=label_set.to_train_ids(raw),
                      instance=None, void=label_set.void_mask(raw), anomaly=None)
