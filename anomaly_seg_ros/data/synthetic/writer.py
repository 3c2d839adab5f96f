"""Write a synthetic dataset folder (resumable: frames already on disk are skipped).

Layout::

    DIR/dataset.yaml                                              generator version, seed, size, counts
    DIR/leftImg8bit/{train,val}/synth/<name>_leftImg8bit.png     RGB
    DIR/gtFine/{train,val}/synth/<name>_gtFine_labelIds.png      uint8 Cityscapes labelIds
    DIR/gtFine/{train,val}/synth/<name>_gtFine_instanceIds.png   uint16, labelId*1000+k on cars/people
    DIR/anomaly_test/original/<name>.png                         RGB (Fishyscapes layout)
    DIR/anomaly_test/labels/<name>.png                           uint8 0 inlier, 1 anomaly, 255 void object

``<name>`` is ``<split>_<index:06d>``. Read it back with
``open_dataset('synthetic', DIR, split)``.
"""
from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from ...errors import DatasetError
from .anomalies import ANOMALY_KINDS
from .props import VOID_KINDS
from .scene import SPLITS, render_frame

__all__ = ['DEFAULT_COUNTS', 'DEFAULT_SIZE', 'GENERATOR_VERSION', 'GenerationReport', 'frame_name',
           'frame_paths', 'write_dataset', 'write_frame']

# Bump when the drawing changes: a folder made by another version is not resumed.
GENERATOR_VERSION = 1
DEFAULT_SIZE = (512, 256)
DEFAULT_COUNTS = {'train': 400, 'val': 60, 'anomaly_test': 60}
_CITY = 'synth'


class GenerationReport(NamedTuple):
    """What :func:`write_dataset` did.

    ``seconds`` (wall clock) and ``cpu_seconds`` (this process's CPU time) count only the frames
    it rendered and wrote; the generator is single-threaded, so CPU time is the one-core cost
    even when other processes compete for the machine.
    """

    written: int
    skipped: int
    seconds: float
    cpu_seconds: float = 0.0

    @property
    def frames_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else float('nan')

    @property
    def frames_per_cpu_second(self) -> float:
        return self.written / self.cpu_seconds if self.cpu_seconds > 0 else float('nan')


def frame_name(split: str, index: int) -> str:
    return f'{split}_{index:06d}'


def frame_paths(out: str | Path, split: str, index: int) -> dict[str, Path]:
    """The files of one frame: keys ``image`` plus ``label_ids``/``instance_ids`` or ``anomaly``."""
    out = Path(out)
    name = frame_name(split, index)
    if split == 'anomaly_test':
        return {'image': out / split / 'original' / f'{name}.png', 'anomaly': out / split / 'labels' / f'{name}.png'}
    return {'image': out / 'leftImg8bit' / split / _CITY / f'{name}_leftImg8bit.png',
            'label_ids': out / 'gtFine' / split / _CITY / f'{name}_gtFine_labelIds.png',
            'instance_ids': out / 'gtFine' / split / _CITY / f'{name}_gtFine_instanceIds.png'}


