"""``train segmentation``: ICNet (Zhao et al., ECCV 2018) on a dataset's train split.

Cascade label guidance: cross-entropy on the main output (weight 1) and on the two auxiliary
outputs of :meth:`~..networks.ICNet.forward_with_aux` (1/8 and 1/16 resolution, weights 0.4 and
0.4, labels nearest-resized), ignore label 255. SGD with momentum and weight decay, poly learning
rate (power 0.9) per step. Augmentation: random scale (0.5-2.0) of the frame at the stage input
size, random crop (padded with ignore where smaller), horizontal flip. mIoU on the validation split
after every epoch, at the stage input size.

With ``segmentation.pretrained`` (``--pretrained FILE``) the stage is not trained: public weights of
the architecture (ESPNetv2 on Cityscapes, :mod:`..networks.pretrained`) are imported as they are, and
the validation split scores them, through :func:`~..labels.class_mapping` where the dataset's classes
are not the model's (Cityscapes classes on CamVid).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ..evaluation import ConfusionMatrix
from ..labels import IGNORE_INDEX, class_mapping
from ..model_config import ModelConfig
from ..networks import build_network, count_parameters, load_pretrained, resize_labels_nearest
from .common import Checkpoint, NullLogger, RunLogger, StageResult, Timer, file_sha256, progress
from .config import TrainConfig
from .dissimilarity import ensure_validation_set
from .frames import Frames, open_frames, resize_image, resize_nearest
from .loop import (
    EpochData,
    begin_stage,
    cross_entropy,
    data_workers,
    normalize_images,
    resume_from,
    resumed_note,
    run_record,
    save_epoch,
)
from .model_dir import record_stage, save_stage_network
from .segmentation_oe import finetune_segmentation_oe

__all__ = ['augment_segmentation', 'evaluate_segmentation', 'import_segmentation', 'train_segmentation']

STAGE = 'segmentation'


def augment_segmentation(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                         crop: tuple[int, int], scale: tuple[float, float],
                         flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """Random scale, crop and flip of one frame.

    Args:
        image: HxWx3 uint8; labels: HxW uint8 train ids.
        crop: (h, w) of the output; regions outside the scaled frame are 0 / ignore.
    Returns:
        (3, h, w) uint8 image and (h, w) uint8 labels.
    """
    s = float(rng.uniform(scale[0], scale[1]))
    height, width = max(1, round(image.shape[0] * s)), max(1, round(image.shape[1] * s))
    image = resize_image(image, (height, width))
    labels = resize_nearest(labels, (height, width))
    ch, cw = crop
    if height < ch or width < cw:
        pad_h, pad_w = max(ch - height, 0), max(cw - width, 0)
        image = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        labels = cv2.copyMakeBorder(labels, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=IGNORE_INDEX)
    y0 = int(rng.integers(0, image.shape[0] - ch + 1))
    x0 = int(rng.integers(0, image.shape[1] - cw + 1))
    image = image[y0:y0 + ch, x0:x0 + cw]
    labels = labels[y0:y0 + ch, x0:x0 + cw]
    if flip and rng.random() < 0.5:
        image, labels = image[:, ::-1], labels[:, ::-1]
    return np.ascontiguousarray(image.transpose(2, 0, 1)), np.ascontiguousarray(labels)


@torch.no_grad()
def evaluate_segmentation(network: torch.nn.Module, frames: Frames, num_classes: int, device: torch.device,
                          mean: tuple[float, ...], std: tuple[float, ...], batch_size: int = 4,
                          show_progress: bool = False, mapping: np.ndarray | None = None) -> dict[str, float]:
    """mIoU and pixel accuracy of ``network`` on ``frames`` (at the frames' size); ``mapping`` (a
    :func:`~..labels.class_mapping` table) first brings predictions to the frames' classes (``num_classes``)."""
    was_training = network.training
    network.eval()
    matrix = ConfusionMatrix(num_classes, IGNORE_INDEX)
    for start in progress(range(0, len(frames), batch_size), show_progress, desc='validate', unit='batch'):
        batch = [frames[i] for i in range(start, min(start + batch_size, len(frames)))]
        images = torch.from_numpy(np.stack([f.image.transpose(2, 0, 1) for f in batch])).to(device)
        prediction = network(normalize_images(images, mean, std)).max(dim=1).indices.cpu().numpy()
        if mapping is not None:
            prediction = mapping[prediction]
        for f, p in zip(batch, prediction):
            matrix.update(p, f.semantic)
    network.train(was_training)
    metrics = matrix.compute()
    return {'miou': float(metrics.miou), 'pixel_accuracy': float(metrics.pixel_accuracy)}


