"""``anomaly_seg eval``: AP / FPR95 / AUROC of the framework and each cue on an anomaly dataset."""
from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ['register']

DATASETS = ('road_anomaly', 'fishyscapes', 'folder', 'synthetic', 'camvid', 'cityscapes')
# Segmentation sets: the semantic map is scored (mIoU in the dataset's classes), there are no anomaly labels.
_SEMANTIC_ONLY = ('camvid', 'cityscapes')
BACKENDS = ('onnxruntime', 'torch', 'tensorrt')


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'eval', aliases=['evaluate'], help='evaluate anomaly detection on a labelled dataset',
        description='Run the pipeline on every frame of an anomaly dataset and report AP, FPR95 and AUROC '
                    '(Fishyscapes convention: label 0 inlier, 1 anomaly, others ignored) for the full framework '
                    'and each single cue, as a table, metrics.json, PR/ROC curves and a grid of the worst and '
                    'best frames.')
    parser.add_argument('--dataset', required=True, choices=DATASETS, help='dataset kind')
    parser.add_argument('--root', required=True, type=Path, help='dataset root folder')
    parser.add_argument('--split', default=None,
                        help='split (synthetic: default anomaly_test; camvid/cityscapes: default test)')
    parser.add_argument('--models', type=Path, default=None,
                        help='model directory (default: the node\'s default model)')
    parser.add_argument('--backend', choices=BACKENDS, default='onnxruntime', help='inference backend')
    parser.add_argument('--device', default=None, help="'cpu', 'cuda' or 'cuda:N' (default: the backend's choice)")
    parser.add_argument('--precision', choices=('fp32', 'fp16', 'int8'), default='fp32',
                        help='fp16 / int8: the graphs (engines) of `anomaly_seg export --fp16` / `--int8`')
    parser.add_argument('--limit', type=int, default=None, metavar='N', help='evaluate only the first N frames')
    parser.add_argument('--out', type=Path, default=None,
                        help='output folder for metrics.json and figures (default: eval/<dataset>)')
    parser.add_argument('--examples', type=int, default=4, metavar='K',
                        help='worst and best frames each in the grid (default 4)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.set_defaults(run=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    from ..data.registry import SYNTHETIC_ANOMALY_SPLIT, open_dataset
    from ..evaluation import evaluate_dataset
    from ..pipeline import AnomalyPipeline
    from ..resources import default_model_dir

    if args.limit is not None and args.limit < 1:
        args.parser.error('--limit must be at least 1')
    split = args.split
    if args.dataset == 'synthetic' and split is None:
        split = SYNTHETIC_ANOMALY_SPLIT
    model_dir = args.models or default_model_dir()
    out = args.out or Path('eval') / args.dataset
    if args.dataset in _SEMANTIC_ONLY:
        return _run_semantic(args, model_dir, split or 'test')
    with AnomalyPipeline.from_model_dir(model_dir, backend=args.backend, device=args.device,
                                        precision=args.precision) as pipeline:
        dataset = open_dataset(args.dataset, args.root, split, label_set=pipeline.label_set)
        report = evaluate_dataset(pipeline, dataset, limit=args.limit, out_dir=out, num_examples=args.examples,
                                  progress=not args.no_progress, name=args.dataset)
    print(report.format_table())
    for kind, path in report.info.get('files', {}).items():
        print(f'{kind}: {path}')
    return 0


def _run_semantic(args: argparse.Namespace, model_dir: Path, split: str) -> int:
    """mIoU of the semantic map on a segmentation split; writes semantic.json."""
    import json

    from ..data.registry import open_dataset_for_model
    from ..evaluation import evaluate_semantic
    from ..pipeline import AnomalyPipeline

    out = args.out or Path('eval') / f'{args.dataset}_{split}'
    with AnomalyPipeline.from_model_dir(model_dir, backend=args.backend, device=args.device,
                                        precision=args.precision) as pipeline:
        dataset = open_dataset_for_model(args.dataset, args.root, split, pipeline.label_set)
        classes = dataset.label_set.class_names if dataset.label_set is not None else pipeline.label_set.class_names
        try:
            metrics = evaluate_semantic(pipeline, dataset, args.limit, not args.no_progress, args.dataset)
        except KeyError as exc:
            args.parser.error(str(exc.args[0]))
    report = {'dataset': args.dataset, 'split': split, 'model_dir': str(model_dir),
              'model_classes': pipeline.label_set.name, **metrics.to_dict(classes)}
    out.mkdir(parents=True, exist_ok=True)
    (out / 'semantic.json').write_text(json.dumps(report, indent=2))
    print(f'{args.dataset} {split}: mIoU {metrics.miou:.1%}, pixel accuracy {metrics.pixel_accuracy:.1%} '
          f'({pipeline.label_set.name} classes scored as {args.dataset}\'s)')
    for name, iou in report['iou'].items():
        print(f'  {name:<14} {"-" if iou is None else f"{iou:.1%}"}')
    print(f'semantic: {out / "semantic.json"}')
    return 0
