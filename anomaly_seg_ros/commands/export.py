"""``anomaly_seg export``: ONNX export with a parity check, and the TensorRT engine build.

    anomaly_seg export --models DIR --out DIR [--fp16] [--frames DIR] [--tensorrt]
                       [--workspace-gb N] [--timing-cache PATH]
    anomaly_seg export --models DIR --out DIR --int8 --calibration DATASET:ROOT[:SPLIT]
                       [--validation DATASET:ROOT[:SPLIT]] [--calibration-frames N] [--tensorrt]

With ``--tensorrt`` and a ``--models`` directory that is already exported (its ``.onnx`` files
present) only the engines are built: no torch needed, the command for a robot, run once ahead
of the first launch.
"""
from __future__ import annotations

import argparse
import importlib.util
import logging
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np

__all__ = ['register']

_DESCRIPTION = """\
Export a model directory (model.yaml + <stage>.pt) to one ONNX graph per stage (opset 17, static
shapes, fixed tensor names), check ONNX Runtime against PyTorch on frames (max abs diff <= 1e-4,
semantic argmax agreement >= 99.9%; exit status 2 otherwise), and optionally build TensorRT engines.
With --tensorrt on an already exported directory, only the engines are built (no torch needed).
--int8 adds calibrated Q/DQ INT8 graphs (ONNX Runtime CPU and TensorRT variants) made from training
frames, checked against FP32 on validation frames (anomaly AP/FPR95 with void objects as the anomalies,
semantic mIoU against FP32) and refused beyond the --int8-max-* margins unless --force-int8; with
--tensorrt they become INT8 engines."""


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
    parser.add_argument('--tensorrt-verbose', action='store_true', help="forward TensorRT's INFO and VERBOSE "
                        'messages while building (thousands of lines per engine; default: warnings and errors)')
    int8 = parser.add_argument_group('INT8 (--int8)')
    int8.add_argument('--int8', action='store_true', help='also write calibrated INT8 Q/DQ graphs '
                      '(<stage>.int8.onnx, <stage>.int8-tensorrt.onnx); with --tensorrt, INT8 engines')
    int8.add_argument('--calibration', type=_dataset_spec, metavar='DATASET:ROOT[:SPLIT]',
                      help='training frames to calibrate on, e.g. camvid:../shared/data/camvid:train (default split '
                           'train; evaluation sets are refused)')
    int8.add_argument('--validation', type=_dataset_spec, metavar='DATASET:ROOT[:SPLIT]',
                      help='frames with anomaly (or void) labels for choosing and checking (default: the set the '
                           'model\'s ensemble was chosen on, e.g. its validation frames with held-out objects, where '
                           'present; else the calibration set\'s val split)')
    int8.add_argument('--calibration-frames', type=int, default=32, metavar='N', help='default 32, spread evenly '
                      'over the split')
    int8.add_argument('--validation-frames', type=int, default=50, metavar='N', help='default 50')
    int8.add_argument('--int8-methods', default='minmax,percentile', metavar='A,B',
                      help='activation calibration methods to choose from on the validation frames: minmax, '
                           'percentile, entropy (default minmax,percentile)')
    int8.add_argument('--int8-max-ap-drop', type=float, default=1.0, metavar='POINTS', help='default 1.0')
    int8.add_argument('--int8-max-fpr95-rise', type=float, default=2.0, metavar='POINTS', help='default 2.0')
    int8.add_argument('--int8-min-semantic-miou', type=float, default=90.0, metavar='PERCENT',
                      help='INT8 semantic map against the FP32 one (default 90)')
    int8.add_argument('--int8-min-speedup', type=float, default=1.1, metavar='X',
                      help='keep in FP32 the stages INT8 does not speed up this many times on this CPU (default 1.1)')
    int8.add_argument('--int8-all-stages', action='store_true',
                      help='quantize every stage the accuracy check allows, also those INT8 does not speed up on '
                           'this CPU (for TensorRT engines)')
    int8.add_argument('--force-int8', action='store_true', help='write the INT8 graphs even beyond the margins')
    parser.set_defaults(run=_run)


_EVALUATION_ONLY = {'road_anomaly', 'fishyscapes'}
_EVALUATION_SPLITS = {'test', 'anomaly_test'}


