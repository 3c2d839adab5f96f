"""Load every sample of a dataset once (validating each pair) and count what it holds."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from .sample import Dataset

__all__ = ['DatasetSummary', 'summarize']


@dataclass
class DatasetSummary:
    """Counts over a dataset.

    Attributes:
        samples: number of samples loaded.
        sizes: image size ``(width, height)`` -> number of samples.
        class_pixels: (256,) int64 pixel count per train id (index 255 = ignore); empty if no semantics.
        void_pixels: pixels of void objects.
        instances: number of distinct object instances (ids >= 1000) summed over samples; None if the
            format has no instance maps.
        anomaly_pixels: (3,) int64 pixels labelled inlier, anomaly, ignore; zeros if no anomaly labels.
    """

    samples: int = 0
    sizes: Counter = field(default_factory=Counter)
    class_pixels: np.ndarray = field(default_factory=lambda: np.zeros(256, dtype=np.int64))
    void_pixels: int = 0
    instances: int | None = None
    anomaly_pixels: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=np.int64))

    def lines(self, class_names: tuple[str, ...] | None = None) -> list[str]:
        """Human-readable report lines."""
        sizes = ', '.join(f'{w}x{h} ({n})' for (w, h), n in self.sizes.most_common())
        out = [f'samples: {self.samples}', f'image sizes: {sizes or "-"}']
        total = int(self.class_pixels.sum())
        if total:
            out.append('class pixels (train id, name, share):')
            names = class_names or ()
            for train_id in np.flatnonzero(self.class_pixels):
                name = names[train_id] if train_id < len(names) else ('ignore' if train_id == 255 else '?')
                out.append(f'  {train_id:3d}  {name:<16s} {100.0 * self.class_pixels[train_id] / total:6.2f} %')
            out.append(f'void-object pixels: {100.0 * self.void_pixels / total:.2f} %')
            if self.instances is not None:
                out.append(f'object instances: {self.instances}')
        anomaly_total = int(self.anomaly_pixels.sum())
        if anomaly_total:
            inlier, anomaly, ignore = (100.0 * v / anomaly_total for v in self.anomaly_pixels)
            out.append(f'anomaly labels: inlier {inlier:.2f} %, anomaly {anomaly:.2f} %, ignore {ignore:.2f} %')
        return out


def summarize(dataset: Dataset, progress: bool = True, limit: int | None = None) -> DatasetSummary:
    """Load samples ``0..limit-1`` (all by default); raises the reader's DatasetError on a bad pair."""
    summary = DatasetSummary()
    count = len(dataset) if limit is None else min(limit, len(dataset))
    for i in tqdm(range(count), unit='sample', desc='check', disable=not progress):
        sample = dataset[i]
        summary.samples += 1
        summary.sizes[(sample.image.shape[1], sample.image.shape[0])] += 1
        if sample.semantic is not None:
            summary.class_pixels += np.bincount(sample.semantic.ravel(), minlength=256)
        if sample.void is not None:
            summary.void_pixels += int(np.count_nonzero(sample.void))
        if sample.instance is not None:
            summary.instances = (summary.instances or 0) + int(np.unique(sample.instance[sample.instance >= 1000]).size)
        if sample.anomaly is not None:
            counts = np.bincount(sample.anomaly.ravel(), minlength=256)
            summary.anomaly_pixels += np.array([counts[0], counts[1], counts[2:].sum()])
    return summary
