"""Multi-process training with PyTorch's own engine: ``torchrun`` + DistributedDataParallel.

``torchrun --nproc_per_node N -m anomaly_seg_ros.cli train <stage|all> ...`` starts N processes with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` set; :func:`init_distributed`
reads them (``env://``) and joins the process group: NCCL with one GPU per process (``cuda:LOCAL_RANK``)
on CUDA, gloo on CPU. Without those variables (or with ``WORLD_SIZE=1``) training runs in one process,
exactly as before.

Conventions every trainer follows (:class:`Dist` holds the helpers):

- ``batch_size`` is per process: a step of N processes sees the global batch of N * batch_size samples
  that one process with that batch would see, drawn from the same seeded order (:meth:`Dist.shard_batch`).
- Rank 0 alone writes: checkpoints, ``config.yaml``, ``metrics.csv``, TensorBoard, sample sheets, the model
  directory; it alone validates, prints and shows progress bars. The others wait at a barrier, so the
  work, model and cache directories must be on a filesystem every node sees (one machine: any folder).
- Validation figures are broadcast from rank 0, so schedulers that read them step alike on every rank.
"""
from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import torch
import torch.distributed as torch_dist
from torch import nn

from ..errors import AnomalySegError
from .common import select_device

__all__ = [
    'ENV_VARIABLES',
    'Dist',
    'DistributedError',
    'LaunchEnv',
    'convert_sync_batchnorm',
    'init_distributed',
    'launch_environment',
    'shutdown_distributed',
]

# What torchrun (and any env:// launcher) sets for every process; all of them or none.
ENV_VARIABLES = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')
# Ranks other than 0 wait while rank 0 validates, segments frames for data.semantic: predicted or writes
# files; the default timeouts (NCCL 10 min) are too short for that on a large dataset.
_TIMEOUT = datetime.timedelta(hours=2)

T = TypeVar('T')


class DistributedError(AnomalySegError):
    """The multi-process environment is incomplete or inconsistent, or a rank's work is missing."""


class LaunchEnv(NamedTuple):
    """The launcher's variables: this process's global and local rank, the process counts."""
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int


def launch_environment(environ: Mapping[str, str] | None = None) -> LaunchEnv | None:
    """The env:// launch variables, or None when none is set (a plain one-process run).

    Raises:
        DistributedError: some variables are set and others are not, or their values do not fit together.
    """
    environ = os.environ if environ is None else environ
    present = [name for name in ENV_VARIABLES if environ.get(name, '') != '']
    if not present:
        return None
    missing = [name for name in ENV_VARIABLES if name not in present]
    if missing:
        raise DistributedError(
            f'incomplete distributed environment: {", ".join(present)} set but {", ".join(missing)} missing; '
            'launch with torchrun (e.g. `torchrun --nproc_per_node 2 -m anomaly_seg_ros.cli train ...`), which '
            f'sets all of {", ".join(ENV_VARIABLES)}, or unset them for a one-process run')
    values = {}
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_PORT', 'LOCAL_WORLD_SIZE'):
        text = environ.get(name, '')
        if name == 'LOCAL_WORLD_SIZE' and text == '':
            continue
        try:
            values[name] = int(text)
        except ValueError:
            raise DistributedError(f'{name}={text!r} is not an integer') from None
    rank, world, local = values['RANK'], values['WORLD_SIZE'], values['LOCAL_RANK']
    local_world = values.get('LOCAL_WORLD_SIZE', world)
    if world < 1 or not 0 <= rank < world:
        raise DistributedError(f'RANK={rank} with WORLD_SIZE={world}: need 0 <= RANK < WORLD_SIZE')
    if not 0 <= local < max(local_world, 1):
        raise DistributedError(f'LOCAL_RANK={local} with LOCAL_WORLD_SIZE={local_world}: '
                               'need 0 <= LOCAL_RANK < LOCAL_WORLD_SIZE')
    return LaunchEnv(rank, world, local, local_world)


@dataclass
class Dist:
    """This process's place in the run (one process: rank 0 of 1) and the collectives the trainers use."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device('cpu'))

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files, validates and prints."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def backend(self) -> str | None:
        return torch_dist.get_backend() if self.is_distributed else None

    def barrier(self) -> None:
        if self.is_distributed:
            torch_dist.barrier()

    def broadcast(self, value: T) -> T:
        """Rank 0's ``value`` on every rank (any picklable object)."""
        if not self.is_distributed:
            return value
        box = [value if self.is_main else None]
        torch_dist.broadcast_object_list(box, src=0)
        return box[0]  # type: ignore[return-value]

    def all_gather(self, value: T) -> list[T]:
        """Every rank's ``value`` (picklable), in rank order."""
        if not self.is_distributed:
            return [value]
        out: list[Any] = [None] * self.world_size
        torch_dist.all_gather_object(out, value)
        return out

    def all_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum of ``tensor`` over the ranks (a new tensor; no gradient)."""
        total = tensor.detach().clone()
        if self.is_distributed:
            torch_dist.all_reduce(total)
        return total

    def mean_scalars(self, values: Mapping[str, float]) -> dict[str, float]:
        """Per-key mean over the ranks: the figure one process would log for the global batch."""
        if not self.is_distributed or not values:
            return dict(values)
        keys = list(values)
        total = self.all_sum(torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=self.device))
        return {k: float(v) / self.world_size for k, v in zip(keys, total.tolist())}

    def shard(self, count: int) -> range:
        """This rank's contiguous share of ``range(count)`` (shares differ by at most one; rank order is
        index order, so concatenating the shares by rank gives back ``range(count)``)."""
        base, extra = divmod(int(count), self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return range(start, start + base + (1 if self.rank < extra else 0))

    def shard_batch(self, batch: Sequence[T]) -> list[T]:
        """This rank's part of one global batch; equal parts when the batch divides evenly."""
        n = len(batch)
        if n < self.world_size:
            raise DistributedError(f'a global batch of {n} samples cannot feed {self.world_size} processes; '
                                   'use more data, fewer processes or a larger batch')
        part = self.shard(n)
        return list(batch[part.start:part.stop])

    def main_only(self, log: Callable[[str], None]) -> Callable[[str], None]:
        """``log`` on rank 0, a no-op elsewhere."""
        return log if self.is_main else _silent

    def wrap(self, module: nn.Module, sync_batchnorm: bool = False) -> nn.Module:
        """``module`` in DistributedDataParallel (one process: ``module`` itself). With ``sync_batchnorm``
        its BatchNorm layers normalize with the statistics of the global batch (converted in place)."""
        if not self.is_distributed:
            return module
        if sync_batchnorm:
            module = convert_sync_batchnorm(module, self.device)
        if self.device.type == 'cuda':
            return nn.parallel.DistributedDataParallel(module, device_ids=[self.device.index],
                                                       output_device=self.device.index)
        return nn.parallel.DistributedDataParallel(module)


