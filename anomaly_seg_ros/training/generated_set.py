"""The data generator's output, cached on disk and reused.

One folder per (split, source) under the cache root, named by a key: a hash of the network files
that made it (segmentation, synthesis, perceptual), the perceptual calibration, the stage sizes,
the frames (dataset, split, names) and the generator settings. A changed model or setting gives a new
key, so a stale set is never reused. A folder holds ``meta.yaml`` and one ``.npy`` per array (read
memory-mapped); it is written under a temporary name and renamed when complete.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from ..model_config import ModelConfig
from ..stage_modules import load_stage_modules
from .common import file_sha256, progress, rng_for
from .config import DataGeneratorConfig
from .data_generator import PastedObjects, generate_batch
from .distributed import Dist, DistributedError
from .frames import Frames
from .predicted import PredictedFrames

__all__ = ['GENERATOR_VERSION', 'GeneratedSet', 'generated_set_key', 'load_or_generate']

GENERATOR_VERSION = 2  # 2: void policy, source C
_ARRAYS = ('image', 'synthesis', 'semantic', 'uncertainty', 'labels')


@dataclass
class GeneratedSet:
    """Memory-mapped samples of one (split, source); see :class:`.data_generator.GeneratedBatch`."""

    directory: Path
    arrays: dict[str, np.ndarray]
    names: list[str]
    meta: dict[str, Any]

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def open(cls, directory: str | Path) -> GeneratedSet:
        directory = Path(directory)
        meta = yaml.safe_load((directory / 'meta.yaml').read_text())
        count = int(meta['count'])
        arrays = {name: np.load(directory / f'{name}.npy', mmap_mode='r')[:count] for name in _ARRAYS}
        return cls(directory, arrays, list(meta['names']), meta)


def load_or_generate(model_dir: str | Path, model: ModelConfig, frames: Frames | PredictedFrames, split: str,
                     source: str, settings: DataGeneratorConfig, seed: int, cache_root: str | Path,
                     device: torch.device, show_progress: bool = True,
                     log: Callable[[str], None] = print, dist: Dist | None = None,
                     pasted: PastedObjects | None = None) -> GeneratedSet:
    """The generated set of ``source`` for ``frames``: from the cache when present, else generated.

    With several processes each rank generates a contiguous share of the frames into
    ``<key>.partial/rank<r>/`` and rank 0 concatenates the shares in rank order (= frame order); every
    frame's swaps are drawn from (seed, frame index), so the set is the one a single process makes.
    """
    dist = dist or Dist()
    model_dir, cache_root = Path(model_dir), Path(cache_root)
    key, description = generated_set_key(model_dir, model, frames, split, source, settings, seed, pasted)
    target = cache_root / key
    if dist.broadcast((target / 'meta.yaml').is_file()):  # rank 0 decides: no rank may generate alone
        log(f'data generator: reusing {target} ({split}, source {source})')
        return _open(target, dist)
    modules = load_stage_modules(model_dir, model, device, stages=('segmentation', 'synthesis', 'perceptual'))
    size = tuple(model.stage('dissimilarity').input_size)
    partial = cache_root / f'{key}.partial'
    if dist.is_main:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    dist.barrier()
    n = len(frames)
    share = dist.shard(n)
    directory = partial / f'rank{dist.rank:03d}' if dist.is_distributed else partial
    count, kept = _generate_share(frames, share, source, modules, model, size, settings, seed, device, directory,
                                  progress_enabled=show_progress, desc=f'generate {split} {source}', pasted=pasted)
    if dist.is_distributed:
        (directory / 'names.yaml').write_text(yaml.safe_dump({'count': count, 'names': kept}))
    dist.barrier()
    if dist.is_main:
        if dist.is_distributed:
            count, kept = _merge_shares(partial, dist.world_size, size)
        labels = np.load(partial / 'labels.npy', mmap_mode='r')[:count]
        anomaly = int(np.count_nonzero(labels == 1))
        inlier = int(np.count_nonzero(labels == 0))
        meta = {'key': key, 'count': count, 'names': kept, 'description': description,
                'pixels': {'anomaly': anomaly, 'inlier': inlier, 'ignored': int(labels.size - anomaly - inlier)}}
        del labels
        (partial / 'meta.yaml').write_text(yaml.safe_dump(meta, sort_keys=False))
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        log(f'data generator: {split} source {source}: {count} samples from {n} frames '
            f'({anomaly / max(anomaly + inlier, 1):.2%} anomaly pixels) -> {target}'
            + (f' ({dist.world_size} processes)' if dist.is_distributed else ''))
    return _open(target, dist)


def _open(target: Path, dist: Dist) -> GeneratedSet:
    dist.barrier()  # rank 0 has renamed the finished set into place
    if not (target / 'meta.yaml').is_file():
        raise DistributedError(f'rank {dist.rank} cannot see {target}, which rank 0 wrote: the cache directory '
                               '(--cache-dir, default <work>/generated) must be on a filesystem every node shares')
    return GeneratedSet.open(target)


def _arrays(directory: Path, rows: int, size: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Fresh ``.npy`` arrays of ``rows`` samples at the dissimilarity ``size`` in ``directory``."""
    shapes = {'image': (rows, 3, *size), 'synthesis': (rows, 3, *size), 'semantic': (rows, *size),
              'uncertainty': (rows, 3, *size), 'labels': (rows, *size)}
    dtypes = {'uncertainty': np.float16}
    directory.mkdir(parents=True, exist_ok=True)
    if rows == 0:  # a rank with no frame (fewer frames than processes): a zero-length file cannot be mapped
        for name in _ARRAYS:
            np.save(directory / f'{name}.npy', np.zeros(shapes[name], dtype=dtypes.get(name, np.uint8)))
        return {name: np.zeros(shapes[name], dtype=dtypes.get(name, np.uint8)) for name in _ARRAYS}
    return {name: np.lib.format.open_memmap(directory / f'{name}.npy', mode='w+', dtype=dtypes.get(name, np.uint8),
                                            shape=shapes[name]) for name in _ARRAYS}


