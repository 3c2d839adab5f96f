"""``anomaly_seg data``: generate the synthetic driving dataset, check any dataset."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..data import DATASET_KINDS, dataset_splits, open_dataset, summarize
from ..data.synthetic import DEFAULT_COUNTS, DEFAULT_SIZE, write_dataset

__all__ = ['register']


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected WIDTHxHEIGHT such as 512x256, got {text!r}') from None
    if width < 32 or height < 16:
        raise argparse.ArgumentTypeError(f'size must be at least 32x16, got {text!r}')
    return width, height


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'a frame count must be >= 0, got {value}')
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'data', help='generate the synthetic dataset; check a dataset',
        description='Dataset tools. `synthetic` writes the project\'s self-contained synthetic driving '
                    'dataset (Cityscapes-format train/val with void objects, and an anomaly test split); '
                    '`check` opens a dataset, loads every image/label pair and prints its statistics.')
    actions = parser.add_subparsers(dest='data_command', metavar='ACTION', required=True)

    synthetic = actions.add_parser(
        'synthetic', help='write a synthetic driving dataset',
        description='Render synthetic street scenes (road, lane marks, sidewalks, buildings, vegetation, '
                    'terrain, sky, poles, signs, cars and people as instances) in Cityscapes format under '
                    'OUT/leftImg8bit and OUT/gtFine (labelIds, instanceIds) for train and val, where void '
                    'objects (labelId 5: crates, bins, carts) stand in for the paper\'s training anomalies; '
                    'and an anomaly test split OUT/anomaly_test/{original,labels} (Fishyscapes layout, '
                    'labels 0 inlier / 1 anomaly / 255 void object) with anomaly kinds never seen in '
                    'training (animals, rocks, tyres, cones, patterned boxes, sacks). Frames depend only on '
                    '(seed, split, index): re-running resumes, skipping frames already written. '
                    'Read it with dataset kind "synthetic".')
    synthetic.add_argument('--out', required=True, type=Path, metavar='DIR', help='output folder (new, or one '
                           'made earlier with the same --seed and --size to extend or resume)')
    synthetic.add_argument('--train', type=_count, default=DEFAULT_COUNTS['train'], metavar='N',
                           help='number of training frames (default %(default)s)')
    synthetic.add_argument('--val', type=_count, default=DEFAULT_COUNTS['val'], metavar='N',
                           help='number of validation frames (default %(default)s)')
    synthetic.add_argument('--anomaly-test', type=_count, default=DEFAULT_COUNTS['anomaly_test'], metavar='N',
                           help='number of anomaly test frames (default %(default)s)')
    synthetic.add_argument('--size', type=_size, default='{}x{}'.format(*DEFAULT_SIZE), metavar='WxH',
                           help='frame size in pixels (default %(default)s)')
    synthetic.add_argument('--seed', type=int, default=0,
                           help='random seed; the same seed gives the same bytes (default %(default)s)')
    synthetic.add_argument('--quiet', action='store_true', help='no progress bar')
    synthetic.set_defaults(run=_run_synthetic)

    check = actions.add_parser(
        'check', help='validate a dataset and print its statistics',
        description='Open a dataset, load every image/label pair (a missing label file, an image/label size '
                    'mismatch or an empty split stops with a message naming the file) and print sample '
                    'counts, image sizes, the class histogram and anomaly label shares. Without --split, '
                    'every split present is checked.')
    check.add_argument('--dataset', required=True, choices=DATASET_KINDS, help='dataset kind')
    check.add_argument('--root', required=True, type=Path, metavar='PATH', help='dataset root folder')
    check.add_argument('--split', default=None, help='split to check (train, val, test, anomaly_test)')
    check.add_argument('--limit', type=int, default=None, metavar='N', help='check only the first N samples')
    check.add_argument('--quiet', action='store_true', help='no progress bar')
    check.set_defaults(run=_run_check)

    paste = actions.add_parser(
        'paste', help='write a split with real objects pasted on the road (an anomaly validation set)',
        description='Paste 1-3 object cutouts per frame where an obstacle would stand (on road/sidewalk pixels '
                    'of the ground truth, perspective-sized, colour-matched, feathered, with contact shadows) into '
                    'every frame of a split and write a `folder` anomaly set: OUT/images, OUT/labels (0 inlier, '
                    '1 pasted object, 255 ignored: void pixels unless --void anomaly, feathered edges) and '
                    'OUT/pasted.json. Frame i draws from (seed, i). `train ... --objects` writes the validation '
                    'split this way with the held-out categories; score a model on it with '
                    '`anomaly_seg eval --dataset folder --root OUT`. Refuses test splits: they stay for evaluation.')
    paste.add_argument('--dataset', required=True, choices=('camvid', 'cityscapes', 'synthetic'),
                       help='a segmentation dataset with road labels')
    paste.add_argument('--root', required=True, type=Path, metavar='PATH', help='dataset root folder')
    paste.add_argument('--split', default='val', choices=('train', 'val'), help='split (default %(default)s)')
    paste.add_argument('--objects', required=True, type=Path, metavar='DIR',
                       help='RGBA cutouts with manifest.json (../shared/data/coco_objects)')
    paste.add_argument('--part', default='held_out', choices=('held_out', 'train'),
                       help='object categories: held_out (validation) or train (default %(default)s)')
    paste.add_argument('--void', default='ignore', choices=('ignore', 'anomaly'),
                       help='what the void pixels are in the labels (default %(default)s)')
    paste.add_argument('--out', required=True, type=Path, metavar='DIR', help='output folder (replaced)')
    paste.add_argument('--seed', type=int, default=0, help='random seed (default %(default)s)')
    paste.add_argument('--sheet', type=int, default=12, metavar='N',
                       help='also write OUT/sheet.jpg with the first N frames and their labels (0: none)')
    paste.add_argument('--quiet', action='store_true', help='no progress bar')
    paste.set_defaults(run=_run_paste)


def _run_synthetic(args: argparse.Namespace) -> int:
    counts = {'train': args.train, 'val': args.val, 'anomaly_test': args.anomaly_test}
    report = write_dataset(args.out, counts, args.size, args.seed, progress=not args.quiet)
    speed = (f'{report.frames_per_second:.1f} frames/s, {report.frames_per_cpu_second:.1f} per CPU second'
             if report.written else 'nothing to render')
    print(f'{args.out}: wrote {report.written} frames, kept {report.skipped} existing ({speed}); '
          f'read it with dataset kind "synthetic", splits train/val/anomaly_test')
    return 0


def _run_check(args: argparse.Namespace) -> int:
    splits = [args.split] if args.split else dataset_splits(args.dataset, args.root) or [None]
    for split in splits:
        dataset = open_dataset(args.dataset, args.root, split)
        label_set = dataset.label_set
        print(f'{args.dataset} {args.root}' + (f' split {split}' if split else '')
              + (f' (label set {label_set.name})' if label_set else ''))
        summary = summarize(dataset, progress=not args.quiet, limit=args.limit)
        for line in summary.lines(label_set.class_names if label_set else None):
            print(f'  {line}')
    return 0


def _run_paste(args: argparse.Namespace) -> int:
    from ..data.objects import ObjectBank
    from ..data.pasting import write_pasted_set, write_sheet
    from ..training.common import progress
    dataset = open_dataset(args.dataset, args.root, args.split)
    bank = ObjectBank(args.objects, args.part)
    out = write_pasted_set(dataset, bank, args.out, args.seed, void_policy=args.void,
                           progress=lambda it, **kw: progress(it, not args.quiet, **kw))
    print(f'{out}: {len(dataset)} {args.dataset} {args.split} frames with {bank.part} objects '
          f'({len(bank)} cutouts of {len(bank.categories)} categories) pasted; '
          f'read it with --dataset folder --root {out}')
    if args.sheet:
        print(f'sheet: {write_sheet(out, args.sheet)}')
    return 0
