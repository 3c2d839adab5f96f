"""Pieces of the epoch loop shared by the trainers: deterministic batches, losses, normalization,
and the start of every stage (process group, precision, model directory)."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import AnomalySegError
from ..labels import IGNORE_INDEX, get_label_set
from ..model_config import ModelConfig
from .common import rng_for, seed_everything
from .config import TrainConfig, config_to_dict
from .distributed import Dist, DistributedError, init_distributed
from .frames import check_data, open_frames
from .model_dir import prepare_model_dir
from .precision import Precision

__all__ = [
    'EpochData',
    'StageStart',
    'StartPoint',
    'begin_stage',
    'cross_entropy',
    'data_workers',
    'normalize_images',
    'resume_from',
    'resumed_note',
    'run_record',
    'save_epoch',
]


class StageStart(NamedTuple):
    """What a trainer works with: its folders, device, the model directory's metadata and the training
    split's dataset (frames are resized by the trainer, to its own input size)."""
    out_dir: Path
    work: Path
    device: torch.device
    model: ModelConfig
    train_dataset: Any
    dist: Dist
    precision: Precision


def begin_stage(config: TrainConfig, stage: str, out_dir: str | Path, work_dir: str | Path | None) -> StageStart:
    """What every trainer does first: join the process group (under torchrun; see :mod:`.distributed`),
    pick the device and precision, seed, check the data (a bad dataset stops the run here, before anything
    is written), and create or extend the model directory for the training split's label set (or
    ``config.label_set``; rank 0 writes it). Checkpoints and logs go to ``<work_dir>/<stage>`` (default
    ``<out_dir>/training/<stage>``)."""
    out_dir = Path(out_dir)
    work = Path(work_dir or out_dir / 'training') / stage
    dist = init_distributed(config.device)
    device = dist.device
    precision = Precision(config.precision, device, config.channels_last, config.cudnn_benchmark)
    seed_everything(config.seed)
    check_data(config.data)
    train = open_frames(config.data, config.data.train_split, (1, 1), limit=config.data.train_limit)
    label_set = train.label_set
    if config.label_set:
        try:
            label_set = get_label_set(config.label_set)
        except KeyError as exc:
            raise AnomalySegError(f'label_set: {exc.args[0]}') from None
        if train.label_set is not None and label_set.class_names != train.label_set.class_names \
                and config.data.semantic != 'predicted':
            raise AnomalySegError(f'label_set {label_set.name!r} is not the classes of the {config.data.dataset} '
                                  f'labels ({train.label_set.name}); set data.semantic: predicted so the later '
                                  'stages learn from the segmentation stage\'s own maps')
    model = prepare_model_dir(out_dir, config, label_set) if dist.is_main else None
    dist.barrier()
    if model is None:  # rank 0 created model.yaml; the others read (and check) it
        model = prepare_model_dir(out_dir, config, label_set)
    return StageStart(out_dir, work, device, model, train.dataset, dist, precision)


