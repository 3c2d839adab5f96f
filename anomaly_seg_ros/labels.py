"""Label sets: class names, train ids, colors, and how a dataset's raw ids map to them.

A label set maps the raw ids stored in a dataset's label files (Cityscapes labelIds, CamVid class
indices) to contiguous train ids ``0..num_classes-1``; raw ids without a train id map to
``ignore_index``. ``void_ids`` are the raw ids of objects that belong to no class (Cityscapes
labelIds 0..6, CamVid "Unlabelled"): the paper's data generator uses them as anomalies.
``instance_ids`` are the raw ids whose objects carry instance ids (Cityscapes 24..33).

Nothing here is tied to 19 classes; a model directory stores its label set in full
(:meth:`LabelSet.to_dict`), so a model trained on custom labels loads without code changes.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    'CAMVID',
    'CITYSCAPES',
    'IGNORE_INDEX',
    'LABEL_SETS',
    'SYNTHETIC',
    'CityscapesLabel',
    'LabelSet',
    'CITYSCAPES_LABELS',
    'class_mapping',
    'get_label_set',
]

IGNORE_INDEX = 255


@dataclass(frozen=True)
class CityscapesLabel:
    """One row of the Cityscapes label table (cityscapesScripts ``labels.py``)."""

    name: str
    label_id: int
    train_id: int
    color: tuple[int, int, int]


CITYSCAPES_LABELS: tuple[CityscapesLabel, ...] = (
    CityscapesLabel('unlabeled', 0, 255, (0, 0, 0)),
    CityscapesLabel('ego vehicle', 1, 255, (0, 0, 0)),
    CityscapesLabel('rectification border', 2, 255, (0, 0, 0)),
    CityscapesLabel('out of roi', 3, 255, (0, 0, 0)),
    CityscapesLabel('static', 4, 255, (0, 0, 0)),
    CityscapesLabel('dynamic', 5, 255, (111, 74, 0)),
    CityscapesLabel('ground', 6, 255, (81, 0, 81)),
    CityscapesLabel('road', 7, 0, (128, 64, 128)),
    CityscapesLabel('sidewalk', 8, 1, (244, 35, 232)),
    CityscapesLabel('parking', 9, 255, (250, 170, 160)),
    CityscapesLabel('rail track', 10, 255, (230, 150, 140)),
    CityscapesLabel('building', 11, 2, (70, 70, 70)),
    CityscapesLabel('wall', 12, 3, (102, 102, 156)),
    CityscapesLabel('fence', 13, 4, (190, 153, 153)),
    CityscapesLabel('guard rail', 14, 255, (180, 165, 180)),
    CityscapesLabel('bridge', 15, 255, (150, 100, 100)),
    CityscapesLabel('tunnel', 16, 255, (150, 120, 90)),
    CityscapesLabel('pole', 17, 5, (153, 153, 153)),
    CityscapesLabel('polegroup', 18, 255, (153, 153, 153)),
    CityscapesLabel('traffic light', 19, 6, (250, 170, 30)),
    CityscapesLabel('traffic sign', 20, 7, (220, 220, 0)),
    CityscapesLabel('vegetation', 21, 8, (107, 142, 35)),
    CityscapesLabel('terrain', 22, 9, (152, 251, 152)),
    CityscapesLabel('sky', 23, 10, (70, 130, 180)),
    CityscapesLabel('person', 24, 11, (220, 20, 60)),
    CityscapesLabel('rider', 25, 12, (255, 0, 0)),
    CityscapesLabel('car', 26, 13, (0, 0, 142)),
    CityscapesLabel('truck', 27, 14, (0, 0, 70)),
    CityscapesLabel('bus', 28, 15, (0, 60, 100)),
    CityscapesLabel('caravan', 29, 255, (0, 0, 90)),
    CityscapesLabel('trailer', 30, 255, (0, 0, 110)),
    CityscapesLabel('train', 31, 16, (0, 80, 100)),
    CityscapesLabel('motorcycle', 32, 17, (0, 0, 230)),
    CityscapesLabel('bicycle', 33, 18, (119, 11, 32)),
)
CITYSCAPES_VOID_IDS = (0, 1, 2, 3, 4, 5, 6)
CITYSCAPES_INSTANCE_IDS = tuple(range(24, 34))
_CITYSCAPES_BY_NAME = {label.name: label for label in CITYSCAPES_LABELS}


@dataclass(frozen=True)
class LabelSet:
    """Classes a model predicts, and the mapping from a dataset's raw label ids.

    Attributes:
        name: short identifier stored in model metadata (``cityscapes``, ``camvid``, ``synthetic``).
        class_names: train class names, index = train id.
        colors: RGB color per train id.
        raw_to_train: raw label id -> train id (or ``ignore_index``); raw ids absent map to ignore.
        void_ids: raw ids of void objects (belong to no class; anomalies for the data generator).
        instance_ids: raw ids whose objects carry instance ids.
        raw_names: optional names of raw ids, for documentation and dataset writers.
        ignore_index: the train id of pixels without a class.
    """

    name: str
    class_names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]
    raw_to_train: Mapping[int, int]
    void_ids: tuple[int, ...] = ()
    instance_ids: tuple[int, ...] = ()
    raw_names: Mapping[int, str] = field(default_factory=dict)
    ignore_index: int = IGNORE_INDEX

    def __post_init__(self) -> None:
        if len(self.class_names) != len(self.colors):
            raise ValueError(f'label set {self.name!r}: {len(self.class_names)} names but '
                             f'{len(self.colors)} colors')
        if not 0 < len(self.class_names) < self.ignore_index:
            raise ValueError(f'label set {self.name!r}: need 1..{self.ignore_index - 1} classes')
        bad = {raw: t for raw, t in self.raw_to_train.items()
               if not (0 <= raw <= 255) or not (0 <= t < self.num_classes or t == self.ignore_index)}
        if bad:
            raise ValueError(f'label set {self.name!r}: invalid raw->train entries {bad}')

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def raw_lut(self) -> np.ndarray:
        """(256,) uint8 lookup table raw id -> train id (ignore for unmapped ids)."""
        lut = np.full(256, self.ignore_index, dtype=np.uint8)
        for raw, train in self.raw_to_train.items():
            lut[raw] = train
        return lut

    @property
    def palette(self) -> np.ndarray:
        """(256, 3) uint8 color per train id; ignore and unused ids are black.

        Label maps are drawn with it by :func:`..visualization.colorize_labels`."""
        palette = np.zeros((256, 3), dtype=np.uint8)
        palette[: self.num_classes] = np.asarray(self.colors, dtype=np.uint8)
        return palette

    def to_train_ids(self, raw: np.ndarray) -> np.ndarray:
        """Map a raw label map (any integer dtype, values 0..255) to uint8 train ids."""
        raw = np.asarray(raw)
        if raw.dtype != np.uint8:
            if raw.size and (raw.min() < 0 or raw.max() > 255):
                raise ValueError(f'raw label ids must be in 0..255, got {raw.min()}..{raw.max()}')
            raw = raw.astype(np.uint8)
        return self.raw_lut[raw]

    def void_mask(self, raw: np.ndarray) -> np.ndarray:
        """Boolean mask of raw label pixels that are void objects."""
        return np.isin(np.asarray(raw), np.asarray(self.void_ids, dtype=np.int64))

    def train_id(self, class_name: str) -> int:
        try:
            return self.class_names.index(class_name)
        except ValueError:
            raise KeyError(f'label set {self.name!r} has no class {class_name!r}; '
                           f'classes: {", ".join(self.class_names)}') from None

    def to_dict(self) -> dict[str, Any]:
        """Plain-YAML form stored in model metadata."""
        return {
            'name': self.name,
            'class_names': list(self.class_names),
            'colors': [list(c) for c in self.colors],
            'raw_to_train': {int(k): int(v) for k, v in sorted(self.raw_to_train.items())},
            'void_ids': list(self.void_ids),
            'instance_ids': list(self.instance_ids),
            'raw_names': {int(k): str(v) for k, v in sorted(self.raw_names.items())},
            'ignore_index': self.ignore_index,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelSet:
        return cls(
            name=str(data['name']),
            class_names=tuple(str(n) for n in data['class_names']),
            colors=tuple(_color(c, i) for i, c in enumerate(data['colors'])),
            raw_to_train={int(k): int(v) for k, v in data['raw_to_train'].items()},
            void_ids=tuple(int(v) for v in data.get('void_ids', ())),
            instance_ids=tuple(int(v) for v in data.get('instance_ids', ())),
            raw_names={int(k): str(v) for k, v in data.get('raw_names', {}).items()},
            ignore_index=int(data.get('ignore_index', IGNORE_INDEX)),
        )


def _color(value: Any, index: int) -> tuple[int, int, int]:
    """One ``colors`` entry: [R, G, B], each 0..255; ValueError naming the entry otherwise."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 3 or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value):
        raise ValueError(f'label_set.colors[{index}] is {value!r}; each color is [R, G, B] with integers 0..255')
    return int(value[0]), int(value[1]), int(value[2])


