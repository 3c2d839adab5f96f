"""Training frames of a dataset split, brought to the segmentation input size as the pipeline does.

The camera image is resized like :func:`~..imaging.prepare_image` (area when shrinking, bilinear when
growing); label maps (train ids, instance ids, void mask) with PyTorch's ``nearest`` convention
(:func:`~..networks.functional.nearest_indices`), the one the stage graphs use.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from ..data import open_dataset
from ..errors import DatasetError
from ..labels import LabelSet
from ..networks.functional import nearest_indices
from .config import DataConfig

__all__ = ['Frame', 'Frames', 'RepeatedFrames', 'check_data', 'open_frames', 'resize_image', 'resize_nearest']

_CACHE_LIMIT_BYTES = 4 << 30


class Frame(NamedTuple):
    """One frame at (H, W) = the segmentation input size.

    image: HxWx3 uint8 RGB. semantic: HxW uint8 train ids (255 ignore). instance: HxW int32
    (labelId*1000+k on instances) or None. void: HxW bool or None. name: the sample name. anomaly: HxW uint8
    0/1/255 of an anomaly set (objects already pasted), else None.
    """

    name: str
    image: np.ndarray
    semantic: np.ndarray | None
    instance: np.ndarray | None
    void: np.ndarray | None
    anomaly: np.ndarray | None = None


def resize_image(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """HxWx3 uint8 -> size (H', W'), interpolation as :func:`~..imaging.prepare_image`."""
    height, width = size
    if rgb.shape[:2] == (height, width):
        return rgb
    shrinking = height < rgb.shape[0] or width < rgb.shape[1]
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def resize_nearest(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest resize of an HxW map (any dtype) with PyTorch's ``nearest`` index convention."""
    height, width = size
    if labels.shape[:2] == (height, width):
        return labels
    rows = np.asarray(nearest_indices(labels.shape[0], height))
    cols = np.asarray(nearest_indices(labels.shape[1], width))
    return labels[rows][:, cols]


class Frames:
    """Indexable frames of one split at ``size``; decoded frames are cached in memory when small."""

    def __init__(self, dataset: object, size: tuple[int, int], limit: int | None = None,
                 cache: bool = True) -> None:
        self.dataset = dataset
        self.size = (int(size[0]), int(size[1]))
        total = len(dataset)  # type: ignore[arg-type]
        self.count = total if limit is None else max(0, min(int(limit), total))
        if self.count == 0:
            raise DatasetError(f'{dataset!r} has no frames to train on (limit {limit})')
        per_frame = self.size[0] * self.size[1] * 9
        self._cache: dict[int, Frame] | None = {} if cache and per_frame * self.count < _CACHE_LIMIT_BYTES else None

    @property
    def label_set(self) -> LabelSet | None:
        return getattr(self.dataset, 'label_set', None)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Frame:
        if not 0 <= index < self.count:
            raise IndexError(f'frame {index} out of range ({self.count})')
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        sample = self.dataset[index]  # type: ignore[index]
        frame = Frame(
            name=sample.name,
            image=resize_image(sample.image, self.size),
            semantic=None if sample.semantic is None else resize_nearest(sample.semantic, self.size),
            instance=None if sample.instance is None else resize_nearest(sample.instance, self.size),
            void=None if sample.void is None else resize_nearest(sample.void, self.size),
            anomaly=None if sample.anomaly is None else resize_nearest(sample.anomaly, self.size),
        )
        if self._cache is not None:
            self._cache[index] = frame
        return frame


class RepeatedFrames:
    """``frames`` ``copies`` times over (frame ``i`` at ``i``, ``n + i``, ...), each copy named ``<name>#<copy>``:
    source C pastes other objects into each copy, since every index draws from its own generator."""

    def __init__(self, frames: object, copies: int) -> None:
        self.frames = frames
        self.copies = max(1, int(copies))

    @property
    def size(self) -> tuple[int, int]:
        return self.frames.size  # type: ignore[attr-defined]

    @property
    def dataset(self) -> object:
        return self.frames.dataset  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self.frames) * self.copies  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Frame:
        if not 0 <= index < len(self):
            raise IndexError(f'frame {index} out of range ({len(self)})')
        copy, frame_index = divmod(index, len(self.frames))  # type: ignore[arg-type]
        frame = self.frames[frame_index]  # type: ignore[index]
        return frame if self.copies == 1 else frame._replace(name=f'{frame.name}#{copy}')


def open_frames(data: DataConfig, split: str, size: tuple[int, int], label_set: LabelSet | None = None,
                limit: int | None = None) -> Frames:
    """The frames of ``split`` of the dataset in ``data`` at ``size`` (H, W).

    Raises:
        DatasetError: the dataset or split cannot be opened, or has no semantic labels.
    """
    if not data.root:
        raise DatasetError('no dataset root given; pass --root PATH (the dataset folder)')
    dataset = open_dataset(data.dataset, Path(data.root), split, label_set)
    return Frames(dataset, size, limit, data.cache_in_memory)


def _image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of an image file from its header (Pillow) or by decoding it; None if unreadable."""
    try:
        from PIL import Image
        with Image.open(path) as image:
            return image.size
    except ImportError:
        pass
    except (OSError, ValueError):  # unreadable by Pillow: let OpenCV decide
        pass
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return None if array is None else (array.shape[1], array.shape[0])


def check_data(data: DataConfig) -> None:
    """Check the train and val splits of ``data`` before a training run writes anything.

    Opening each split finds missing folders, images without their label file and empty splits (also
    after ``train_limit``/``val_limit``); then the header of every image and label file in the limits
    is read (no pixels decoded) to find unreadable files and image/label size mismatches.

    Raises:
        DatasetError: naming the file and what to do.
    """
    for split, limit in ((data.train_split, data.train_limit), (data.val_split, data.val_limit)):
        dataset = open_frames(data, split, (1, 1), None, limit).dataset
        count = len(dataset) if limit is None else min(int(limit), len(dataset))  # type: ignore[arg-type]
        images = getattr(dataset, 'image_paths', [])
        labels = getattr(dataset, 'label_paths', [])
        instances = getattr(dataset, 'instance_paths', [])
        for index in range(min(count, len(images), len(labels))):
            image_path = images[index]
            size = _image_size(image_path)
            if size is None:
                raise DatasetError(f'cannot read image {image_path}: the file is empty or not an image; '
                                   'replace it or remove the image and its labels')
            others = list(labels[index]) + ([instances[index]] if index < len(instances) and instances[index] else [])
            for other in others:
                other_size = _image_size(other)
                if other_size is None:
                    raise DatasetError(f'cannot read label file {other}: the file is empty or not an image; '
                                       f'replace it or remove the pair (image {image_path})')
                if other_size != size:
                    raise DatasetError(f'size mismatch: image {image_path} is {size[0]}x{size[1]} but label '
                                       f'{other} is {other_size[0]}x{other_size[1]}; the label must have the '
                                       'image size (fix or remove the pair)')
