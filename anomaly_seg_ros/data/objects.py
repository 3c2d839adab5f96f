"""A bank of real object cutouts (RGBA) for outlier exposure, split by category.

The bank reads a folder in the layout of ``../shared/data/coco_objects``::

    root/manifest.json                      one record per cutout: file, category, licence, ...
    root/<category>/<name>.png              RGBA, alpha = the instance mask

Objects are split by *category*: the held-out categories go into validation frames only, so a
validation figure measures kinds of objects the training never saw. ``potted_plant`` looks like
vegetation, a driving class, and is used in neither part.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import DatasetError

__all__ = ['EXCLUDED_CATEGORIES', 'HELD_OUT_CATEGORIES', 'OBJECT_PARTS', 'ObjectBank', 'ObjectCutout']

# The split suggested by the cutouts' README: 14 categories (~20% of the instances, several kinds).
HELD_OUT_CATEGORIES = ('bear', 'horse', 'sheep', 'zebra', 'suitcase', 'teddy_bear', 'umbrella', 'toilet',
                       'refrigerator', 'skateboard', 'tennis_racket', 'orange', 'pizza', 'microwave')
EXCLUDED_CATEGORIES = ('potted_plant',)
OBJECT_PARTS = ('train', 'held_out')


@dataclass(frozen=True)
class ObjectCutout:
    """One cutout: its file (relative to the bank root), category and manifest record."""

    file: str
    category: str
    record: dict[str, Any]


class ObjectBank:
    """The cutouts of one part (``train``: every category but the held-out and excluded ones;
    ``held_out``: the held-out ones), in manifest order; RGBA arrays are decoded once and kept."""

    def __init__(self, root: str | Path, part: str = 'train',
                 held_out: tuple[str, ...] = HELD_OUT_CATEGORIES,
                 excluded: tuple[str, ...] = EXCLUDED_CATEGORIES) -> None:
        if part not in OBJECT_PARTS:
            raise ValueError(f'unknown object part {part!r}; parts: {OBJECT_PARTS}')
        self.root = Path(root)
        manifest = self.root / 'manifest.json'
        if not manifest.is_file():
            raise DatasetError(f'object bank manifest not found: {manifest}; --objects must be a folder of RGBA '
                               'cutouts with a manifest.json (the layout of ../shared/data/coco_objects)')
        try:
            records = json.loads(manifest.read_text())
        except (OSError, ValueError) as exc:
            raise DatasetError(f'cannot read {manifest}: {exc}') from exc
        self.part = part
        self.held_out = tuple(held_out)
        self.excluded = tuple(excluded)
        self.cutouts: list[ObjectCutout] = []
        for record in records:
            category = str(record['category']).replace(' ', '_')  # the folder names' spelling
            if category in self.excluded or (category in self.held_out) != (part == 'held_out'):
                continue
            self.cutouts.append(ObjectCutout(str(record['file']), category, record))
        if not self.cutouts:
            raise DatasetError(f'no {part} object in {manifest} (held-out categories {list(self.held_out)})')
        self._cache: dict[int, np.ndarray] = {}

    @property
    def categories(self) -> list[str]:
        return sorted({c.category for c in self.cutouts})

    def __len__(self) -> int:
        return len(self.cutouts)

    def rgba(self, index: int) -> np.ndarray:
        """HxWx4 uint8 RGBA of cutout ``index`` (alpha 0 outside the object)."""
        if index not in self._cache:
            path = self.root / self.cutouts[index].file
            array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if array is None or array.ndim != 3 or array.shape[2] != 4:
                raise DatasetError(f'cannot read object cutout {path} as an RGBA image')
            self._cache[index] = cv2.cvtColor(array, cv2.COLOR_BGRA2RGBA)
        return self._cache[index]

    def describe(self) -> dict[str, Any]:
        """What a model's provenance records of the objects it saw."""
        licences: dict[str, int] = {}
        for cutout in self.cutouts:
            name = str(cutout.record.get('image_licence', {}).get('name', 'unknown'))
            licences[name] = licences.get(name, 0) + 1
        return {'root': str(self.root), 'part': self.part, 'cutouts': len(self.cutouts),
                'categories': self.categories, 'held_out_categories': list(self.held_out),
                'excluded_categories': list(self.excluded), 'image_licences': licences}