def _cityscapes_subset(name: str, class_names: Sequence[str]) -> LabelSet:
    """A label set over Cityscapes labelIds whose train ids are the given classes, in order."""
    train_of = {class_name: i for i, class_name in enumerate(class_names)}
    return LabelSet(
        name=name,
        class_names=tuple(class_names),
        colors=tuple(_CITYSCAPES_BY_NAME[n].color for n in class_names),
        raw_to_train={lab.label_id: train_of.get(lab.name, IGNORE_INDEX) for lab in CITYSCAPES_LABELS},
        void_ids=CITYSCAPES_VOID_IDS,
        instance_ids=CITYSCAPES_INSTANCE_IDS,
        raw_names={lab.label_id: lab.name for lab in CITYSCAPES_LABELS},
    )


CITYSCAPES = _cityscapes_subset(
    'cityscapes',
    [lab.name for lab in sorted((x for x in CITYSCAPES_LABELS if x.train_id != 255), key=lambda x: x.train_id)],
)

# The synthetic driving scenes (anomaly_seg_ros.data.synthetic) are written in Cityscapes format
# (labelIds, instanceIds) but only draw these classes; a 10-class model is cheaper for the CPU demo.
SYNTHETIC = _cityscapes_subset(
    'synthetic',
    ['road', 'sidewalk', 'building', 'pole', 'traffic sign', 'vegetation', 'terrain', 'sky', 'person', 'car'],
)

