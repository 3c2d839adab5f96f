"""The two benchmarks as complete documents: settings, machine, versions, load, results, targets.

A document is what ``anomaly_seg bench --json`` writes and what :mod:`.report` prints:
``{'kind': 'pipeline' | 'node', 'machine', 'versions', 'load_average': {'start', 'end'},
'result', 'targets'}``.
"""
from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..model_config import load_model_config
from .machine import load_average, machine_info, versions
from .models import default_cache_dir, resolve_model_dir
from .node import NodeBenchOptions, run_node_benchmark
from .pipeline import RunSpec, run_pipeline_benchmark
from .targets import node_targets, pipeline_targets

__all__ = ['NodeSuiteOptions', 'PipelineSuiteOptions', 'bench_node', 'bench_pipeline']


@dataclass
class PipelineSuiteOptions:
    """``anomaly_seg bench`` without ``--node``. ``input_size`` is (W, H) of the camera frames."""

    specs: Sequence[RunSpec]
    models: Path | None = None  # the runs' model directory unless a RunSpec names its own
    paper_scale: bool = False
    input_size: tuple[int, int] = (2048, 1024)
    frames: int = 20
    warmup: int = 3
    threads: int | None = None
    outputs: Sequence[str] | None = None
    output_size: tuple[int, int] | str | None = None
    cache_dir: Path | None = None
    spin: bool = False


@dataclass
class NodeSuiteOptions:
    """``anomaly_seg bench --node``."""

    node: NodeBenchOptions
    paper_scale: bool = False
    cache_dir: Path | None = None


def _document(kind: str, start_load: Any, result: dict[str, Any], targets: list[Any]) -> dict[str, Any]:
    return {
        'kind': kind,
        'created': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'machine': machine_info(),
        'versions': versions(),
        'load_average': {'start': start_load, 'end': load_average()},
        'result': result,
        'targets': [t.to_dict() for t in targets],
    }


def bench_pipeline(options: PipelineSuiteOptions, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Resolve the model directory, time every backend interleaved, judge the targets."""
    start_load = load_average()
    backends = [spec.backend for spec in options.specs]
    precision = 'fp16' if any(spec.precision == 'fp16' for spec in options.specs) else 'fp32'
    devices = [spec.device for spec in options.specs if spec.device and spec.device != 'cpu']
    model_dir, source = resolve_model_dir(options.models, paper_scale=options.paper_scale,
                                          cache_dir=options.cache_dir or default_cache_dir(), backends=backends,
                                          precision=precision, device=devices[0] if devices else None)
    result = run_pipeline_benchmark(model_dir, options.specs, input_size=options.input_size, frames=options.frames,
                                    warmup=options.warmup, threads=options.threads, outputs=options.outputs,
                                    output_size=options.output_size, model_source=source, spin=options.spin,
                                    progress=progress)
    data = result.to_dict()
    data['paper_scale'] = options.paper_scale
    data['int8_choice'] = _int8_choices(data)
    return _document('pipeline', start_load, data, pipeline_targets(data, options.paper_scale))


def _int8_choices(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per model directory of an INT8 run: its stages' precisions and the CPU ``export --int8`` chose them on.

    ``cpu`` is ``None`` for a model exported before the CPU was recorded in ``provenance.int8``.
    """
    found: dict[str, dict[str, Any]] = {}
    for run in data['runs']:
        model_dir = run.get('model_dir') or data['model_dir']
        if run['precision'] != 'int8' or model_dir in found:
            continue
        try:
            int8 = load_model_config(model_dir).provenance.get('int8') or {}
        except Exception:  # noqa: BLE001 - the run loaded it; a note must not end the benchmark
            int8 = {}
        found[model_dir] = {'cpu': int8.get('cpu'), 'stages': int8.get('stages') or {}}
    return found


def bench_node(options: NodeSuiteOptions, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the node benchmark (the paper-scale random model with ``paper_scale``), judge the targets."""
    start_load = load_average()
    node = options.node
    if node.model_dir is None:  # the shipped models, else a cached random one (as the pipeline benchmark)
        node.model_dir, _ = resolve_model_dir(None, paper_scale=options.paper_scale,
                                              cache_dir=options.cache_dir or default_cache_dir(),
                                              backends=[node.backend or 'onnxruntime'], device=node.device)
    result = run_node_benchmark(node, progress)
    return _document('node', start_load, result, node_targets(result))