def data_workers(setting: int | None, dist: Dist) -> int:
    """Data loader workers per process: ``setting``, or automatically 0 on the CPU (workers would take the
    cores the training itself needs) and on CUDA up to 4, from this process's share of the node's cores."""
    if setting is not None:
        return int(setting)
    if dist.device.type != 'cuda':
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)
    return max(0, min(4, cores // max(dist.local_world_size, 1) - 1))


class _EpochBatches(torch.utils.data.Sampler):
    """This rank's batches of the current epoch as lists of (epoch, index) keys: the epoch travels with the
    keys, so persistent workers make the same items as the main process would."""

    def __init__(self, data: EpochData, batch_size: int, steps: int | None, dist: Dist) -> None:
        self.data, self.batch_size, self.steps, self.dist = data, batch_size, steps, dist
        self.epoch = 0

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for batch in self.data.batches(self.epoch, self.batch_size, self.steps, self.dist):
            yield [(self.epoch, index) for index in batch]

    def __len__(self) -> int:
        return len(self.data.batches(self.epoch, self.batch_size, self.steps, self.dist))


class EpochData(torch.utils.data.Dataset):
    """Items made by ``make(index, rng)`` with a generator that depends only on (seed, epoch, index).

    ``batches(epoch)`` gives batches in an order drawn from (seed, epoch): a resumed run sees
    exactly the batches an uninterrupted run would. With N processes every step takes the next global
    batch of N * batch_size indices of that order and each rank its own slice of it, so N processes see
    per step the samples one process with batch N * batch_size sees.
    """

    def __init__(self, count: int, make: Callable[[int, np.random.Generator], Any], seed: int) -> None:
        self.count = int(count)
        self.make = make
        self.seed = int(seed)
        self.epoch = 0
        self._loader: torch.utils.data.DataLoader | None = None
        self._loader_key: tuple[Any, ...] | None = None

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, key: int | tuple[int, int]) -> Any:
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        return self.make(index, rng_for(self.seed, epoch, index))

    def order(self, epoch: int, batch_size: int, steps: int | None = None) -> list[int]:
        """Shuffled indices of ``epoch``, whole batches only (at least one batch)."""
        order = rng_for(self.seed, epoch, -1).permutation(self.count).tolist()
        usable = (self.count // batch_size) * batch_size if self.count >= batch_size else self.count
        order = order[:usable]
        if steps is not None:
            order = order[: steps * batch_size]
        return order

    def batches(self, epoch: int, batch_size: int, steps: int | None = None,
                dist: Dist | None = None) -> list[list[int]]:
        """This rank's batches of ``epoch`` (``batch_size`` per process)."""
        dist = dist or Dist()
        size = batch_size * dist.world_size
        order = self.order(epoch, size, steps)
        return [dist.shard_batch(order[i:i + size]) for i in range(0, len(order), size)]

    def loader(self, epoch: int, batch_size: int, steps: int | None = None, num_workers: int = 0,
               dist: Dist | None = None) -> torch.utils.data.DataLoader:
        """The batches of ``epoch``; one loader serves every epoch, so workers (and the frames they have
        decoded) persist across epochs."""
        dist = dist or Dist()
        self.epoch = epoch
        key = (batch_size, steps, num_workers, dist.rank, dist.world_size)
        if self._loader is None or self._loader_key != key:
            sampler = _EpochBatches(self, batch_size, steps, dist)
            self._loader = torch.utils.data.DataLoader(self, batch_sampler=sampler, num_workers=num_workers,
                                                       persistent_workers=num_workers > 0,
                                                       pin_memory=dist.device.type == 'cuda')
            self._loader_key = key
        self._loader.batch_sampler.epoch = epoch  # type: ignore[union-attr]
        return self._loader

    def steps(self, batch_size: int, steps: int | None = None, world_size: int = 1) -> int:
        """Steps per epoch with ``batch_size`` per process and ``world_size`` processes."""
        size = batch_size * world_size
        return -(-len(self.order(0, size, steps)) // size)


def normalize_images(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """uint8 (N, 3, H, W) or float [0, 1] -> float32 normalized with ``mean``/``std``."""
    x = images.float()
    if images.dtype == torch.uint8:
        x = x / 255.0
    m = torch.tensor(list(mean), device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(list(std), device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


def cross_entropy(logits: Tensor, target: Tensor, weight: Tensor | None = None, dist: Dist | None = None) -> Tensor:
    """Cross-entropy with ignore index 255; zero (with a graph) when no pixel is labelled.

    With several processes the mean is taken over the labelled pixels of the global batch: each rank's
    sum is divided by the global (class-weighted) pixel count and multiplied by the number of ranks,
    which DDP's gradient averaging divides out again. A per-rank mean would weigh a rank's pixels by
    how many of its pixels are labelled (crops padded with ignore, void regions), and N processes would
    no longer compute the gradient of one process with the N-times batch.
    """
    if dist is None or not dist.is_distributed:
        if not bool((target != IGNORE_INDEX).any()):
            return logits.sum() * 0.0
        return F.cross_entropy(logits, target.long(), weight=weight, ignore_index=IGNORE_INDEX)
    target = target.long()
    labelled = target != IGNORE_INDEX
    local = weight[target[labelled]].sum() if weight is not None else labelled.sum()
    total = float(dist.all_sum(local.to(torch.float64)))
    if total == 0:
        return logits.sum() * 0.0
    summed = F.cross_entropy(logits, target, weight=weight, ignore_index=IGNORE_INDEX, reduction='sum')
    return summed * (dist.world_size / total)


class StartPoint(NamedTuple):
    """Where a training loop starts: zeros for a fresh run, the checkpoint's counters when resumed.
    ``processes``: how many processes wrote the checkpoint (1 for a fresh run)."""
    epoch: int
    step: int
    history: list
    elapsed: float
    resumed: bool
    processes: int = 1


def resume_from(checkpoint: Any, resume: bool, stage: str, device: torch.device,
                parts: Mapping[str, Any], dist: Dist | None = None,
                optional: Mapping[str, Any] | None = None) -> StartPoint:
    """Load the checkpoint into ``parts`` (state-dict key -> module, optimizer or scheduler) when
    resuming and one exists; checks the checkpoint belongs to ``stage``. ``optional`` parts are loaded
    when the checkpoint has them (the fp16 gradient scaler). Rank 0 decides whether there is a
    checkpoint, so every rank starts from the same point; the checkpoint holds the unwrapped networks'
    state, so any number of processes resumes it."""
    dist = dist or Dist()
    found = dist.broadcast(bool(resume and checkpoint.exists()))
    if not found:
        return StartPoint(0, 0, [], 0.0, resumed=False)
    if not checkpoint.exists():
        raise DistributedError(f'rank {dist.rank} cannot see {checkpoint.path}, which rank 0 resumes from: the '
                               'work directory must be on a filesystem every node shares')
    state = checkpoint.load(device)
    if state.get('stage') != stage:
        raise AnomalySegError(f'{checkpoint.path} is a {state.get("stage")!r} checkpoint, not {stage!r}; '
                              'point --work elsewhere or delete it')
    for key, part in parts.items():
        part.load_state_dict(state[key])
    for key, part in (optional or {}).items():
        if state.get(key) is not None:
            part.load_state_dict(state[key])
    return StartPoint(state['epoch'], state['step'], state['history'], state['elapsed'], resumed=True,
                      processes=int(state.get('processes', 1)))


def save_epoch(checkpoint: Any, config: TrainConfig, stage: str, parts: Mapping[str, Any], dist: Dist,
               precision: Precision, *, epoch: int, step: int, history: list, elapsed: float) -> None:
    """The end-of-epoch checkpoint, what :func:`resume_from` reads back: rank 0 writes ``parts`` (state-dict
    key -> module, optimizer or scheduler) with the fp16 gradient scaler where there is one; every rank waits
    until it is written."""
    if dist.is_main:
        state = {'stage': stage, 'epoch': epoch, 'step': step,
                 **{key: part.state_dict() for key, part in parts.items()}, 'history': history,
                 'elapsed': elapsed, 'config': config_to_dict(config), 'processes': dist.world_size}
        if precision.state_dict() is not None:
            state['scaler'] = precision.state_dict()
        checkpoint.save(config, state)
    dist.barrier()


def resumed_note(start: StartPoint, dist: Dist) -> str:
    """The resume message's note when the checkpoint was written by another number of processes."""
    if start.processes == dist.world_size:
        return ''
    return f' (written by {start.processes} process(es), continued by {dist.world_size})'


def run_record(dist: Dist, config: TrainConfig) -> dict[str, Any]:
    """What ``model.yaml`` records of a multi-process or mixed-precision run (nothing for a plain one)."""
    record: dict[str, Any] = {}
    if dist.is_distributed:
        record['processes'] = {'count': dist.world_size, 'backend': dist.backend,
                               'sync_batchnorm': config.sync_batchnorm}
    if config.precision != 'fp32':
        record['precision'] = config.precision
    return record
