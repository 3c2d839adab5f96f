"""Readers of anomaly evaluation sets: Road Anomaly, Fishyscapes (SynBoost layout), a plain folder.

All return ``Sample.anomaly`` as HxW uint8 with 0 = inlier, 1 = anomaly, 255 = ignore (the
Fishyscapes evaluation convention); ``semantic``, ``instance`` and ``void`` are ``None``.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import DatasetError
from ..labels import LabelSet
from .sample import PairedDataset, Sample, index_by_stem, list_images, read_rgb, require_dir, to_anomaly_labels

__all__ = ['FishyscapesDataset', 'FolderDataset', 'RoadAnomalyDataset']


class _ImageLabelFolders(PairedDataset):
    """Images in one folder, 0/1/255 label maps in another, paired by file stem (any image type)."""

    image_folder = 'images'
    label_folder = 'labels'

    def __init__(self, root: str | Path, label_set: LabelSet | None = None, require_labels: bool = True) -> None:
        super().__init__(root, label_set)
        image_dir = require_dir(self.root / self.image_folder, f'{self.kind} image folder')
        label_dir = self.root / self.label_folder
        has_labels = label_dir.is_dir()
        if require_labels and not has_labels:
            raise DatasetError(f'{self.kind} label folder not found: {label_dir} is not a directory; '
                               f'expected {self.image_folder}/ and {self.label_folder}/ under {self.root}')
        labels = index_by_stem(list_images(label_dir)) if has_labels else {}
        for image_path in list_images(image_dir):
            label_path = labels.get(image_path.stem)
            if label_path is None and require_labels:
                raise DatasetError(f'label file missing for image {image_path}: expected '
                                   f'{label_dir / image_path.stem}.png (same name); add it or remove the image')
            self._add(image_path.stem, image_path, *(() if label_path is None else (label_path,)))
        self._finish(image_dir, 'images')

    def load(self, index: int) -> Sample:
        if not self.label_paths[index]:
            image, anomaly = read_rgb(self.image_paths[index]), None
        else:
            image, label = self._read_pair(index)
            anomaly = to_anomaly_labels(label)
        return Sample(name=self.names[index], image=image, semantic=None, instance=None, void=None, anomaly=anomaly)


class FishyscapesDataset(_ImageLabelFolders):
    """Fishyscapes Lost&Found / Static validation data in the layout of the authors' code (SynBoost).

    Layout (SynBoost ``image_dissimilarity/data/cityscapes_dataset.py`` reads ``original/`` and
    ``labels/`` and pairs them by sorted file name; we pair by file stem, which is stricter)::

        root/original/<name>.png   RGB image
        root/labels/<name>.png     uint8: 0 in-distribution, 1 anomaly, 255 void (ignored)

    Values other than 0 and 1 load as 255. The synthetic generator writes its anomaly split in
    this layout. ``label_set`` only records which classes count as inliers (may be ``None``).
    """

    kind = 'fishyscapes'
    image_folder = 'original'
    label_folder = 'labels'


class FolderDataset(_ImageLabelFolders):
    """A plain folder of images with anomaly masks, paired by file stem (png/jpg/jpeg/webp/bmp)::

        root/images/<name>.<ext>   RGB image
        root/labels/<name>.png     uint8: 0 inlier, 1 anomaly, other values (255) ignored

    With ``require_labels=False`` the labels folder may be absent or partial (``anomaly`` = ``None``).
    """

    kind = 'folder'
    image_folder = 'images'
    label_folder = 'labels'


class RoadAnomalyDataset(PairedDataset):
    """Road Anomaly (Lis et al., ICCV 2019), as distributed::

        root/frames/<name>.jpg                          RGB photo (1280x720)
        root/frames/<name>.labels/labels_semantic.png   uint8: 0 background, 2 anomaly

    ``anomaly`` maps 0 -> 0, 2 -> 1, any other value -> 255.
    """

    kind = 'road_anomaly'

    def __init__(self, root: str | Path, label_set: LabelSet | None = None) -> None:
        super().__init__(root, label_set)
        frames = require_dir(self.root / 'frames', 'Road Anomaly frames folder')
        for image_path in list_images(frames):
            self._add(image_path.stem, image_path, frames / f'{image_path.stem}.labels' / 'labels_semantic.png')
        self._finish(frames, 'images')

    def load(self, index: int) -> Sample:
        image, label = self._read_pair(index)
        return Sample(name=self.names[index], image=image, semantic=None, instance=None, void=None,
                      anomaly=to_anomaly_labels(label, anomaly_values=(2,)))