def _silent(_: str) -> None:
    pass


def _launch_device(device_name: str | None, env: LaunchEnv) -> torch.device:
    """One GPU per process (``cuda:LOCAL_RANK``) on CUDA, else the CPU."""
    name = device_name or 'auto'
    if name.startswith('cuda:'):
        raise DistributedError(f'--device {name} names one GPU, but under torchrun every process takes '
                               'cuda:LOCAL_RANK; use --device cuda or auto (CUDA_VISIBLE_DEVICES picks the GPUs)')
    device = select_device(name)
    if device.type != 'cuda':
        return device
    count = torch.cuda.device_count()
    if env.local_rank >= count:
        raise DistributedError(f'LOCAL_RANK={env.local_rank} but this node sees {count} GPU(s); start at most '
                               f'{count} processes per node (--nproc_per_node)')
    return torch.device('cuda', env.local_rank)


def init_distributed(device_name: str | None = 'auto') -> Dist:
    """Join the process group the launcher describes (once per process) and return this process's
    :class:`Dist`; a plain one-process :class:`Dist` on ``device_name`` when no launcher set the
    environment or ``WORLD_SIZE`` is 1.

    Raises:
        DistributedError: a half-set environment (:func:`launch_environment`), ``--device cuda:N``
            under a launcher, or more processes on a node than it has GPUs.
    """
    env = launch_environment()
    if env is None or env.world_size == 1:
        return Dist(device=select_device(device_name or 'auto'))
    device = _launch_device(device_name, env)
    if not torch_dist.is_initialized():
        if device.type == 'cuda':
            torch.cuda.set_device(device)
        backend = 'nccl' if device.type == 'cuda' else 'gloo'
        torch_dist.init_process_group(backend, init_method='env://', timeout=_TIMEOUT)
    elif torch_dist.get_world_size() != env.world_size:
        raise DistributedError(f'the process group has {torch_dist.get_world_size()} processes, '
                               f'WORLD_SIZE says {env.world_size}')
    return Dist(env.rank, env.world_size, env.local_rank, env.local_world_size, device)


def shutdown_distributed() -> None:
    """Leave the process group (no-op without one)."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


class _GlooSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d with batch statistics over every rank, for CPU (gloo) runs.

    ``torch.nn.SyncBatchNorm`` only runs on GPUs; this does the same with PyTorch's autograd-aware
    all-reduce (``torch.distributed._functional_collectives.all_reduce``, which PyTorch names as the
    successor of ``torch.distributed.nn.functional.all_reduce``), whose backward sums the gradients of
    the statistics over the ranks as SyncBatchNorm's does. Same parameters and buffers as BatchNorm2d,
    so checkpoints and ``<stage>.pt`` files do not change.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not torch_dist.is_initialized() or torch_dist.get_world_size() == 1:
            return super().forward(x)
        from torch.distributed._functional_collectives import all_reduce

        def total(t: torch.Tensor) -> torch.Tensor:
            return all_reduce(t, 'sum', torch_dist.group.WORLD)

        dims = [0, 2, 3]
        count = x.new_full((1,), x.numel() / x.shape[1])
        torch_dist.all_reduce(count)
        mean = total(x.sum(dims)) / count
        centred = x - mean.view(1, -1, 1, 1)
        # Two passes (mean, then the centred squares), as F.batch_norm, for the same precision.
        var = total((centred * centred).sum(dims)) / count
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)  # type: ignore[union-attr,operator]
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var.detach() * (count / (count - 1).clamp(min=1))
                self.running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
                self.running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)
        y = centred * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return y


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm layers of ``module`` -> torch.nn.SyncBatchNorm on CUDA, :class:`_GlooSyncBatchNorm` on the CPU
    (in place where ``module`` is not itself a BatchNorm; parameters and buffers are the same tensors)."""
    if device.type == 'cuda':
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, _GlooSyncBatchNorm):
        synced = _GlooSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                    module.track_running_stats)
        if module.affine:
            synced.weight, synced.bias = module.weight, module.bias
        synced.running_mean, synced.running_var = module.running_mean, module.running_var
        synced.num_batches_tracked = module.num_batches_tracked
        synced.train(module.training)
        return synced
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child, device))
    return module
