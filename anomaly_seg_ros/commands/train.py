"""``anomaly_seg train``: train the stages (segmentation, synthesis, calibrate, dissimilarity), all of
them in order (``all``), or the paper's ablation (``ablation``).

Several processes (GPUs, machines): launch the same command with PyTorch's torchrun, e.g.
``torchrun --nproc_per_node 4 -m anomaly_seg_ros.cli train all ...``; see :mod:`..training.distributed`."""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

__all__ = ['register']

_DATASETS = ('cityscapes', 'camvid', 'synthetic')
_STAGES = {
    'segmentation': 'ICNet with cascade label guidance, poly LR, scale/crop/flip augmentation; mIoU each epoch; '
                    'or --pretrained: import public weights (ESPNetv2 Cityscapes) and score them on val',
    'synthesis': 'SPADE generator + multi-scale discriminator (hinge GAN, feature matching, VGG loss with '
                 '--vgg-weights, TTUR) on ground-truth semantic maps',
    'calibrate': 'perceptual difference scale (stages.perceptual.scale) from training frames vs their re-synthesis',
    'dissimilarity': 'the paper\'s data generator (A: class swap, B: void objects; cached) and the dissimilarity '
                     'network (ENet-weighted CE, Adam, reduce-on-plateau)',
    'all': 'segmentation -> synthesis -> calibrate -> dissimilarity -> ONNX export -> tune-ensemble',
}


