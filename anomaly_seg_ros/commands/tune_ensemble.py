"""``anomaly_seg tune-ensemble``: grid-search the ensemble weights of a model directory."""
from __future__ import annotations

import argparse
from pathlib import Path

# training.config.ENSEMBLE_CRITERIA's keys, spelled out: importing the training package here would load torch
# for every command.
CRITERIA = ('lowest_fpr95', 'lowest_fpr95_keeping_ap')

__all__ = ['CRITERIA', 'register']


def _grid(text: str) -> list[int]:
    try:
        values = sorted({int(v) for v in text.split(',') if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected comma-separated integers such as 0,1,2,3, got {text!r}') from None
    if not values or min(values) < 0 or max(values) <= 0:
        raise argparse.ArgumentTypeError(f'the grid needs non-negative integers with a positive one, got {text!r}')
    return values


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'tune-ensemble', help='grid-search the ensemble weights on a validation split',
        description='Scores every weight vector of GRID^4 (normalized, duplicates dropped; order: dissimilarity, '
                    'entropy, perceptual difference, softmax distance) on the validation split: the pipeline\'s '
                    'cue maps are computed once per frame, labels are the data generator\'s void objects (or the '
                    'dataset\'s anomaly labels). Picks the lowest FPR95 (with lowest_fpr95_keeping_ap: among the '
                    'vectors whose AP is at least the best single cue\'s), ties broken by AP, and writes the weights '
                    'into MODELS/model.yaml. The anomaly test split is refused.')
    parser.add_argument('--models', required=True, type=Path, metavar='DIR', help='model directory')
    parser.add_argument('--dataset', help='dataset kind (default: the one the model was trained on)')
    parser.add_argument('--root', type=Path, metavar='PATH', help='dataset root (default: the training one)')
    parser.add_argument('--split', default='val', help='validation split (default %(default)s)')
    parser.add_argument('--grid', type=_grid, default=[0, 1, 2, 3], metavar='0,1,2,3',
                        help='weight values per cue (default 0,1,2,3)')
    parser.add_argument('--limit', type=int, metavar='N', help='use only the first N frames')
    parser.add_argument('--bins', type=int, default=4096, help='score quantization levels (default %(default)s)')
    parser.add_argument('--criterion', choices=CRITERIA,
                        help='selection rule (default: the one the model was trained with, else lowest_fpr95)')
    parser.add_argument('--backend', default='torch', choices=('torch', 'onnxruntime', 'tensorrt'),
                        help='inference backend for the cue maps (default %(default)s)')
    parser.add_argument('--device', help="'cpu', 'cuda', 'cuda:N' (default: CUDA when available)")
    parser.add_argument('--dry-run', action='store_true', help='report the best weights without writing them')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from ..training import criterion_of, training_data_of, tune_ensemble
    dataset, root = training_data_of(args.models, args.dataset, args.root)
    tune_ensemble(args.models, dataset, root, args.split, args.grid, args.limit, args.bins, args.backend,
                  args.device, write=not args.dry_run, show_progress=not args.quiet,
                  criterion=args.criterion or criterion_of(args.models))
    return 0
