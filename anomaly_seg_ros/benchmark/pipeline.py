"""The pipeline benchmark: per-stage latency of one or more backends on the same frames, interleaved.

Every backend (a :class:`RunSpec`: backend, device, precision) opens the same model directory in this
process. Frames go through :meth:`~..pipeline.AnomalyPipeline.process` backend after backend, frame by
frame, with the order rotated every frame, so a change in machine load (other processes, thermal
state) hits all of them alike and their ratios stay fair. Warm-up frames (first-run allocations,
kernel selection) are run the same way and not counted.

Per frame the pipeline's own timings are kept: ``prepare`` (frame resize and conversion), the four
stages, ``fetch`` (outputs to the host and resized to the frame) and ``total``; ``backend`` is the sum
of the four stages. On a GPU the backend is wrapped so that each stage ends with a device
synchronization, so a stage's time is its execution, not its enqueueing (ONNX Runtime's IOBinding
run already returns with its outputs ready). Memory: resident memory added by opening each backend,
and the process's peak resident memory during its frames (VmHWM, reset before each frame; it
includes what the other backends hold); GPU memory in use where a GPU is used.

Threads: torch and ONNX Runtime get the same number of intra-op threads (``threads``; default the
usable cores) and the same waiting policy, so neither is favoured: by default idle worker threads
sleep (ONNX Runtime ``allow_spinning`` 0, the node's setting; OpenMP ``OMP_WAIT_POLICY=PASSIVE`` for
torch, which ``anomaly_seg bench`` sets before torch is imported), with ``spin`` both spin-wait
(``ACTIVE``). On a loaded machine spinning costs both a lot (torch light model, 2 cores, load 5:
700 ms a frame spinning vs 240 ms passive).
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendError
from ..model_config import ModelConfig, load_model_config
from ..pipeline import AnomalyPipeline
from ..runtime import Backend, create_backend
from ..stages import STAGE_ORDER
from .frames import bench_frames
from .machine import gpu_memory_used_mb, peak_rss_mb, reset_peak_rss, rss_mb
from .stats import ratio, summarize

__all__ = ['PipelineBenchmark', 'RunResult', 'RunSpec', 'default_threads', 'open_backend',
           'run_pipeline_benchmark']

TIMING_KEYS = ('prepare', *STAGE_ORDER, 'fetch', 'backend', 'total')


@dataclass(frozen=True)
class RunSpec:
    """One configuration to time: backend name, device (``None``: the backend's default) and precision.

    ``model_dir`` replaces the benchmark's model directory for this run (to compare two exports in one
    run); ``tag`` is appended to the label (``@tag``) to tell such runs apart.
    """

    backend: str
    device: str | None = None
    precision: str = 'fp32'
    model_dir: Path | None = None
    tag: str = ''

    @property
    def label(self) -> str:
        return f'{self.backend}/{self.device or "default"}/{self.precision}' + (f'@{self.tag}' if self.tag else '')


@dataclass
class RunResult:
    """Samples of one :class:`RunSpec`: per timing key, one value (ms) per measured frame."""

    spec: RunSpec
    device: str
    samples: dict[str, list[float]] = field(default_factory=dict)
    load_rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    gpu_memory_mb: float | None = None
    threads: int | None = None

    model_dir: Path | None = None

    @property
    def label(self) -> str:
        if self.spec.device:
            return self.spec.label
        tag = f'@{self.spec.tag}' if self.spec.tag else ''
        return f'{self.spec.backend}/{self.device}/{self.spec.precision}{tag}'

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith('cuda')

    def median(self, key: str) -> float:
        values = self.samples.get(key) or [0.0]
        return float(np.median(values))

    def to_dict(self) -> dict[str, Any]:
        timings = {key: summarize(self.samples[key]) for key in TIMING_KEYS if self.samples.get(key)}
        mean_total = timings.get('total', {}).get('mean', 0.0)
        return {
            'label': self.label,
            'backend': self.spec.backend,
            'device': self.device,
            'precision': self.spec.precision,
            'threads': self.threads,
            'model_dir': str(self.model_dir) if self.model_dir else None,
            'timings_ms': timings,
            'fps': round(1000.0 / mean_total, 2) if mean_total else None,
            'memory': {'rss_at_load_mb': self.load_rss_mb, 'peak_rss_mb': self.peak_rss_mb,
                       'gpu_memory_used_mb': self.gpu_memory_mb},
        }


@dataclass
class PipelineBenchmark:
    """All runs of one benchmark, their ratios against the PyTorch eager run, and the settings."""

    model_dir: Path
    model_source: str
    config: ModelConfig
    input_size: tuple[int, int]  # (W, H) of the camera frames
    frames: int
    warmup: int
    outputs: tuple[str, ...] | None
    output_size: tuple[int, int] | str | None
    runs: list[RunResult]
    wall_s: float = 0.0
    spin: bool = False

    def stage_sizes(self) -> dict[str, str]:
        return {stage: f'{self.config.stage(stage).input_size[1]}x{self.config.stage(stage).input_size[0]}'
                for stage in STAGE_ORDER}

    def ratios(self) -> list[dict[str, Any]]:
        """Speed of each run against the torch run on the same device (``baseline / candidate``).

        ``backend``: median time of the four stages; ``total``: median end-to-end ``process``;
        ``paired_total``: median of the per-frame ratios (frames are interleaved, so paired).
        """
        found = []
        for base in self.runs:
            if base.spec.backend != 'torch':
                continue
            for run in self.runs:
                if run is base or run.on_gpu != base.on_gpu or run.model_dir != base.model_dir:
                    continue
                pairs = [b / c for b, c in zip(base.samples['total'], run.samples['total']) if c > 0]
                found.append({
                    'baseline': base.label, 'candidate': run.label,
                    'backend': ratio(base.median('backend'), run.median('backend')),
                    'total': ratio(base.median('total'), run.median('total')),
                    'paired_total': round(float(np.median(pairs)), 3) if pairs else None,
                })
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            'model_dir': str(self.model_dir),
            'model_source': self.model_source,
            'stage_input_sizes': self.stage_sizes(),
            'settings': {
                'input_size': f'{self.input_size[0]}x{self.input_size[1]}',
                'frames': self.frames,
                'warmup': self.warmup,
                'outputs': list(self.outputs) if self.outputs is not None else 'all',
                'output_size': _size_text(self.output_size),
                'onnxruntime_spinning': self.spin,
                'omp_wait_policy': os.environ.get('OMP_WAIT_POLICY', 'unset (libgomp default: spin, then sleep)'),
            },
            'runs': [run.to_dict() for run in self.runs],
            'ratios': self.ratios(),
            'wall_s': round(self.wall_s, 1),
        }


def _size_text(size: tuple[int, int] | str | None) -> str:
    if size is None:
        return 'input'
    if isinstance(size, str):
        return size
    return f'{size[1]}x{size[0]}'


def default_threads() -> int:
    """Usable cores of this process (its CPU affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class _Synchronized:
    """A GPU backend whose ``run`` returns when the stage has executed (for per-stage times)."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self.name = backend.name
        self.device = backend.device

    def upload(self, array: np.ndarray) -> Any:
        return self._backend.upload(array)

    def run(self, stage: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        outputs = self._backend.run(stage, inputs)
        if self.name == 'tensorrt':
            self._backend.stream.synchronize()
        elif self.name == 'torch':
            sys.modules['torch'].cuda.synchronize()
        return outputs

    def download(self, value: Any) -> np.ndarray:
        return self._backend.download(value)

    def close(self) -> None:
        self._backend.close()


def open_backend(spec: RunSpec, model_dir: Path, config: ModelConfig, threads: int | None,
                 spin: bool = False) -> Backend:
    """Open ``spec`` on ``model_dir`` with ``threads`` intra-op threads (ONNX Runtime and torch alike).

    ``spin``: ONNX Runtime's worker threads spin-wait (torch's follow ``OMP_WAIT_POLICY``, read when
    torch is imported).
    """
    if spec.backend == 'onnxruntime':
        from ..runtime.onnxruntime_backend import OnnxRuntimeBackend

        backend: Any = OnnxRuntimeBackend(model_dir, config, device=spec.device, precision=spec.precision,
                                          threads=threads, spin=spin)
    else:
        if spec.backend == 'torch' and threads:
            try:
                import torch
            except ImportError as exc:
                raise BackendError('the torch backend needs PyTorch (requirements/tools.txt)') from exc
            torch.set_num_threads(int(threads))
        backend = create_backend(spec.backend, model_dir, config, device=spec.device, precision=spec.precision)
    if str(backend.device).startswith('cuda'):
        backend = _Synchronized(backend)
    return backend


def run_pipeline_benchmark(model_dir: str | Path, specs: Sequence[RunSpec], *, input_size: tuple[int, int],
                           frames: int = 20, warmup: int = 3, threads: int | None = None,
                           outputs: Collection[str] | None = None,
                           output_size: tuple[int, int] | str | None = None, model_source: str = 'given',
                           spin: bool = False, progress: Callable[[str], None] | None = None) -> PipelineBenchmark:
    """Time ``specs`` on ``model_dir``, interleaved frame by frame (see the module docstring).

    Args:
        model_dir: the model directory every run opens.
        specs: the configurations to time (at least one).
        input_size: (W, H) of the camera frames.
        frames: measured frames per run; warmup: frames run first and not counted.
        threads: intra-op threads for every backend (default :func:`default_threads`).
        spin: ONNX Runtime worker threads spin-wait (see the module docstring).
        outputs: pipeline outputs to compute (default all); output_size: as ``AnomalyPipeline.process``.
        progress: called with a line of text now and then.
    """
    if not specs:
        raise ValueError('name at least one backend to benchmark')
    if frames < 1 or warmup < 0:
        raise ValueError(f'need frames >= 1 and warmup >= 0, got {frames} and {warmup}')
    model_dir = Path(model_dir)
    config = load_model_config(model_dir)
    configs = {model_dir: config}
    threads = threads or default_threads()
    say = progress or (lambda text: None)
    pipelines: list[AnomalyPipeline] = []
    runs: list[RunResult] = []
    try:
        for spec in specs:
            before = rss_mb()
            say(f'opening {spec.label} ...')
            path = Path(spec.model_dir) if spec.model_dir is not None else model_dir
            if path not in configs:
                configs[path] = load_model_config(path)
            backend = open_backend(spec, path, configs[path], threads, spin)
            pipelines.append(AnomalyPipeline(configs[path], backend))
            runs.append(RunResult(spec, str(backend.device), {key: [] for key in TIMING_KEYS},
                                  load_rss_mb=round(rss_mb() - before, 1), threads=threads, model_dir=path))
        images = bench_frames(*input_size, count=min(4, frames + warmup))
        wanted = None if outputs is None else tuple(outputs)
        start = time.perf_counter()
        for step in range(warmup + frames):
            image = images[step % len(images)]
            shift = step % len(pipelines)
            for index in [*range(shift, len(pipelines)), *range(shift)]:
                reset_peak_rss()
                timings = pipelines[index].process(image, wanted, output_size).timings_ms
                if step < warmup:
                    continue
                run = runs[index]
                run.peak_rss_mb = max(run.peak_rss_mb, peak_rss_mb())
                if run.on_gpu:
                    used = gpu_memory_used_mb(_cuda_index(run.device))
                    if used is not None:
                        run.gpu_memory_mb = max(run.gpu_memory_mb or 0.0, used)
                for key in TIMING_KEYS:
                    if key == 'backend':
                        run.samples[key].append(sum(timings.get(stage, 0.0) for stage in STAGE_ORDER))
                    elif key in timings:
                        run.samples[key].append(timings[key])
            if step + 1 == warmup:
                say(f'warm-up done ({warmup} frames per backend)')
            elif step >= warmup and ((step - warmup + 1) % 5 == 0 or step + 1 == warmup + frames):
                medians = ', '.join(f'{r.label} {r.median("total"):.1f} ms' for r in runs)
                say(f'frame {step - warmup + 1}/{frames}: median total {medians}')
        wall = time.perf_counter() - start
    finally:
        for pipeline in pipelines:
            pipeline.close()
    return PipelineBenchmark(model_dir, model_source, config, input_size, frames, warmup, wanted, output_size,
                             runs, wall, spin)


def _cuda_index(device: str) -> int:
    text = device.split(' ')[0]
    return int(text.partition(':')[2] or 0) if text.startswith('cuda:') else 0
