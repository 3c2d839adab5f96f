"""Pieces of the epoch loop shared by the trainers: deterministic batches, losses, normalization."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import AnomalySegError
from ..labels import IGNORE_INDEX, get_label_set
from ..model_config import ModelConfig
from .common import rng_for, seed_everything, select_device
from .config import TrainConfig
from .frames import check_data, open_frames
from .model_dir import prepare_model_dir

__all__ = ['EpochData', 'StageStart', 'StartPoint', 'begin_stage', 'cross_entropy', 'normalize_images', 'resume_from']


class StageStart(NamedTuple):
    """What a trainer works with: its folders, device, the model directory's metadata and the training
    split's dataset (frames are resized by the trainer, to its own input size)."""
    out_dir: Path
    work: Path
    device: torch.device
    model: ModelConfig
    train_dataset: Any


def begin_stage(config: TrainConfig, stage: str, out_dir: str | Path, work_dir: str | Path | None) -> StageStart:
    """What every trainer does first: seed, pick the device, check the data (a bad dataset stops the run
    here, before anything is written), and create or extend the model directory for the training split's
    label set (or ``config.label_set``). Checkpoints and logs go to ``<work_dir>/<stage>`` (default
    ``<out_dir>/training/<stage>``)."""
    out_dir = Path(out_dir)
    work = Path(work_dir or out_dir / 'training') / stage
    device = select_device(config.device)
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
    return StageStart(out_dir, work, device, prepare_model_dir(out_dir, config, label_set), train.dataset)


class EpochData(torch.utils.data.Dataset):
    """Items made by ``make(index, rng)`` with a generator that depends only on (seed, epoch, index).

    ``batches(epoch)`` yields batches in an order drawn from (seed, epoch): a resumed run sees
    exactly the batches an uninterrupted run would.
    """

    def __init__(self, count: int, make: Callable[[int, np.random.Generator], Any], seed: int) -> None:
        self.count = int(count)
        self.make = make
        self.seed = int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Any:
        return self.make(index, rng_for(self.seed, self.epoch, index))

    def order(self, epoch: int, batch_size: int, steps: int | None = None) -> list[int]:
        """Shuffled indices of ``epoch``, whole batches only (at least one batch)."""
        order = rng_for(self.seed, epoch, -1).permutation(self.count).tolist()
        usable = (self.count // batch_size) * batch_size if self.count >= batch_size else self.count
        order = order[:usable]
        if steps is not None:
            order = order[: steps * batch_size]
        return order

    def loader(self, epoch: int, batch_size: int, steps: int | None = None,
               num_workers: int = 0) -> torch.utils.data.DataLoader:
        self.epoch = epoch
        return torch.utils.data.DataLoader(self, batch_size=batch_size, sampler=self.order(epoch, batch_size, steps),
                                           num_workers=num_workers, drop_last=False)

    def steps(self, batch_size: int, steps: int | None = None) -> int:
        return -(-len(self.order(0, batch_size, steps)) // batch_size)


def normalize_images(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """uint8 (N, 3, H, W) or float [0, 1] -> float32 normalized with ``mean``/``std``."""
    x = images.float()
    if images.dtype == torch.uint8:
        x = x / 255.0
    m = torch.tensor(list(mean), device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(list(std), device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


def cross_entropy(logits: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Cross-entropy with ignore index 255; zero (with a graph) when no pixel is labelled."""
    if not bool((target != IGNORE_INDEX).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, target.long(), weight=weight, ignore_index=IGNORE_INDEX)


class StartPoint(NamedTuple):
    """Where a training loop starts: zeros for a fresh run, the checkpoint's counters when resumed."""
    epoch: int
    step: int
    history: list
    elapsed: float
    resumed: bool


def resume_from(checkpoint: Any, resume: bool, stage: str, device: torch.device,
                parts: Mapping[str, Any]) -> StartPoint:
    """Load the checkpoint into ``parts`` (state-dict key -> module, optimizer or scheduler) when
    resuming and one exists; checks the checkpoint belongs to ``stage``."""
    if not resume or not checkpoint.exists():
        return StartPoint(0, 0, [], 0.0, resumed=False)
    state = checkpoint.load(device)
    if state.get('stage') != stage:
        raise AnomalySegError(f'{checkpoint.path} is a {state.get("stage")!r} checkpoint, not {stage!r}; '
                              'point --work elsewhere or delete it')
    for key, part in parts.items():
        part.load_state_dict(state[key])
    return StartPoint(state['epoch'], state['step'], state['history'], state['elapsed'], resumed=True)
