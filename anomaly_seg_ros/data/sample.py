"""The sample record every dataset reader returns, the dataset protocol, and shared file helpers.

Array conventions (all readers):

- ``image``: HxWx3 uint8 RGB.
- ``semantic``: HxW uint8 train ids of the dataset's :class:`~anomaly_seg_ros.labels.LabelSet`,
  ``255`` = ignore (raw ids without a train id, void objects).
- ``instance``: HxW int32, Cityscapes convention: ``labelId * 1000 + k`` on pixels of object
  instances, the plain ``labelId`` elsewhere.
- ``void``: HxW bool, pixels of void objects (raw ids in ``LabelSet.void_ids``).
- ``anomaly``: HxW uint8, ``0`` inlier, ``1`` anomaly, ``255`` ignore (anomaly sets only).

Fields a format does not have are ``None``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable

import cv2
import numpy as np

from ..errors import DatasetError
from ..labels import LabelSet

__all__ = [
    'IMAGE_EXTENSIONS',
    'Dataset',
    'PairedDataset',
    'Sample',
    'check_same_size',
    'index_by_stem',
    'list_images',
    'read_label',
    'read_rgb',
    'require_dir',
    'to_anomaly_labels',
]

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.webp', '.bmp')


class Sample(NamedTuple):
    """One image with whatever ground truth its dataset has (see the module docstring)."""

    name: str
    image: np.ndarray
    semantic: np.ndarray | None
    instance: np.ndarray | None
    void: np.ndarray | None
    anomaly: np.ndarray | None


@runtime_checkable
class Dataset(Protocol):
    """What every reader offers: indexed access to :class:`Sample`, names, label set, root."""

    root: Path
    names: list[str]
    label_set: LabelSet | None

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Sample: ...


class PairedDataset(ABC):
    """Base of the readers: a sorted list of (image path, label paths...) checked at construction.

    Subclasses fill ``names``, ``image_paths`` and ``label_paths`` (one tuple of paths per sample)
    with :meth:`_add` and implement :meth:`load` (with :meth:`_read_pair`; :meth:`_read_label` says how
    a label file is read). Indexing accepts negative indices; iteration yields samples.
    """

    kind = 'dataset'

    def __init__(self, root: str | Path, label_set: LabelSet | None) -> None:
        self.root = Path(root)
        self.label_set = label_set
        self.names: list[str] = []
        self.image_paths: list[Path] = []
        self.label_paths: list[tuple[Path, ...]] = []

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, index: int) -> Sample:
        return self.load(self._index(index))

    def __repr__(self) -> str:
        return f'{type(self).__name__}({str(self.root)!r}, {len(self)} samples)'

    @abstractmethod
    def load(self, index: int) -> Sample:
        """The sample at ``index`` (already in range, not negative)."""

    def _index(self, index: int) -> int:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f'{self.kind} index {index} out of range for {n} samples')
        return index % n

    def _add(self, name: str, image_path: Path, *label_paths: Path) -> None:
        """Record a sample; raises :class:`DatasetError` naming the first of ``label_paths`` that is no file."""
        for label_path in label_paths:
            if not label_path.is_file():
                raise DatasetError(f'label file missing for image {image_path}: expected {label_path}; '
                                   f'add it or remove the image')
        self.names.append(name)
        self.image_paths.append(image_path)
        self.label_paths.append(label_paths)

    def _read_pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The image (HxWx3 uint8 RGB) and first label map (:meth:`_read_label`) of sample ``index``.

        Raises :class:`DatasetError` for an unreadable file or an image and label of different sizes.
        """
        image_path, label_path = self.image_paths[index], self.label_paths[index][0]
        image = read_rgb(image_path)
        label = self._read_label(label_path)
        check_same_size(image_path, image, label_path, label)
        return image, label

    def _read_label(self, path: Path) -> np.ndarray:
        """A label file as the samples use it; here as stored (:func:`read_label`)."""
        return read_label(path)

    def _finish(self, where: Path, what: str) -> None:
        """Raise on an empty dataset (after the subclass collected its pairs)."""
        if not self.names:
            raise DatasetError(f'no {what} found in {where}; check the dataset root and split '
                               f'(expected layout: see the {type(self).__name__} docstring)')


def require_dir(path: Path, what: str) -> Path:
    """Return ``path`` if it is a directory, else raise :class:`DatasetError` naming it."""
    if not path.is_dir():
        raise DatasetError(f'{what} not found: {path} is not a directory; check the dataset root and split')
    return path


def list_images(directory: Path, suffix: str = '') -> list[Path]:
    """Sorted image files in ``directory`` (non-recursive) whose name ends with ``suffix`` + extension."""
    return sorted(p for p in directory.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and p.stem.endswith(suffix)
                  and not p.name.startswith('.'))


def index_by_stem(paths: Sequence[Path]) -> dict[str, Path]:
    """Map file stem -> path; two files with one stem (``a.png``, ``a.jpg``) are an error."""
    by_stem: dict[str, Path] = {}
    for path in paths:
        if path.stem in by_stem:
            raise DatasetError(f'two files share the name {path.stem!r}: {by_stem[path.stem]} and {path}; '
                               f'remove one of them')
        by_stem[path.stem] = path
    return by_stem


def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as HxWx3 uint8 RGB (gray images are expanded, alpha is dropped)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f'cannot read image {path}: the file is missing, empty or not an image')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_label(path: Path) -> np.ndarray:
    """Read a single-channel label PNG unchanged (uint8 or uint16, HxW)."""
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise DatasetError(f'cannot read label file {path}: the file is missing, empty or not an image')
    if label.ndim == 3:
        # Some tools save label maps as 3 equal channels (or with alpha); take the first one.
        label = label[:, :, 0]
    return label


def check_same_size(image_path: Path, image: np.ndarray, label_path: Path, label: np.ndarray) -> None:
    """Raise :class:`DatasetError` when an image and its label map differ in size."""
    if image.shape[:2] != label.shape[:2]:
        raise DatasetError(
            f'size mismatch: image {image_path} is {image.shape[1]}x{image.shape[0]} but label {label_path} is '
            f'{label.shape[1]}x{label.shape[0]}; the label must have the image size (fix or remove the pair)')


def to_anomaly_labels(label: np.ndarray, anomaly_values: Sequence[int] = (1,),
                      inlier_values: Sequence[int] = (0,)) -> np.ndarray:
    """Map a raw label map to the evaluation convention: HxW uint8, 0 inlier, 1 anomaly, 255 ignore."""
    out = np.full(label.shape, 255, dtype=np.uint8)
    out[np.isin(label, np.asarray(inlier_values))] = 0
    out[np.isin(label, np.asarray(anomaly_values))] = 1
    return out
