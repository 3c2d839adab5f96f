"""Run by test_distributed.py under ``python -m torch.distributed.run``: the multi-process side of its tests.

One process group for the whole run (PyTorch does not reliably re-join one within a process), so every
item of the JSON spec runs here in order:
- ``grad_checks``: one float64 DDP step of a stage's network, each rank on its half of a fixed batch;
  rank 0 also computes the one-process gradient of the whole batch and writes both differences;
- ``steps``: trainer calls (``{"stage", "out", "sets", "resume"}``), or ``{"copy": [FROM, TO]}`` of a model
  directory (rank 0 copies);
- ``cli``: a last ``anomaly_seg`` command line (it leaves the process group at its end).
"""
from __future__ import annotations

import copy
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

from anomaly_seg_ros.cli import main
from anomaly_seg_ros.model_config import load_model_config
from anomaly_seg_ros.networks import build_network, one_hot, resize_labels_nearest
from anomaly_seg_ros.training import (
    calibrate_perceptual,
    load_train_config,
    train_dissimilarity,
    train_segmentation,
    train_synthesis,
)
from anomaly_seg_ros.training.config import _merge
from anomaly_seg_ros.training.distributed import Dist, init_distributed
from anomaly_seg_ros.training.loop import cross_entropy
from anomaly_seg_ros.training.segmentation import _WithAux

TRAINERS = {'segmentation': train_segmentation, 'synthesis': train_synthesis, 'dissimilarity': train_dissimilarity}


def _segmentation_case(model_dir: str) -> tuple[torch.nn.Module, Any, bool]:
    """ICNet (BatchNorm, synchronized) with the cascade loss; rank 0's half has ignored pixels, rank 1's not."""
    network = build_network('segmentation', load_model_config(model_dir).stage('segmentation').architecture)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 64, 128, generator=generator)
    y = torch.randint(0, 10, (2, 64, 128), generator=generator)
    y[0, :20] = 255

    def loss(module: torch.nn.Module, part: slice, dist: Dist | None) -> torch.Tensor:
        main_out, *aux = module(x[part])
        labels = y[part]
        total = cross_entropy(main_out, labels, dist=dist)
        for logits in aux:
            total = total + 0.4 * cross_entropy(logits, resize_labels_nearest(labels, tuple(logits.shape[-2:])),
                                                dist=dist)
        return total
    return _WithAux(network), loss, True


def _dissimilarity_case(model_dir: str) -> tuple[torch.nn.Module, Any, bool]:
    """The dissimilarity network with ENet-style class weights; uneven labelled pixels between the halves."""
    model = load_model_config(model_dir)
    network = build_network('dissimilarity', model.stage('dissimilarity').architecture, warn_if_random=False)
    generator = torch.Generator().manual_seed(2)
    shape = (2, 3, 32, 64)
    image, synthesis, unc = (torch.randn(shape, generator=generator) for _ in range(3))
    semantic = one_hot(torch.randint(0, 10, (2, 32, 64), generator=generator), 10).to(torch.float64)
    labels = torch.randint(0, 2, (2, 32, 64), generator=generator)
    labels[1, 5:] = 255
    weight = torch.tensor([0.3, 2.0])

    def loss(module: torch.nn.Module, part: slice, dist: Dist | None) -> torch.Tensor:
        logits = module(image[part], synthesis[part], semantic[part], unc[part])
        return cross_entropy(logits, labels[part], weight, dist)
    return network, loss, False


CASES = {'segmentation': _segmentation_case, 'dissimilarity': _dissimilarity_case}


def grad_check(stage: str, model_dir: str, dist: Dist) -> dict[str, float] | None:
    torch.set_default_dtype(torch.float64)
    try:
        torch.manual_seed(0)
        module, loss, sync_bn = CASES[stage](model_dir)
        reference = copy.deepcopy(module)
        trained = dist.wrap(module, sync_batchnorm=sync_bn)
        loss(trained, slice(dist.rank, dist.rank + 1), dist).backward()
        if not dist.is_main:
            return None
        reference.train()
        loss(reference, slice(0, 2), None).backward()
        grad = max(float((p.grad - q.grad).abs().max() / q.grad.abs().max().clamp(min=1e-30))
                   for p, q in zip(module.parameters(), reference.parameters()))
        buffers = max([float((a - b).abs().max()) for a, b in zip(module.buffers(), reference.buffers())
                       if a.is_floating_point()] or [0.0])
        return {'grad_rel': grad, 'buffer_abs': buffers}
    finally:
        torch.set_default_dtype(torch.float32)


def run(spec: dict) -> int:
    dist = init_distributed('cpu')
    checks = {item['stage']: grad_check(item['stage'], item['model'], dist) for item in spec.get('grad_checks', [])}
    if dist.is_main and spec.get('result'):
        Path(spec['result']).write_text(json.dumps(checks))
    for step in spec['steps']:
        if 'copy' in step:
            if dist.is_main:
                shutil.copytree(*step['copy'])
            dist.barrier()
            continue
        config = load_train_config('light', sets=_merge(spec['sets'], step.get('sets', {})))
        if step['stage'] == 'calibrate':
            calibrate_perceptual(config, step['out'], show_progress=False)
        else:
            result = TRAINERS[step['stage']](config, step['out'], resume=step.get('resume', False),
                                             show_progress=False)
            print(f'rank {dist.rank}: {result.stage} {result.epochs} epochs {result.steps} steps', flush=True)
    if spec.get('cli'):
        return main(spec['cli'])
    return 0


if __name__ == '__main__':
    sys.exit(run(json.loads(Path(sys.argv[1]).read_text())))