class _WithAux(torch.nn.Module):
    """``forward`` = ICNet's ``forward_with_aux``: DistributedDataParallel synchronizes gradients of the
    module's ``forward`` only."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.network.forward_with_aux(x)  # type: ignore[operator]


def train_segmentation(config: TrainConfig, out_dir: str | Path, work_dir: str | Path | None = None,
                       resume: bool = False, show_progress: bool = True,
                       log: Callable[[str], None] = print) -> StageResult:
    """Train the segmentation network of the model in ``out_dir``; writes ``<out_dir>/segmentation.pt``.

    Args:
        config: the run's configuration (``segmentation`` and ``data`` sections are used).
        out_dir: the model directory (``model.yaml`` is created when absent).
        work_dir: checkpoints and logs go to ``<work_dir>/segmentation`` (default ``<out_dir>/training``).
        resume: continue from the checkpoint's epoch and step.

    Under torchrun every process trains its share of each global batch (``batch_size`` per process);
    rank 0 validates and writes (see :mod:`.distributed`).
    """
    cfg = config.segmentation
    out_dir, work, device, model, train_dataset, dist, precision = begin_stage(config, STAGE, out_dir, work_dir)
    log, show_progress = dist.main_only(log), show_progress and dist.is_main
    if cfg.pretrained:
        result = (import_segmentation(config, out_dir, model, device, work, resume, show_progress, log)
                  if dist.is_main else None)
        return dist.broadcast(result)  # type: ignore[return-value]
    label_set = model.label_set
    size = tuple(model.stage(STAGE).input_size)
    train = Frames(train_dataset, size, config.data.train_limit, config.data.cache_in_memory)
    val = open_frames(config.data, config.data.val_split, size, label_set, config.data.val_limit)
    crop = tuple(cfg.crop_size) if cfg.crop_size else size

    def make(index: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        frame = train[index]
        image, labels = augment_segmentation(frame.image, frame.semantic, rng, crop,  # type: ignore[arg-type]
                                             (cfg.scale_min, cfg.scale_max), cfg.flip)
        return torch.from_numpy(image), torch.from_numpy(labels)

    data = EpochData(len(train), make, config.seed)
    steps_per_epoch = data.steps(cfg.batch_size, cfg.steps_per_epoch, dist.world_size)
    total_steps = max(1, cfg.epochs * steps_per_epoch)
    network = precision.module(build_network(STAGE, model.stage(STAGE).architecture).to(device))
    optimizer = torch.optim.SGD(network.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    checkpoint = Checkpoint(work)
    parts = {'network': network, 'optimizer': optimizer}  # what the checkpoint holds
    start = resume_from(checkpoint, resume, STAGE, device, parts, dist, optional={'scaler': precision})
    epoch, step, history, elapsed = start.epoch, start.step, start.history, start.elapsed
    if start.resumed:
        log(f'segmentation: resuming {checkpoint.path} at epoch {epoch}, step {step}' + resumed_note(start, dist))
    logger = RunLogger(work, resume=start.resumed) if dist.is_main else NullLogger()
    timer = Timer(elapsed)
    mean, std = model.mean, model.std
    aux = [float(w) for w in cfg.aux_weights]
    trained = dist.wrap(_WithAux(network), config.sync_batchnorm)
    workers = data_workers(config.num_workers, dist)
    network.train()
    while epoch < cfg.epochs:
        totals = np.zeros(2)
        bar = progress(data.loader(epoch, cfg.batch_size, cfg.steps_per_epoch, workers, dist), show_progress,
                       desc=f'segmentation {epoch + 1}/{cfg.epochs}', unit='batch', total=steps_per_epoch)
        for images, labels in bar:
            lr = cfg.lr * (1.0 - min(step, total_steps - 1) / total_steps) ** cfg.poly_power
            for group in optimizer.param_groups:
                group['lr'] = lr
            images, labels = images.to(device), labels.to(device).long()
            with precision.autocast():
                outputs = trained(precision.input(normalize_images(images, mean, std)))
            main, aux_sub24, aux_sub4 = (o.float() for o in outputs)  # losses in float32
            loss = cross_entropy(main, labels, dist=dist)
            for weight, logits in zip(aux, (aux_sub24, aux_sub4)):
                loss = loss + weight * cross_entropy(logits, resize_labels_nearest(labels, tuple(logits.shape[-2:])),
                                                     dist=dist)
            optimizer.zero_grad(set_to_none=True)
            precision.backward(loss)
            precision.step(optimizer)
            precision.update()
            step += 1
            value = dist.mean_scalars({'loss': loss.item()})['loss']
            totals += (value, 1)
            logger.scalars({'loss': value, 'lr': lr}, step, prefix='train/')
            if show_progress:
                bar.set_postfix(loss=f'{value:.3f}')  # type: ignore[attr-defined]
        epoch += 1
        figures = None
        if dist.is_main:
            figures = evaluate_segmentation(network, val, label_set.num_classes, device, mean, std, cfg.batch_size)
        figures = dist.broadcast(figures)
        row = {'epoch': epoch, 'step': step, 'loss': totals[0] / max(totals[1], 1), 'lr': lr,
               'val_miou': figures['miou'], 'val_pixel_accuracy': figures['pixel_accuracy'],
               'time_s': timer.elapsed}
        history.append(row)
        logger.epoch(row)
        save_epoch(checkpoint, config, STAGE, parts, dist, precision, epoch=epoch, step=step, history=history,
                   elapsed=timer.elapsed)
        log(f'segmentation epoch {epoch}/{cfg.epochs}: loss {row["loss"]:.4f}, val mIoU {figures["miou"]:.4f}, '
            f'pixel accuracy {figures["pixel_accuracy"]:.4f}')
    logger.close()
    if history:
        figures = {'miou': history[-1]['val_miou'], 'pixel_accuracy': history[-1]['val_pixel_accuracy']}
    elif dist.is_main:
        figures = evaluate_segmentation(network, val, label_set.num_classes, device, mean, std, cfg.batch_size)
    figures = dist.broadcast(figures)
    path = out_dir / model.stage(STAGE).files.get('torch', f'{STAGE}.pt')
    if dist.is_main:
        path = save_stage_network(out_dir, model, STAGE, network.cpu().to(memory_format=torch.contiguous_format))
    result = StageResult(STAGE, epoch, step, timer.elapsed, {'val_miou': figures['miou'],
                                                              'val_pixel_accuracy': figures['pixel_accuracy']},
                         {'network': str(path)})
    if dist.is_main:
        record_stage(out_dir, STAGE, {**result.to_dict(), 'device': str(device), 'seed': config.seed,
                                      'frames': {'train': len(train), 'val': len(val)}, **run_record(dist, config)})
    dist.barrier()  # the next stage reads what rank 0 wrote
    return result


def import_segmentation(config: TrainConfig, out_dir: Path, model: ModelConfig, device: torch.device,
                        work: Path, resume: bool = False, show_progress: bool = True,
                        log: Callable[[str], None] = print) -> StageResult:
    """Write ``<out_dir>/segmentation.pt`` from the public weights ``config.segmentation.pretrained`` and score
    them on the validation split (mIoU in the dataset's classes); with ``segmentation.outlier_exposure.epochs``
    fine-tune them with pasted objects first (:mod:`.segmentation_oe`; checkpoints in ``work``)."""
    timer = Timer()
    path = Path(config.segmentation.pretrained or '')
    architecture = model.stage(STAGE).architecture
    network = build_network(STAGE, architecture)
    load_pretrained(network, architecture, path)
    log(f'segmentation: imported {path} ({architecture["name"]}, {count_parameters(network):,} parameters)')
    size = tuple(model.stage(STAGE).input_size)
    val = open_frames(config.data, config.data.val_split, size, None, config.data.val_limit)
    labels = val.label_set or model.label_set
    mapping = class_mapping(model.label_set, labels)

    def score(net: torch.nn.Module) -> dict[str, float]:
        return evaluate_segmentation(net.to(device), val, labels.num_classes, device, model.mean, model.std,
                                     show_progress=show_progress, mapping=mapping)

    figures = score(network)
    saved = save_stage_network(out_dir, model, STAGE, network.cpu())
    extra: dict[str, Any] = {}
    if config.segmentation.outlier_exposure.epochs:
        validation_set = ensure_validation_set(config, work, show_progress, log)
        network, extra['outlier_exposure'] = finetune_segmentation_oe(
            config, out_dir, work, model, network, device, validation_set, lambda net: score(net)['miou'],
            resume, show_progress, log)
        if extra['outlier_exposure']['kept_epoch']:
            figures = score(network)
            saved = save_stage_network(out_dir, model, STAGE, network.cpu())
    validation = {'val_miou': figures['miou'], 'val_pixel_accuracy': figures['pixel_accuracy']}
    if labels.class_names != model.label_set.class_names:
        validation['val_classes'] = f'{model.label_set.name} mapped to {labels.name}'
    result = StageResult(STAGE, 0, 0, timer.elapsed, validation, {'network': str(saved)})
    record_stage(out_dir, STAGE, {**result.to_dict(), 'device': str(device), 'seed': config.seed,
                                  'pretrained': {'file': str(path), 'sha256': file_sha256(path)},
                                  'frames': {'val': len(val)}, **extra})
    return result