_CAMVID_CLASSES = (
    ('sky', (128, 128, 128)), ('building', (128, 0, 0)), ('pole', (192, 192, 128)),
    ('road', (128, 64, 128)), ('pavement', (60, 40, 222)), ('tree', (128, 128, 0)),
    ('sign symbol', (192, 128, 128)), ('fence', (64, 64, 128)), ('car', (64, 0, 128)),
    ('pedestrian', (64, 64, 0)), ('bicyclist', (0, 128, 192)),
)
CAMVID_VOID_ID = 11
CAMVID = LabelSet(
    name='camvid',
    class_names=tuple(n for n, _ in _CAMVID_CLASSES),
    colors=tuple(c for _, c in _CAMVID_CLASSES),
    raw_to_train={**{i: i for i in range(len(_CAMVID_CLASSES))}, CAMVID_VOID_ID: IGNORE_INDEX},
    void_ids=(CAMVID_VOID_ID,),
    instance_ids=(),
    raw_names={**{i: n for i, (n, _) in enumerate(_CAMVID_CLASSES)}, CAMVID_VOID_ID: 'unlabelled'},
)

LABEL_SETS: dict[str, LabelSet] = {ls.name: ls for ls in (CITYSCAPES, CAMVID, SYNTHETIC)}

# Cityscapes train classes as CamVid's eleven (the SegNet grouping: wall is building, terrain is
# vegetation like CamVid's VegetationMisc, every vehicle is car, a motorcycle is a bicyclist).
_CITYSCAPES_AS_CAMVID = {
    'road': 'road', 'sidewalk': 'pavement', 'building': 'building', 'wall': 'building', 'fence': 'fence',
    'pole': 'pole', 'traffic light': 'sign symbol', 'traffic sign': 'sign symbol', 'vegetation': 'tree',
    'terrain': 'tree', 'sky': 'sky', 'person': 'pedestrian', 'rider': 'bicyclist', 'car': 'car', 'truck': 'car',
    'bus': 'car', 'train': 'car', 'motorcycle': 'bicyclist', 'bicycle': 'bicyclist',
}
_CLASS_MAPPINGS = {('cityscapes', 'camvid'): _CITYSCAPES_AS_CAMVID}


def class_mapping(source: LabelSet, target: LabelSet) -> np.ndarray:
    """(256,) uint8 table from ``source`` train ids to ``target`` train ids (ignore stays ignore), for
    scoring a model's semantic map against another dataset's labels (e.g. Cityscapes classes on CamVid).

    Raises:
        KeyError: no mapping is known between the two label sets.
    """
    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    if source.class_names == target.class_names:
        table[:source.num_classes] = np.arange(source.num_classes)
        return table
    names = _CLASS_MAPPINGS.get((source.name, target.name))
    if names is None:
        raise KeyError(f'no class mapping from label set {source.name!r} to {target.name!r}; known: '
                       f'{", ".join(f"{a} -> {b}" for a, b in _CLASS_MAPPINGS)}')
    for train_id, name in enumerate(source.class_names):
        table[train_id] = target.train_id(names[name])
    return table


def get_label_set(name: str) -> LabelSet:
    """The built-in label set called ``name`` (cityscapes, camvid, synthetic)."""
    try:
        return LABEL_SETS[name]
    except KeyError:
        raise KeyError(f'unknown label set {name!r}; built-in: {", ".join(LABEL_SETS)}') from None