def write_frame(out: str | Path, seed: int, split: str, index: int, size: tuple[int, int] = DEFAULT_SIZE) -> bool:
    """Render and write one frame unless all its files exist; returns True if it wrote it."""
    paths = frame_paths(out, split, index)
    if all(p.is_file() for p in paths.values()):
        return False
    frame = render_frame(seed, split, index, size[0], size[1])
    # Labels first, image last: a frame counts as present once its image exists.
    if split == 'anomaly_test':
        _write_png(paths['anomaly'], frame.anomaly)
    else:
        if frame.instance_ids.max(initial=0) > np.iinfo(np.uint16).max:
            raise AssertionError('instance ids exceed uint16')
        _write_png(paths['label_ids'], frame.label_ids)
        _write_png(paths['instance_ids'], frame.instance_ids.astype(np.uint16))
    _write_png(paths['image'], cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
    return True


def write_dataset(out: str | Path, counts: Mapping[str, int] | None = None, size: tuple[int, int] = DEFAULT_SIZE,
                  seed: int = 0, progress: bool = True) -> GenerationReport:
    """Generate ``counts[split]`` frames per split into ``out`` (see the module docstring).

    Re-running with the same seed and size resumes (existing frames are kept); a folder made with
    another seed, size or generator version is refused rather than mixed.

    Raises:
        DatasetError: ``out`` holds a different synthetic dataset, or is not writable.
        ValueError: unknown split, negative count, too small size.
    """
    counts = dict(DEFAULT_COUNTS if counts is None else counts)
    for split, n in counts.items():
        if split not in SPLITS:
            raise ValueError(f'unknown synthetic split {split!r}; choose from {", ".join(SPLITS)}')
        if n < 0:
            raise ValueError(f'frame count of {split} must be >= 0, got {n}')
    width, height = size
    if width < 32 or height < 16:
        raise ValueError(f'size must be at least 32x16, got {width}x{height}')
    out = Path(out)
    _write_manifest(out, counts, size, seed)
    jobs = [(split, i) for split in SPLITS for i in range(counts.get(split, 0))]
    written = skipped = 0
    busy = cpu = 0.0
    with tqdm(jobs, total=len(jobs), unit='frame', desc='synthetic', disable=not progress) as bar:
        for split, index in bar:
            start, start_cpu = time.perf_counter(), time.process_time()
            if write_frame(out, seed, split, index, size):
                written += 1
                busy += time.perf_counter() - start
                cpu += time.process_time() - start_cpu
            else:
                skipped += 1
    return GenerationReport(written, skipped, busy, cpu)


def _write_manifest(out: Path, counts: Mapping[str, int], size: tuple[int, int], seed: int) -> None:
    manifest_path = out / 'dataset.yaml'
    old_counts: dict[str, int] = {}
    if manifest_path.is_file():
        try:
            old = yaml.safe_load(manifest_path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise DatasetError(f'cannot read {manifest_path}: {exc}; delete the folder or choose another --out'
                               ) from exc
        mine = {'generator_version': GENERATOR_VERSION, 'seed': int(seed), 'size': [int(size[0]), int(size[1])]}
        theirs = {k: old.get(k) for k in mine}
        if theirs != mine:
            raise DatasetError(f'{out} holds a synthetic dataset made with {theirs}, not {mine}; '
                               f'use the same --seed/--size to extend it, or choose another --out')
        old_counts = {str(k): int(v) for k, v in (old.get('counts') or {}).items()}
    elif out.exists() and any(out.iterdir()):
        raise DatasetError(f'{out} is not empty and has no dataset.yaml; choose an empty or new --out folder')
    manifest = {
        'generator': 'anomaly_seg_ros.data.synthetic',
        'generator_version': GENERATOR_VERSION,
        'seed': int(seed),
        'size': [int(size[0]), int(size[1])],
        'counts': {s: max(int(counts.get(s, 0)), old_counts.get(s, 0)) for s in SPLITS},
        'label_set': 'synthetic',
        'format': {'train': 'cityscapes', 'val': 'cityscapes', 'anomaly_test': 'fishyscapes'},
        'void_label_id': 5,
        'void_kinds': list(VOID_KINDS),
        'anomaly_kinds': list(ANOMALY_KINDS),
        'anomaly_labels': {0: 'inlier', 1: 'anomaly', 255: 'void object (ignored)'},
    }
    try:
        out.mkdir(parents=True, exist_ok=True)
        _atomic_write(manifest_path, yaml.safe_dump(manifest, sort_keys=False).encode())
    except OSError as exc:
        raise DatasetError(f'cannot write {manifest_path}: {exc}; check --out') from exc


def _write_png(path: Path, array: np.ndarray) -> None:
    ok, buffer = cv2.imencode('.png', array)
    if not ok:
        raise DatasetError(f'cannot encode {path} as PNG')
    _atomic_write(path, buffer.tobytes())


def _atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename: no half-written files after a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f'.{path.name}.{os.getpid()}.partial')
    try:
        temp.write_bytes(data)
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise DatasetError(f'cannot write {path}: {exc}') from exc
