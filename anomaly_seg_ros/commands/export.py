"""``anomaly_seg export``: ONNX export with a parity check, and the TensorRT engine build.

    anomaly_seg export --models DIR --out DIR [--fp16] [--frames DIR] [--tensorrt]
                       [--workspace-gb N] [--timing-cache PATH]

With ``--tensorrt`` and a ``--models`` directory that is already exported (its ``.onnx`` files
present) only the engines are built: no torch needed, the command for a robot, run once ahead
of the first launch.
"""
from __future__ import annotations

import argparse
import importlib.util
import logging
import shutil
from pathlib import Path

__all__ = ['register']

_DESCRIPTION = """\
Export a model directory (model.yaml + <stage>.pt) to one ONNX graph per stage (opset 17, static
shapes, fixed tensor names), check ONNX Runtime against PyTorch on frames (max abs diff <= 1e-4,
semantic argmax agreement >= 99.9%; exit status 2 otherwise), and optionally build TensorRT engines.
With --tensorrt on an already exported directory, only the engines are built (no torch needed)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser('export', help='export ONNX graphs and build TensorRT engines',
                                   description=_DESCRIPTION)
    parser.add_argument('--models', required=True, type=Path, help='model directory to export (or an exported one '
                        'with --tensorrt)')
    parser.add_argument('--out', required=True, type=Path, help='output model directory (may equal --models)')
    parser.add_argument('--fp16', action='store_true', help='also write FP16 graphs (<stage>.fp16.onnx) and build '
                        'FP16 engines with --tensorrt')
    parser.add_argument('--frames', type=Path, help='folder of camera images for the parity check (default: '
                        'synthetic frames)')
    parser.add_argument('--max-frames', type=int, default=8, help='frames used for the parity check (default 8)')
    parser.add_argument('--tensorrt', action='store_true', help='build <stage>.engine files with TensorRT '
                        '(minutes; needs a GPU, TensorRT 10/11 and cuda-python)')
    parser.add_argument('--workspace-gb', type=float, default=4.0, help='TensorRT builder workspace limit in GiB '
                        '(default 4)')
    parser.add_argument('--timing-cache', type=Path, help='TensorRT timing cache file, reused and updated '
                        '(default <out>/tensorrt_timing.cache)')
    parser.add_argument('--device', default='cuda', help='GPU for --tensorrt: cuda or cuda:N (default cuda)')
    parser.set_defaults(run=_run)


def _copy_exported(models: Path, out: Path) -> None:
    from ..model_config import METADATA_FILE, load_model_config

    config = load_model_config(models)
    out.mkdir(parents=True, exist_ok=True)
    names = {METADATA_FILE} | {name for stage in config.stages.values() for fmt, name in stage.files.items()
                               if fmt != 'tensorrt'}
    for name in sorted(names):
        if (models / name).is_file():
            shutil.copy2(models / name, out / name)


def _build(args: argparse.Namespace) -> None:
    from ..runtime.tensorrt_build import build_engines

    config = build_engines(args.out, precision='fp16' if args.fp16 else 'fp32', workspace_gb=args.workspace_gb,
                           timing_cache=args.timing_cache, device=args.device)
    meta = config.tensorrt or {}
    print(f'TensorRT {meta.get("version")} engines ({meta.get("precision")}) for {meta.get("gpu_name")} '
          f'(compute {meta.get("compute_capability")}) written to {args.out}')


def _run(args: argparse.Namespace) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    from ..model_config import load_model_config
    from ..runtime.stage_files import onnx_files_present

    config = load_model_config(args.models)
    exported = onnx_files_present(args.models, config, fp16=args.fp16)
    no_torch = importlib.util.find_spec('torch') is None
    if args.tensorrt and (exported or (no_torch and onnx_files_present(args.models, config))):
        if args.out.resolve() != args.models.resolve():
            _copy_exported(args.models, args.out)
        _build(args)
        return 0
    from ..export import export_model, load_frames

    frames = load_frames(args.frames, args.max_frames) if args.frames else None
    report = export_model(args.models, args.out, fp16=args.fp16, frames=frames)
    print('\n'.join(report.lines()))
    if args.tensorrt:
        _build(args)
    return 0