def _common(parser: argparse.ArgumentParser, stage: str) -> None:
    parser.add_argument('--dataset', required=True, choices=_DATASETS, help='dataset kind')
    parser.add_argument('--root', required=True, type=Path, metavar='PATH', help='dataset root folder')
    parser.add_argument('--out', required=True, type=Path, metavar='DIR', help='model directory to create or extend')
    parser.add_argument('--work', type=Path, metavar='DIR',
                        help='checkpoints, logs (CSV, TensorBoard) and generated data (default OUT/training)')
    parser.add_argument('--config', default='light', metavar='light|demo|real|paper|FILE',
                        help='preset (paper: full scale for a GPU; light: CPU-sized; demo: the shipped models/demo; '
                             'real: the shipped real-frame model from public weights and CamVid) or YAML '
                             'configuration file (default %(default)s)')
    parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE', dest='sets',
                        help='override any configuration value, e.g. --set dissimilarity.batch_size=8 (repeatable)')
    parser.add_argument('--seed', type=int, help='random seed (default 0)')
    parser.add_argument('--device', help="'auto' (CUDA when available, default), 'cpu', 'cuda', 'cuda:N'")
    parser.add_argument('--num-workers', type=int, metavar='N',
                        help='data loader worker processes per training process (default: 0 on the CPU, '
                             'up to 4 on CUDA)')
    if stage != 'calibrate':
        parser.add_argument('--precision', choices=('fp32', 'bf16', 'fp16'),
                            help='fp32 (default), or mixed precision on CUDA: bf16, fp16 (with a gradient scaler)')
        parser.add_argument('--sync-batchnorm', action='store_true',
                            help='under torchrun: BatchNorm statistics over the global batch (segmentation, '
                                 'synthesis generator)')
    parser.add_argument('--train-limit', type=int, metavar='N', help='use only the first N training frames')
    parser.add_argument('--val-limit', type=int, metavar='N', help='use only the first N validation frames')
    parser.add_argument('--resume', action='store_true', help='continue from the checkpoints in the work directory')
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    if stage in ('segmentation', 'synthesis', 'dissimilarity'):
        parser.add_argument('--epochs', type=int, metavar='N', help='training epochs')
        parser.add_argument('--batch-size', type=int, metavar='N', help='batch size')
    if stage == 'all':
        for name in ('segmentation', 'synthesis', 'dissimilarity'):
            parser.add_argument(f'--epochs-{name}', type=int, metavar='N', help=f'{name} training epochs')
        parser.add_argument('--no-export', action='store_true', help='do not export ONNX graphs at the end')
        parser.add_argument('--half-weights', action='store_true',
                            help='store the .pt weights in float16 (half the size; ONNX exported from them)')
    if stage in ('segmentation', 'all'):
        parser.add_argument('--pretrained', type=Path, metavar='FILE',
                            help='import these public weights as the segmentation stage instead of training it '
                                 '(ESPNetv2 Cityscapes .pth for architecture espnetv2; see --config real)')
    if stage in ('calibrate', 'dissimilarity', 'all'):
        parser.add_argument('--squeezenet-weights', type=Path, metavar='FILE',
                            help='SqueezeNet v1.1 ImageNet features (.npz) for a squeezenet_features perceptual stage '
                                 'and a squeezenet dissimilarity encoder')
        parser.add_argument('--lpips-weights', type=Path, metavar='FILE',
                            help='LPIPS v0.1 SqueezeNet heads (.npz) for its lpips distance')
    if stage in ('synthesis', 'calibrate', 'dissimilarity', 'all'):
        parser.add_argument('--vgg-weights', type=Path, metavar='FILE',
                            help='torchvision VGG19 ImageNet state dict: perceptual stage (width 1) and the '
                                 'synthesis VGG loss (without it: no VGG loss, random perceptual features)')
    if stage in ('segmentation', 'dissimilarity', 'all'):
        parser.add_argument('--objects', type=Path, metavar='DIR',
                            help='RGBA object cutouts with manifest.json (../shared/data/coco_objects) for source C '
                                 'and the segmentation outlier exposure: training categories pasted into training '
                                 'frames, held-out ones into the validation set')
    if stage in ('dissimilarity', 'all'):
        parser.add_argument('--vgg16-weights', type=Path, metavar='FILE',
                            help='torchvision VGG16 ImageNet state dict for the dissimilarity encoder (width 1)')
        parser.add_argument('--sources', metavar='A,B,C', help='data generator sources: A class swap, B void '
                            'objects, C pasted objects (default: the preset\'s; A,B, real: A,C)')
        parser.add_argument('--void', choices=('ignore', 'anomaly'),
                            help="void pixels in sources B and C: 'ignore' or 'anomaly' (default: the preset's)")
        parser.add_argument('--pastes-per-frame', type=int, metavar='N',
                            help='source C: differently pasted copies of each training frame')
        parser.add_argument('--validation-set', type=Path, metavar='DIR',
                            help='source C\'s validation set (written there once when missing; default '
                                 'WORK/validation_objects)')
        parser.add_argument('--no-uncertainty', action='store_true',
                            help='ablation: dissimilarity network without the uncertainty inputs')
        parser.add_argument('--cache-dir', type=Path, metavar='DIR', help='where generated training sets are cached')


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'train', help='train the stages, all of them in order, or the ablation',
        description='Train the pipeline\'s networks into a model directory (model.yaml + <stage>.pt). Every '
                    'command: typed configuration (preset or YAML, --set overrides; saved as config.yaml beside '
                    'each checkpoint), fixed seed, CUDA when available, a checkpoint every epoch (--resume), '
                    'CSV + TensorBoard logs, progress bars and a summary line with the validation figures.')
    actions = parser.add_subparsers(dest='train_command', metavar='STAGE', required=True)
    for stage, text in _STAGES.items():
        sub = actions.add_parser(stage, help=text, description=text)
        _common(sub, stage)
        sub.set_defaults(run=_run, command_line=lambda args, sub=sub, stage=stage: _command_line(sub, stage, args))
    ablation = actions.add_parser(
        'ablation', help='the paper\'s ablation table on an anomaly test set',
        description='Trains a re-synthesis-only dissimilarity network (no uncertainty inputs, no data generator '
                    'source B, otherwise the model\'s own training settings) into OUT/resynthesis_only, then '
                    'evaluates softmax entropy, softmax distance, perceptual difference, re-synthesis only, '
                    'dissimilarity without ensemble and the full framework; writes OUT/ablation.md and .json.')
    ablation.add_argument('--models', required=True, type=Path, metavar='DIR', help='the full model directory')
    ablation.add_argument('--dataset', required=True, help='anomaly dataset kind (synthetic, fishyscapes, ...), or a '
                          'segmentation set (camvid, cityscapes) whose void objects are the anomalies')
    ablation.add_argument('--root', required=True, type=Path, metavar='PATH', help='dataset root folder')
    ablation.add_argument('--split', help='split (default: anomaly_test for synthetic)')
    ablation.add_argument('--out', required=True, type=Path, metavar='DIR', help='output folder')
    ablation.add_argument('--backend', default='torch', choices=('torch', 'onnxruntime', 'tensorrt'),
                          help='backend for the full model (default %(default)s)')
    ablation.add_argument('--device', help="'cpu', 'cuda', 'cuda:N' (default: CUDA when available)")
    ablation.add_argument('--limit', type=int, metavar='N', help='evaluate only the first N frames')
    ablation.add_argument('--epochs', type=int, metavar='N', help='epochs of the re-synthesis-only network '
                          '(default: the model\'s dissimilarity epochs)')
    ablation.add_argument('--cache-dir', metavar='DIR', help='generated training sets (reused when they match)')
    ablation.add_argument('--resume', action='store_true', help='continue an interrupted ablation training')
    ablation.add_argument('--quiet', action='store_true', help='no progress bars')
    ablation.set_defaults(run=_run_ablation)


