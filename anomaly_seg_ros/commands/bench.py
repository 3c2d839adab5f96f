"""``anomaly_seg bench``: per-stage latency per backend (or the node end to end), as a table and JSON.

    anomaly_seg bench [--models DIR | --paper-scale] [--backend onnxruntime|torch|tensorrt ...]
                      [--device cpu|cuda[:N]] [--precision fp32|fp16|int8[,...]] [--input-size WxH] [--frames N]
                      [--warmup N] [--threads N] [--outputs a,b] [--output-size input|network|WxH] [--json PATH]
    anomaly_seg bench --node [--rate HZ] [--input-size WxH] [--duration S] [--models DIR] [--backend B]
    anomaly_seg bench --soak [...]      (the node overloaded for minutes; --soak --help)
    anomaly_seg bench --memory [...]    (RSS after the largest accepted frame; --memory --help)
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

__all__ = ['register']

_DESCRIPTION = """\
Time the pipeline per stage (median and p90 over --frames frames after --warmup), per backend: several
backends are run in one process on the same frames, interleaved frame by frame, so their ratios are fair
on a loaded machine. Prints the machine, versions, peak memory, the ratios against PyTorch eager and
issue 8's targets (PASS/FAIL), and writes everything as JSON with --json. --paper-scale times the
paper-size networks with random weights (exported once into --cache-dir). --node starts anomaly_seg_node
as its own process and measures latency per topic, output rate, drops and the node's own overhead,
with every output subscribed and with only ~/anomaly subscribed. --soak and --memory run the node's
overload and memory checks (their own options follow them)."""


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r'\s*(\d+)\s*x\s*(\d+)\s*', text)
    if match is None or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise argparse.ArgumentTypeError(f'expected WIDTHxHEIGHT, e.g. 2048x1024, got {text!r}')
    return int(match.group(1)), int(match.group(2))


def _precisions(text: str) -> tuple[str, ...]:
    precisions = tuple(dict.fromkeys(p.strip() for p in text.split(',') if p.strip()))
    bad = [p for p in precisions if p not in ('fp32', 'fp16', 'int8')]
    if bad or not precisions:
        raise argparse.ArgumentTypeError(f'precisions are fp32, fp16 and int8, got {text!r}')
    return precisions


def _output_size(text: str) -> tuple[int, int] | str | None:
    if text == 'input':
        return None
    if text == 'network':
        return text
    width, height = _size(text)
    return height, width


def _backends(values: list[str] | None) -> list[str]:
    from ..runtime.base import BACKEND_NAMES

    names = [name.strip() for value in values or [] for name in value.split(',') if name.strip()]
    unknown = [name for name in names if name not in BACKEND_NAMES]
    if unknown:
        raise SystemExit(f'anomaly_seg bench: error: unknown backend(s) {unknown}; '
                         f'choose from {", ".join(BACKEND_NAMES)}')
    return list(dict.fromkeys(names))


def _tags(models: list[Path | None]) -> list[str]:
    """Label suffixes telling several model directories apart ('' for a single one)."""
    if len(models) < 2:
        return ['']
    names = [Path(m).name if m is not None else 'default' for m in models]
    return [name if names.count(name) == 1 else f'{name}{i}' for i, name in enumerate(names)]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser('bench', help='benchmark the pipeline per stage and backend, or the node',
                                   description=_DESCRIPTION)
    parser.add_argument('--models', type=Path, action='append', metavar='DIR',
                        help='model directory (default: the shipped models; where none are installed, the light '
                             'configuration with random weights, made once in --cache-dir); repeat to compare '
                             'directories (e.g. two exports): every backend runs on each, interleaved')
    parser.add_argument('--paper-scale', action='store_true',
                        help='time the paper-size networks (ICNet at 2048x1024, SPADE ngf 64, VGG19 and the '
                             'dissimilarity network at 512x256) with random weights; seconds per frame on a CPU')
    parser.add_argument('--backend', action='append', metavar='NAME',
                        help='onnxruntime, torch or tensorrt; repeat or comma-separate to compare (default: '
                             'onnxruntime and torch; with --node: the parameters file\'s)')
    parser.add_argument('--device', metavar='DEV', help="cpu, cuda or cuda:N (default: cpu for the pipeline "
                        "benchmark; the node's parameter with --node)")
    parser.add_argument('--precision', type=_precisions, default=('fp32',), metavar='P[,P]',
                        help='fp32, fp16 (the FP16 graphs / engines) or int8 (the Q/DQ graphs of export --int8 / INT8 '
                             'engines); comma-separate to time several in one interleaved run, e.g. fp32,int8 '
                             '(torch stays fp32)')
    parser.add_argument('--input-size', type=_size, default=(2048, 1024), metavar='WxH',
                        help='camera frame size (default 2048x1024)')
    parser.add_argument('--frames', type=int, metavar='N', help='measured frames per backend (default 20; 3 with '
                        '--paper-scale)')
    parser.add_argument('--warmup', type=int, metavar='N', help='warm-up frames per backend, not counted (default 3; '
                        '1 with --paper-scale)')
    parser.add_argument('--threads', type=int, metavar='N', help='intra-op threads of every backend (default: the '
                        'usable cores)')
    parser.add_argument('--outputs', metavar='A,B', help='pipeline outputs to compute (default all)')
    parser.add_argument('--output-size', type=_output_size, default=None, metavar='SIZE',
                        help="size of the outputs: input (default), network or WxH")
    parser.add_argument('--cache-dir', type=Path, metavar='DIR', help='where random-weight models are kept '
                        '(default ~/.cache/anomaly_seg_ros/bench)')
    parser.add_argument('--json', type=Path, metavar='PATH', help='also write the results as JSON')
    node = parser.add_argument_group('node benchmark (--node)')
    node.add_argument('--node', action='store_true', help='benchmark anomaly_seg_node as its own process')
    node.add_argument('--rate', type=float, default=5.0, metavar='HZ', help='camera rate (default 5)')
    node.add_argument('--duration', type=float, default=20.0, metavar='S', help='seconds per run (default 20)')
    node.add_argument('--domain-id', type=int, metavar='N', help='ROS_DOMAIN_ID of the node (default: one '
                      'derived from this process id)')
    node.add_argument('--no-dds-profile', action='store_true',
                      help='without the Fast DDS profile for large images (config/fastdds_large_images.xml) that '
                           'the launch file gives the node by default')
    node.add_argument('--param', action='append', default=[], metavar='NAME:=VALUE',
                      help='another node parameter, e.g. qos.input_reliability:=reliable (repeatable)')
    parser.add_argument('--spin', action='store_true', help='worker threads spin-wait when idle (ONNX Runtime '
                        'allow_spinning, OMP_WAIT_POLICY=ACTIVE for torch); default: both sleep, as the node runs')
    parser.add_argument('--quiet', action='store_true', help='no progress lines')
    parser.add_argument('--soak', nargs=argparse.REMAINDER, metavar='...',
                        help='instead: the overload/soak run of the node (issue 9): frames at several times the '
                             'pipeline rate for minutes; latency, drops and RSS. Every argument after --soak is '
                             "the soak's own; see `anomaly_seg bench --soak --help`")
    parser.add_argument('--memory', nargs=argparse.REMAINDER, metavar='...',
                        help='instead: does the node give memory back after the largest frame it accepts (issue 16)? '
                             'RSS steady, with one 4096x2160 frame, and after 10 normal frames. Every argument '
                             "after --memory is the check's own; see `anomaly_seg bench --memory --help`")
    parser.set_defaults(run=run)


def _progress(args: argparse.Namespace):  # noqa: ANN202 - a callable or None
    if args.quiet:
        return None
    return lambda text: print(f'... {text}', file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    import logging
    import os

    if args.soak is not None:
        from ..benchmark.soak import main as soak_main

        return soak_main(args.soak)
    if args.memory is not None:
        from ..benchmark.memory import main as memory_main

        return memory_main(args.memory)

    # torch's OpenMP threads wait as ONNX Runtime's do (read once, when torch is imported): a fair comparison.
    os.environ.setdefault('OMP_WAIT_POLICY', 'ACTIVE' if args.spin else 'PASSIVE')

    from ..benchmark.report import format_node, format_pipeline, write_json
    from ..benchmark.suite import NodeSuiteOptions, PipelineSuiteOptions, bench_node, bench_pipeline

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
    backends = _backends(args.backend)
    for name, value in (('--frames', args.frames), ('--threads', args.threads)):
        if value is not None and value < 1:
            raise SystemExit(f'anomaly_seg bench: error: {name} must be at least 1')
    if args.warmup is not None and args.warmup < 0:
        raise SystemExit('anomaly_seg bench: error: --warmup must be 0 or more')
    if args.node:
        from ..benchmark.node import NodeBenchOptions

        if len(backends) > 1:
            raise SystemExit('anomaly_seg bench: error: --node runs one backend at a time')
        bad = [p for p in args.param if ':=' not in p]
        if bad:
            raise SystemExit(f'anomaly_seg bench: error: --param takes NAME:=VALUE, got {bad}')
        if args.rate <= 0 or args.duration <= 0:
            raise SystemExit('anomaly_seg bench: error: --rate and --duration must be positive')
        size = args.output_size
        output_size = 'input' if size is None else size if isinstance(size, str) else f'{size[1]}x{size[0]}'
        if args.models and len(args.models) > 1:
            raise SystemExit('anomaly_seg bench: error: --node runs one model directory at a time')
        options = NodeBenchOptions(model_dir=args.models[0] if args.models else None,
                                   backend=backends[0] if backends else None,
                                   device=args.device, input_size=args.input_size, rate_hz=args.rate,
                                   duration_s=args.duration, domain_id=args.domain_id, output_size=output_size,
                                   parameters=tuple(args.param), dds_profile=not args.no_dds_profile)
        doc = bench_node(NodeSuiteOptions(options, paper_scale=args.paper_scale, cache_dir=args.cache_dir),
                         _progress(args))
        lines = format_node(doc)
    else:
        from ..benchmark.pipeline import RunSpec

        device = args.device or 'cpu'
        models = args.models or [None]
        tags = _tags(models)
        specs = [RunSpec(name, device, precision, model, tag)
                 for model, tag in zip(models, tags) for name in backends or ['onnxruntime', 'torch']
                 for precision in (('fp32',) if name == 'torch' else args.precision)]
        outputs = [o.strip() for o in args.outputs.split(',') if o.strip()] if args.outputs else None
        options = PipelineSuiteOptions(
            specs=specs, models=models[0], paper_scale=args.paper_scale, input_size=args.input_size,
            frames=args.frames or (3 if args.paper_scale else 20),
            warmup=args.warmup if args.warmup is not None else (1 if args.paper_scale else 3),
            threads=args.threads, outputs=outputs, output_size=args.output_size, cache_dir=args.cache_dir,
            spin=args.spin)
        doc = bench_pipeline(options, _progress(args))
        lines = format_pipeline(doc)
    print('\n'.join(lines))
    if args.json:
        print(f'JSON written to {write_json(doc, args.json)}')
    return 0