def _dataset_spec(text: str) -> tuple[str, Path, str | None]:
    """``DATASET:ROOT[:SPLIT]`` -> (kind, root, split or None)."""
    kind, _, rest = text.partition(':')
    root, _, split = rest.rpartition(':') if rest.rsplit(':', 1)[-1] in ('train', 'val', 'test') else (rest, '', '')
    if not kind or not root:
        raise argparse.ArgumentTypeError(f'expected DATASET:ROOT[:SPLIT], e.g. camvid:/data/camvid:train, got {text!r}')
    if kind in _EVALUATION_ONLY or split in _EVALUATION_SPLITS:
        raise argparse.ArgumentTypeError(f'{text!r} is an evaluation set: calibrate on training frames and choose on '
                                         'validation frames, never on what the model is evaluated on')
    return kind, Path(root), split or None


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
    from ..export import build_engines

    precision = 'int8' if args.int8 else 'fp16' if args.fp16 else 'fp32'
    config = build_engines(args.out, precision=precision, workspace_gb=args.workspace_gb, verbose=args.tensorrt_verbose,
                           timing_cache=args.timing_cache, device=args.device)
    meta = config.tensorrt or {}
    print(f'TensorRT {meta.get("version")} engines ({meta.get("precision")}) for {meta.get("gpu_name")} '
          f'(compute {meta.get("compute_capability")}) written to {args.out}')


def _model_validation(model_dir: Path) -> tuple[str, Path, str | None] | None:
    """The validation set the model's ensemble was chosen on (``provenance.data.ensemble_validation``: e.g. the
    validation frames with held-out objects pasted), where it is still on this machine."""
    from ..model_config import load_model_config
    chosen = (load_model_config(model_dir).provenance.get('data') or {}).get('ensemble_validation')
    if not chosen or not Path(chosen['root']).is_dir():
        return None
    return str(chosen['dataset']), Path(chosen['root']), chosen.get('split')


def _quantize(args: argparse.Namespace) -> None:
    from ..data import open_dataset
    from ..export import Int8Margins, quantize_model

    kind, root, split = args.calibration
    split = split or ('train' if kind in ('camvid', 'cityscapes', 'synthetic') else None)
    val_kind, val_root, val_split = args.validation or _model_validation(args.models) or (kind, root, 'val')
    calibration = open_dataset(kind, root, split)
    count = min(args.calibration_frames, len(calibration))
    picks = np.linspace(0, len(calibration) - 1, count).round().astype(int) if count else []
    frames = [calibration[int(i)].image for i in picks]
    validation = open_dataset(val_kind, val_root, val_split)
    report = quantize_model(
        args.out, frames, validation, validation_frames=args.validation_frames,
        calibration_source={'dataset': kind, 'root': str(root), 'split': split, 'frames': count},
        validation_source={'dataset': val_kind, 'root': str(val_root), 'split': val_split},
        methods=[m.strip() for m in args.int8_methods.split(',') if m.strip()],
        margins=Int8Margins(args.int8_max_ap_drop, args.int8_max_fpr95_rise, args.int8_min_semantic_miou),
        force=args.force_int8, min_speedup=None if args.int8_all_stages else args.int8_min_speedup,
        command=' '.join(['anomaly_seg', *map(shlex.quote, sys.argv[1:])]),
        progress=lambda text: print(f'... {text}', flush=True))
    print('\n'.join(report.lines()))
    _refresh_manifest(args.out)


def _refresh_manifest(model_dir: Path) -> None:
    """A model directory made by ``train all`` describes its files in MANIFEST.md: add the INT8 graphs to it."""
    if not (model_dir / 'MANIFEST.md').is_file():
        return
    if importlib.util.find_spec('torch') is None:
        print(f'{model_dir / "MANIFEST.md"} not refreshed (it is written by the training package, which needs torch)')
        return
    from ..training.manifest import write_manifest
    print(f'refreshed {write_manifest(model_dir)}')


def _run(args: argparse.Namespace) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    from ..model_config import load_model_config
    from ..runtime.stage_files import onnx_files_present

    if args.int8 and args.calibration is None:
        raise SystemExit('anomaly_seg export: error: --int8 needs --calibration DATASET:ROOT[:SPLIT] (training frames)')
    if args.int8 and args.fp16:
        raise SystemExit('anomaly_seg export: error: --int8 and --fp16 are separate exports; run one, then the other')
    if args.calibration_frames < 1 or args.validation_frames < 1:
        raise SystemExit('anomaly_seg export: error: --calibration-frames and --validation-frames must be positive')
    config = load_model_config(args.models)
    exported = onnx_files_present(args.models, config, fp16=args.fp16)
    no_torch = importlib.util.find_spec('torch') is None
    if (args.tensorrt or args.int8) and (exported or (no_torch and onnx_files_present(args.models, config))):
        if args.out.resolve() != args.models.resolve():
            _copy_exported(args.models, args.out)
    else:
        from ..export import export_model, load_frames

        frames = load_frames(args.frames, args.max_frames) if args.frames else None
        report = export_model(args.models, args.out, fp16=args.fp16, frames=frames)
        print('\n'.join(report.lines()))
    if args.int8:
        _quantize(args)
    if args.tensorrt:
        _build(args)
    return 0
