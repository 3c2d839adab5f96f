"""The speed targets of issue 8, each a ratio or a time measured in one run, as PASS / FAIL / NOT MEASURED.

- ONNX Runtime on the CPU at least :data:`CPU_SPEEDUP` times faster than PyTorch eager on the same
  models and frames (the four stage graphs; the end-to-end ratio, host work included, beside it).
- The node's own work (conversion, resizing, colorization, publishing) at most :data:`NODE_OVERHEAD`
  of the pipeline's stage time with every output subscribed, and nothing published on topics
  nobody subscribes to.
- On a GPU, the paper-scale Light pipeline at most :data:`GPU_FRAME_MS` a frame end to end.
- Issue 17, where an INT8 run is in the benchmark (``--precision fp32,int8``): ONNX Runtime INT8 at least
  :data:`INT8_SPEEDUP` times ONNX Runtime FP32 and :data:`INT8_VS_EAGER` times PyTorch eager, end to end.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ['CPU_SPEEDUP', 'GPU_FRAME_MS', 'INT8_SPEEDUP', 'INT8_VS_EAGER', 'NODE_OVERHEAD', 'Target', 'node_targets',
           'pipeline_targets']

CPU_SPEEDUP = 1.5
INT8_SPEEDUP = 1.5
INT8_VS_EAGER = 3.0
NODE_OVERHEAD = 0.10
GPU_FRAME_MS = 20.0


@dataclass(frozen=True)
class Target:
    """One target: ``status`` is 'PASS', 'FAIL' or 'NOT MEASURED'; ``measured`` says the figure."""

    name: str
    status: str
    measured: str
    note: str = ''

    def line(self) -> str:
        note = f' ({self.note})' if self.note else ''
        return f'[{self.status}] {self.name}: {self.measured}{note}'

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _status(ok: bool) -> str:
    return 'PASS' if ok else 'FAIL'


def pipeline_targets(result: Mapping[str, Any], paper_scale: bool) -> list[Target]:
    """Targets a pipeline benchmark (``PipelineBenchmark.to_dict()``) decides."""
    scale = 'paper scale' if paper_scale else 'light/demo models'
    targets = []
    cpu = [r for r in result['ratios'] if r['candidate'].startswith('onnxruntime/cpu/fp32')
           and r['baseline'].startswith('torch/cpu')]
    name = f'ONNX Runtime CPU >= {CPU_SPEEDUP:g}x PyTorch eager CPU ({scale})'
    if cpu:
        r = cpu[0]
        targets.append(Target(f'{name}, four stages', _status((r['backend'] or 0) >= CPU_SPEEDUP),
                              f'{r["backend"]}x'))
        targets.append(Target(f'{name}, end to end incl. host resizing', _status((r['total'] or 0) >= CPU_SPEEDUP),
                              f'{r["total"]}x (paired per-frame median {r["paired_total"]}x)'))
    else:
        targets.append(Target(name, 'NOT MEASURED', 'needs --backend onnxruntime and torch on --device cpu'))
    targets.extend(_int8_targets(result))
    gpu_runs = [run for run in result['runs'] if str(run['device']).startswith('cuda')]
    name = f'GPU paper-scale Light pipeline <= {GPU_FRAME_MS:g} ms a frame'
    if not gpu_runs:
        targets.append(Target(name, 'NOT MEASURED', 'no GPU backend ran (no GPU on this machine or not asked for)'))
    elif not paper_scale:
        targets.append(Target(name, 'NOT MEASURED', 'run with --paper-scale'))
    else:
        best = min(gpu_runs, key=lambda run: run['timings_ms']['total']['median'])
        eager = [run for run in gpu_runs if run['backend'] == 'torch' and run['precision'] == 'fp32']
        beside = f'; PyTorch FP32 eager {eager[0]["timings_ms"]["total"]["median"]:.1f} ms' if eager else ''
        ms = best['timings_ms']['total']['median']
        targets.append(Target(name, _status(ms <= GPU_FRAME_MS), f'{ms:.1f} ms ({best["label"]}){beside}'))
    return targets


def _int8_targets(result: Mapping[str, Any]) -> list[Target]:
    def cpu_run(backend: str, precision: str) -> Mapping[str, Any] | None:
        return next((run for run in result['runs'] if run['backend'] == backend and run['precision'] == precision
                     and str(run['device']).startswith('cpu')), None)

    int8, fp32 = cpu_run('onnxruntime', 'int8'), cpu_run('onnxruntime', 'fp32')
    if int8 is None:
        return []
    targets = []
    name = f'ONNX Runtime CPU INT8 >= {INT8_SPEEDUP:g}x ONNX Runtime FP32, end to end'
    if fp32 is None:
        targets.append(Target(name, 'NOT MEASURED', 'needs --precision fp32,int8'))
    else:
        ratio = fp32['timings_ms']['total']['median'] / int8['timings_ms']['total']['median']
        stages = fp32['timings_ms']['backend']['median'] / int8['timings_ms']['backend']['median']
        targets.append(Target(name, _status(ratio >= INT8_SPEEDUP), f'{ratio:.2f}x (four stages {stages:.2f}x)'))
    eager = [r for r in result['ratios'] if r['candidate'].startswith('onnxruntime/cpu/int8')
             and r['baseline'].startswith('torch/cpu')]
    name = f'ONNX Runtime CPU INT8 >= {INT8_VS_EAGER:g}x PyTorch eager CPU, end to end'
    if eager:
        targets.append(Target(name, _status((eager[0]['total'] or 0) >= INT8_VS_EAGER), f'{eager[0]["total"]}x'))
    else:
        targets.append(Target(name, 'NOT MEASURED', 'needs --backend onnxruntime and torch'))
    return targets


def node_targets(result: Mapping[str, Any]) -> list[Target]:
    """Targets a node benchmark (``run_node_benchmark`` result) decides."""
    targets = []
    runs = {run['name']: run for run in result['runs']}
    everything = runs.get('all outputs')
    size = result['settings']['input_size']
    name = f'node overhead <= {NODE_OVERHEAD:.0%} of the pipeline stage time, {size}, every output subscribed'
    if everything and everything['overhead'].get('ratio') is not None:
        overhead = everything['overhead']
        targets.append(Target(name, _status(overhead['ratio'] <= NODE_OVERHEAD),
                              f'{overhead["ratio"]:.1%} ({overhead["node_ms"]:.1f} ms of node work per '
                              f'{overhead["stages_ms"]:.1f} ms of stages)'))
    else:
        targets.append(Target(name, 'NOT MEASURED', 'no frame was processed with every output subscribed'))
    only = runs.get('only anomaly')
    name = 'nothing published on topics nobody subscribes to'
    if only and only['node'].get('frames_processed'):
        extra = {t: n for t, n in only['published'].items() if t != 'anomaly' and n}
        targets.append(Target(name, _status(not extra), f'{sum(extra.values())} messages on unsubscribed topics'
                              + (f' {extra}' if extra else '')))
    else:
        targets.append(Target(name, 'NOT MEASURED', 'no frame was processed with only ~/anomaly subscribed'))
    return targets