def _command_line(parser: argparse.ArgumentParser, stage: str, args: argparse.Namespace) -> str:
    """The canonical command that reproduces ``args`` (options that differ from their defaults)."""
    words = ['anomaly_seg', 'train', stage]
    for action in parser._actions:  # noqa: SLF001 - argparse keeps its options there
        if not action.option_strings or action.dest == 'help':
            continue
        value = getattr(args, action.dest, None)
        if value is None or value == action.default:
            continue
        flag = action.option_strings[-1]
        if isinstance(action, argparse._StoreTrueAction):  # noqa: SLF001
            words.append(flag)
        elif isinstance(value, list):
            for item in value:
                words += [flag, str(item)]
        else:
            words += [flag, str(value)]
    return shlex.join(words)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    stage = args.train_command

    def get(name: str) -> Any:
        return getattr(args, name, None)

    over: dict[str, Any] = {
        'seed': args.seed, 'device': args.device, 'num_workers': args.num_workers,
        'precision': get('precision'), 'sync_batchnorm': True if get('sync_batchnorm') else None,
        'vgg19_weights': str(get('vgg_weights')) if get('vgg_weights') else None,
        'data': {'dataset': args.dataset, 'root': str(args.root), 'train_limit': args.train_limit,
                 'val_limit': args.val_limit},
    }
    for key in ('squeezenet_weights', 'lpips_weights'):
        over[key] = str(get(key)) if get(key) else None
    if stage in ('segmentation', 'synthesis', 'dissimilarity'):
        over[stage] = {'epochs': args.epochs, 'batch_size': args.batch_size}
    if stage == 'all':
        for name in ('segmentation', 'synthesis', 'dissimilarity'):
            over[name] = {'epochs': get(f'epochs_{name}')}
        over['export'] = {'onnx': False if args.no_export else None,
                          'torch_dtype': 'float16' if args.half_weights else None}
    if get('pretrained'):
        over.setdefault('segmentation', {})['pretrained'] = str(args.pretrained)
    if get('objects'):
        over.setdefault('dissimilarity', {}).setdefault('generator', {})['objects'] = str(args.objects)
    if stage in ('dissimilarity', 'all'):
        diss = over.setdefault('dissimilarity', {})
        diss.update({'vgg16_weights': str(args.vgg16_weights) if args.vgg16_weights else None,
                     'use_uncertainty': False if args.no_uncertainty else None,
                     'cache_dir': str(args.cache_dir) if args.cache_dir else None})
        generator = {'void': args.void,
                     'pastes_per_frame': args.pastes_per_frame,
                     'validation_set': str(args.validation_set) if args.validation_set else None}
        if args.sources:
            generator['sources'] = [s.strip().upper() for s in args.sources.split(',') if s.strip()]
        diss.setdefault('generator', {}).update(generator)
    return over


def _run(args: argparse.Namespace) -> int:
    from ..training import (
        calibrate_perceptual,
        load_train_config,
        parse_overrides,
        train_all,
        train_dissimilarity,
        train_segmentation,
        train_synthesis,
    )
    from ..training.distributed import init_distributed, shutdown_distributed
    config = load_train_config(args.config, _overrides(args), parse_overrides(args.sets))
    # Under torchrun: join the process group before anything else (a half-set environment fails here).
    dist = init_distributed(config.device)
    try:
        show = not args.quiet
        stage = args.train_command
        if stage == 'all':
            train_all(config, args.out, args.work, args.resume, show, command=args.command_line(args))
            return 0
        if stage == 'calibrate':
            result = calibrate_perceptual(config, args.out, show_progress=show)
        else:
            trainer = {'segmentation': train_segmentation, 'synthesis': train_synthesis,
                       'dissimilarity': train_dissimilarity}[stage]
            result = trainer(config, args.out, args.work, args.resume, show)
        if dist.is_main:
            print(result.summary())
        return 0
    finally:
        shutdown_distributed()


def _run_ablation(args: argparse.Namespace) -> int:
    from ..training import run_ablation
    from ..training.distributed import DistributedError, launch_environment
    env = launch_environment()
    if env is not None and env.world_size > 1:
        raise DistributedError('train ablation runs in one process; start it without torchrun')
    result = run_ablation(args.models, args.dataset, args.root, args.out, args.split, args.resume, args.backend,
                          args.device, args.limit, args.cache_dir, args.epochs, show_progress=not args.quiet)
    print(result.markdown())
    return 0
