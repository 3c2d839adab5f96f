"""What every training command shares: seeding, device, checkpoints, logs, progress bars, summaries.

A stage's work directory (``<work>/<stage>/``) holds ``checkpoint.pt`` (written atomically after
every epoch), ``config.yaml`` (the final configuration, written beside each checkpoint),
``metrics.csv`` (one row per epoch) and ``tensorboard/`` (event files: per-step losses and per-epoch
validation figures).
"""
from __future__ import annotations

import csv
import hashlib
import os
import platform
import random
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import AnomalySegError
from .config import TrainConfig, save_config

__all__ = [
    'CHECKPOINT_FILE',
    'Checkpoint',
    'NullLogger',
    'RunLogger',
    'StageResult',
    'Timer',
    'file_sha256',
    'format_duration',
    'git_commit',
    'machine_info',
    'progress',
    'rng_for',
    'seed_everything',
    'select_device',
]

CHECKPOINT_FILE = 'checkpoint.pt'
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """A NumPy generator that depends only on ``(seed, *keys)`` (e.g. epoch and frame index), so
    augmentation is identical whether a run was resumed or not."""
    return np.random.default_rng([int(seed) % 2**63, *(int(k) % 2**63 for k in keys)])


def select_device(name: str = 'auto') -> torch.device:
    """``'auto'``: CUDA when available, else CPU; otherwise ``cpu``, ``cuda``, ``cuda:N``."""
    if name in ('auto', '', None):
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(name)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise AnomalySegError(f'device {name!r} asked for, but torch {torch.__version__} sees no CUDA device; '
                              'use --device cpu or auto')
    return device


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f'{hours}h{minutes:02d}m{secs:02d}s' if hours else f'{minutes}m{secs:02d}s'


def git_commit() -> str | None:
    """``git rev-parse HEAD`` of the source checkout (``+dirty`` when it has changes), or None."""
    try:
        head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=_PACKAGE_ROOT, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=_PACKAGE_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ('+dirty' if dirty else '')


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (provenance of imported weights)."""
    digest = hashlib.sha256()
    with Path(path).open('rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def machine_info(device: torch.device | None = None) -> dict[str, Any]:
    """Where a run happened: CPU model and cores, GPU, torch version."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {'cpu': cpu, 'cores': os.cpu_count(), 'torch_threads': torch.get_num_threads(),
                            'torch': str(torch.__version__), 'python': platform.python_version()}
    if device is not None and device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
    return info


def progress(iterable: Iterable[Any], enabled: bool, **kwargs: Any) -> Iterable[Any]:
    """A tqdm bar over ``iterable`` (plain iteration when disabled)."""
    if not enabled:
        return iterable
    from tqdm import tqdm
    return tqdm(iterable, dynamic_ncols=True, leave=False, **kwargs)


@dataclass
class StageResult:
    """What a training command did: for the summary line, provenance and the manifest."""

    stage: str
    epochs: int
    steps: int
    seconds: float
    validation: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        figures = ', '.join(f'{k} {_fmt(v)}' for k, v in self.validation.items())
        where = ', '.join(self.files.values())
        return (f'{self.stage}: {self.epochs} epochs ({self.steps} steps) in {format_duration(self.seconds)}'
                + (f'; validation: {figures}' if figures else '') + (f'; wrote {where}' if where else ''))

    def to_dict(self) -> dict[str, Any]:
        return {'epochs': self.epochs, 'steps': self.steps, 'training_time_s': round(self.seconds, 1),
                'validation': dict(self.validation)}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f'{value:.4f}'
    return str(value)


class Checkpoint:
    """``<work>/checkpoint.pt``: epoch, step, state dicts, history; saved atomically each epoch.

    The configuration is written to ``<work>/config.yaml`` beside it every time.
    """

    def __init__(self, work_dir: str | Path) -> None:
        self.work_dir = Path(work_dir)
        self.path = self.work_dir / CHECKPOINT_FILE

    def exists(self) -> bool:
        return self.path.is_file()

    def save(self, config: TrainConfig, state: Mapping[str, Any]) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + '.tmp')
        torch.save(dict(state), tmp)
        os.replace(tmp, self.path)
        save_config(config, self.work_dir / 'config.yaml')

    def load(self, map_location: str | torch.device = 'cpu') -> dict[str, Any]:
        try:
            return torch.load(self.path, map_location=map_location, weights_only=False)
        except Exception as exc:  # noqa: BLE001 - a broken checkpoint is reported, not guessed at
            raise AnomalySegError(f'{self.path}: cannot read the checkpoint ({type(exc).__name__}: {exc}); '
                                  'delete it to start over, or run without --resume') from exc


class RunLogger:
    """Per-epoch rows in ``metrics.csv`` and scalars in TensorBoard (``tensorboard/``)."""

    def __init__(self, work_dir: str | Path, resume: bool = False) -> None:
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.work_dir / 'metrics.csv'
        if not resume and self.csv_path.exists():
            self.csv_path.unlink()
        self._writer: Any = None
        try:
            from torch.utils.tensorboard import SummaryWriter
            self._writer = SummaryWriter(str(self.work_dir / 'tensorboard'), purge_step=None)
        except ImportError:  # tensorboard missing: CSV only
            self._writer = None

    def scalars(self, values: Mapping[str, float], step: int, prefix: str = '') -> None:
        if self._writer is None:
            return
        for key, value in values.items():
            if isinstance(value, (int, float)) and np.isfinite(value):
                self._writer.add_scalar(f'{prefix}{key}', float(value), step)

    def epoch(self, row: Mapping[str, Any]) -> None:
        """Append one row (keys become the header of a new file)."""
        exists = self.csv_path.is_file()
        fields = list(row)
        if exists:
            with self.csv_path.open() as handle:
                header = next(csv.reader(handle), None)
            if header and header != fields:
                fields = header + [k for k in row if k not in header]
        with self.csv_path.open('a', newline='') as handle:
            writer = csv.DictWriter(handle, fieldnames=fields, extrasaction='ignore')
            if not exists:
                writer.writeheader()
            writer.writerow({k: _csv_value(row.get(k)) for k in fields})
        step = int(row.get('step', row.get('epoch', 0)) or 0)
        self.scalars({k: v for k, v in row.items() if k not in ('epoch', 'step')}, step, prefix='epoch/')

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class NullLogger(RunLogger):
    """A :class:`RunLogger` that writes nothing: the logger of every rank but 0 in a multi-process run."""

    def __init__(self) -> None:  # noqa: D107 - no folder, no writer
        self._writer = None

    def scalars(self, values: Mapping[str, float], step: int, prefix: str = '') -> None:
        pass

    def epoch(self, row: Mapping[str, Any]) -> None:
        pass


def _csv_value(value: Any) -> Any:
    if isinstance(value, float):
        return f'{value:.6g}'
    return '' if value is None else value


class Timer:
    """Wall time of a stage, continued across resumes (``offset`` = seconds already spent)."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = float(offset)
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return self.offset + time.perf_counter() - self.start