def _generate_share(frames: Frames | PredictedFrames, share: range, source: str, modules: dict[str, torch.nn.Module],
                    model: ModelConfig, size: tuple[int, ...], settings: DataGeneratorConfig, seed: int,
                    device: torch.device, directory: Path, progress_enabled: bool,
                    desc: str, pasted: PastedObjects | None = None) -> tuple[int, list[str]]:
    """Generate the samples of the frames ``share`` into ``directory``; returns (samples, their names)."""
    arrays = _arrays(directory, len(share), size)
    count, kept = 0, []
    batch_size = max(1, settings.batch_size)
    for start in progress(range(share.start, share.stop, batch_size), progress_enabled, desc=desc, unit='batch'):
        indices = list(range(start, min(start + batch_size, share.stop)))
        batch = generate_batch([frames[i] for i in indices], source, modules, model.label_set, size, device,
                               [rng_for(seed, 0xA5A5, i) for i in indices], settings.swap_probability,
                               settings.min_instance_pixels, pasted, settings.void)
        k = len(batch.names)
        for name in _ARRAYS:
            if k:
                arrays[name][count:count + k] = getattr(batch, name)
        count += k
        kept += batch.names
    for array in arrays.values():
        if isinstance(array, np.memmap):
            array.flush()
    return count, kept


def _merge_shares(partial: Path, world_size: int, size: tuple[int, ...]) -> tuple[int, list[str]]:
    """Concatenate the ranks' shares (``partial/rank<r>/``) in rank order into ``partial``'s arrays."""
    shares = []
    for rank in range(world_size):
        directory = partial / f'rank{rank:03d}'
        if not (directory / 'names.yaml').is_file():
            raise DistributedError(f'{directory}: rank {rank}\'s share of the generated set is missing; the cache '
                                   'directory must be on a filesystem every node shares')
        shares.append((directory, yaml.safe_load((directory / 'names.yaml').read_text())))
    count = sum(int(info['count']) for _, info in shares)
    arrays = _arrays(partial, count, size)
    at, kept = 0, []
    for directory, info in shares:
        k = int(info['count'])
        for name in _ARRAYS:
            if k:
                arrays[name][at:at + k] = np.load(directory / f'{name}.npy', mmap_mode='r')[:k]
        at += k
        kept += list(info['names'])
    for array in arrays.values():
        if isinstance(array, np.memmap):
            array.flush()
    del arrays
    for directory, _ in shares:
        shutil.rmtree(directory)
    return count, kept


def generated_set_key(model_dir: Path, model: ModelConfig, frames: Frames | PredictedFrames, split: str, source: str,
                      settings: DataGeneratorConfig, seed: int,
                      pasted: PastedObjects | None = None) -> tuple[str, dict[str, Any]]:
    """(folder name, the description its key hashes) of the generated set of ``source`` for ``frames``."""
    names = list(getattr(frames.dataset, 'names', []))[: len(frames)]
    frames_hash = hashlib.sha256('\n'.join(names).encode()).hexdigest()
    description = {
        'version': GENERATOR_VERSION, 'split': split, 'source': source, 'seed': seed,
        'dataset': type(frames.dataset).__name__, 'root': str(getattr(frames.dataset, 'root', '')),
        # Source C segments each pasted frame: its map is always the prediction.
        'semantic': 'predicted' if isinstance(frames, PredictedFrames) or source == 'C' else 'ground_truth',
        'frames': frames_hash, 'count': len(frames),
        'sizes': {s: list(model.stage(s).input_size) for s in model.stages},
        'perceptual': {'scale': model.perceptual_scale, 'normalization': model.perceptual_normalization},
        'networks': {s: file_sha256(model_dir / model.stage(s).files.get('torch', f'{s}.pt'))
                     for s in ('segmentation', 'synthesis', 'perceptual')},
        'generator': {'swap_probability': settings.swap_probability,
                      'min_instance_pixels': settings.min_instance_pixels} if source == 'A' else None,
        'void': settings.void,
        'pasted': None if pasted is None or source != 'C' else {
            'objects': str(pasted.bank.root), 'part': pasted.bank.part, 'cutouts': len(pasted.bank),
            'settings': dataclasses.asdict(pasted.settings)},
    }
    key = hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:16]
    return f'{split}_{source}_{key}', description
