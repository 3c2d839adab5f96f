"""``anomaly_seg bench``: per-stage latency per backend, paper-scale timing, the node end to end.

- :mod:`.pipeline`: backends timed on the same frames, interleaved frame by frame.
- :mod:`.models`: the model directory to time (shipped, or random weights at light or paper scale, cached).
- :mod:`.node`: the node as its own process, latency per topic, rates, drops, its own overhead.
- :mod:`.machine`: CPU, GPU, versions, load, memory probes. :mod:`.targets`: PASS/FAIL of issue 8's
  targets. :mod:`.report`: tables and JSON. :mod:`.suite`: the two benchmarks as documents.
"""
from __future__ import annotations

from .pipeline import PipelineBenchmark, RunResult, RunSpec, run_pipeline_benchmark
from .suite import NodeSuiteOptions, PipelineSuiteOptions, bench_node, bench_pipeline
from .targets import Target

__all__ = [
    'NodeSuiteOptions',
    'PipelineBenchmark',
    'PipelineSuiteOptions',
    'RunResult',
    'RunSpec',
    'Target',
    'bench_node',
    'bench_pipeline',
    'run_pipeline_benchmark',
]
