"""``train synthesis``: the SPADE generator (Park et al., CVPR 2019) on ground-truth semantic maps.

As SPADE: a multi-scale PatchGAN discriminator on (one-hot map, image); hinge GAN loss (averaged
over the scales); discriminator feature matching (L1 of every intermediate discriminator feature,
``lambda_feat / num_D``); a VGG19 perceptual loss (weights 1/32 ... 1, ``lambda_vgg``) only when
ImageNet VGG19 weights are given (``vgg19_weights``: random VGG features are no perceptual loss);
TTUR Adam (G 1e-4, D 4e-4, betas (0, 0.9)); linear decay of both rates to zero from
``decay_start_epoch``. Optional, off by default: a pixel L1 term ``lambda_l1`` (pix2pix, Isola et
al. 2017) for short runs without ImageNet VGG weights, where GAN and feature matching alone give the
generator too weak a reconstruction signal for the few thousand steps a CPU affords.
Inputs: the ground-truth train ids brought to the segmentation input size and then to the synthesis
size with nearest resizing (the path a predicted map takes), one-hot with ignore as all-zero;
targets: the frame brought to the segmentation size and bilinearly resized to the synthesis size
(what the later stages compare against), in [-1, 1]; horizontal flips.
Validation after each epoch: mean L1 (RGB in [0, 1]) between synthesized and real validation frames;
a sample sheet ``samples/epoch_NNN.png`` is written to the work directory.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..networks import build_network, multiscale_discriminator, one_hot, resize_bilinear, vgg19_features
from ..uncertainty import PERCEPTUAL_LAYER_WEIGHTS
from .common import Checkpoint, NullLogger, RunLogger, StageResult, Timer, progress
from .config import SynthesisConfig, TrainConfig
from .frames import Frames, open_frames, resize_nearest
from .loop import (
    EpochData,
    begin_stage,
    data_workers,
    normalize_images,
    resume_from,
    resumed_note,
    run_record,
    save_epoch,
)
from .model_dir import record_stage, save_stage_network
from .predicted import PredictedFrames, stage_frames

__all__ = ['GANLosses', 'evaluate_synthesis', 'train_synthesis']

STAGE = 'synthesis'
_Outputs = list[list[torch.Tensor]]  # discriminator features per scale, the prediction last


class GANLosses:
    """SPADE's losses for one batch. ``d_out`` = discriminator outputs per scale (lists of features)."""

    @staticmethod
    def split(outputs: list[list[torch.Tensor]], batch: int) -> tuple[_Outputs, _Outputs]:
        """Outputs of D on cat([fake, real]) -> (fake part, real part)."""
        fake = [[f[:batch] for f in scale] for scale in outputs]
        real = [[f[batch:] for f in scale] for scale in outputs]
        return fake, real

    @staticmethod
    def generator_hinge(fake: list[list[torch.Tensor]]) -> torch.Tensor:
        return sum(-scale[-1].mean() for scale in fake) / len(fake)  # type: ignore[return-value]

    @staticmethod
    def discriminator_hinge(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]) -> torch.Tensor:
        loss_fake = sum(F.relu(1.0 + scale[-1]).mean() for scale in fake) / len(fake)
        loss_real = sum(F.relu(1.0 - scale[-1]).mean() for scale in real) / len(real)
        return loss_fake + loss_real  # type: ignore[return-value]

    @staticmethod
    def feature_matching(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]], weight: float) -> torch.Tensor:
        loss = fake[0][0].new_zeros(())
        for fake_scale, real_scale in zip(fake, real):
            for f, r in zip(fake_scale[:-1], real_scale[:-1]):
                loss = loss + F.l1_loss(f, r.detach()) * weight / len(fake)
        return loss


def _vgg_loss(vgg: torch.nn.Module, fake: torch.Tensor, real: torch.Tensor, mean, std,
              autocast: Callable[[], Any] = contextlib.nullcontext) -> torch.Tensor:
    """SPADE's VGG loss on images in [-1, 1] (ImageNet-normalized before VGG19); VGG under ``autocast``,
    the L1 terms in float32."""
    with autocast():
        fx = vgg(normalize_images((fake + 1) * 0.5, mean, std))
        fr = vgg(normalize_images((real + 1) * 0.5, mean, std))
    return sum(w * F.l1_loss(a.float(), b.detach().float())  # type: ignore[return-value]
               for w, a, b in zip(PERCEPTUAL_LAYER_WEIGHTS, fx, fr))


def _float(outputs: list[list[torch.Tensor]]) -> list[list[torch.Tensor]]:
    """Discriminator outputs in float32: the hinge and feature-matching means are not taken in half precision."""
    return [[f.float() for f in scale] for scale in outputs]


@torch.no_grad()
def evaluate_synthesis(generator: torch.nn.Module, frames: Frames | PredictedFrames, num_classes: int,
                       size: tuple[int, int], device: torch.device, batch_size: int = 4,
                       sheet: Path | None = None) -> dict[str, float]:
    """Mean L1 (RGB [0, 1]) between synthesized and real frames at the synthesis size."""
    was_training = generator.training
    generator.eval()
    total, count, rows = 0.0, 0, []
    for start in range(0, len(frames), batch_size):
        batch = [frames[i] for i in range(start, min(start + batch_size, len(frames)))]
        labels = torch.from_numpy(np.stack([resize_nearest(f.semantic, size) for f in batch])).to(device)
        real = torch.from_numpy(np.stack([f.image.transpose(2, 0, 1) for f in batch])).to(device).float() / 255
        real = resize_bilinear(real, size)
        fake = (generator(one_hot(labels.long(), num_classes)) + 1) * 0.5
        total += float((fake - real).abs().mean()) * len(batch)
        count += len(batch)
        if sheet is not None and len(rows) < 4:
            for r, f in zip(real, fake):
                if len(rows) < 4:
                    rows.append(np.concatenate([_to_uint8(r), _to_uint8(f)], axis=1))
    generator.train(was_training)
    if sheet is not None and rows:
        sheet.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(sheet), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
    return {'l1': total / max(count, 1)}


def _to_uint8(chw: torch.Tensor) -> np.ndarray:
    return (chw.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)


def _lr_factor(cfg: SynthesisConfig, epoch: int) -> float:
    start = cfg.decay_start_epoch
    if start is None or epoch < start or cfg.epochs <= start:
        return 1.0
    return (cfg.epochs - epoch) / (cfg.epochs - start)


def train_synthesis(config: TrainConfig, out_dir: str | Path, work_dir: str | Path | None = None,
                    resume: bool = False, show_progress: bool = True,
                    log: Callable[[str], None] = print) -> StageResult:
    """Train the synthesis generator of the model in ``out_dir``; writes ``<out_dir>/synthesis.pt``."""
    cfg = config.synthesis
    out_dir, work, device, model, train_dataset, dist, precision = begin_stage(config, STAGE, out_dir, work_dir)
    log, show_progress = dist.main_only(log), show_progress and dist.is_main
    label_set = model.label_set
    seg_size = tuple(model.stage('segmentation').input_size)
    size = tuple(model.stage(STAGE).input_size)
    if config.data.semantic == 'predicted':
        predicted = work.parent / 'predicted'
        train = stage_frames(config, out_dir, model, config.data.train_split, config.data.train_limit, device,
                             predicted, show_progress, log, dist)
        val = stage_frames(config, out_dir, model, config.data.val_split, config.data.val_limit, device, predicted,
                           show_progress, log, dist)
    else:
        train = Frames(train_dataset, seg_size, config.data.train_limit, config.data.cache_in_memory)
        val = open_frames(config.data, config.data.val_split, seg_size, label_set, config.data.val_limit)
    num_classes = label_set.num_classes

    def make(index: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        frame = train[index]
        image, labels = frame.image.transpose(2, 0, 1), resize_nearest(frame.semantic, size)  # type: ignore[arg-type]
        if cfg.flip and rng.random() < 0.5:
            image, labels = image[:, :, ::-1], labels[:, ::-1]
        return torch.from_numpy(np.ascontiguousarray(image)), torch.from_numpy(np.ascontiguousarray(labels))

    data = EpochData(len(train), make, config.seed)
    steps_per_epoch = data.steps(cfg.batch_size, cfg.steps_per_epoch, dist.world_size)
    generator = precision.module(build_network(STAGE, model.stage(STAGE).architecture).to(device))
    disc = cfg.discriminator
    discriminator = precision.module(
        multiscale_discriminator(num_classes, disc.ndf, disc.n_layers, disc.num_d).to(device))
    vgg = None
    if config.vgg19_weights:
        vgg = precision.module(vgg19_features(1.0, config.vgg19_weights).to(device).eval().requires_grad_(False))
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    checkpoint = Checkpoint(work)
    parts = {'generator': generator, 'discriminator': discriminator, 'opt_g': opt_g, 'opt_d': opt_d}
    start = resume_from(checkpoint, resume, STAGE, device, parts, dist, optional={'scaler': precision})
    epoch, step, history, elapsed = start.epoch, start.step, start.history, start.elapsed
    if start.resumed:
        log(f'synthesis: resuming {checkpoint.path} at epoch {epoch}, step {step}' + resumed_note(start, dist))
    logger = RunLogger(work, resume=start.resumed) if dist.is_main else NullLogger()
    timer = Timer(elapsed)
    # The generator has BatchNorm (SPADE's parameter-free norm 'batch'); the discriminator instance norm only.
    g_trained = dist.wrap(generator, config.sync_batchnorm)
    d_trained = dist.wrap(discriminator)
    # The generator step runs D only for the gradient w.r.t. the fake image; D's own gradients of that
    # pass are discarded (opt_d.zero_grad), so DDP need not average them.
    d_unsynced = getattr(d_trained, 'no_sync', contextlib.nullcontext)
    workers = data_workers(config.num_workers, dist)
    generator.train()
    discriminator.train()
    losses = GANLosses()
    while epoch < cfg.epochs:
        factor = _lr_factor(cfg, epoch)
        for opt, lr in ((opt_g, cfg.lr_g), (opt_d, cfg.lr_d)):
            for group in opt.param_groups:
                group['lr'] = lr * factor
        sums: dict[str, float] = {}
        bar = progress(data.loader(epoch, cfg.batch_size, cfg.steps_per_epoch, workers, dist), show_progress,
                       desc=f'synthesis {epoch + 1}/{cfg.epochs}', unit='batch', total=steps_per_epoch)
        for images, labels in bar:
            real = precision.input(resize_bilinear(images.to(device).float() / 255.0, size) * 2 - 1)
            seg = precision.input(one_hot(labels.to(device).long(), num_classes))
            batch = real.shape[0]
            # generator step
            with precision.autocast():
                fake = g_trained(seg)
            with d_unsynced():
                with precision.autocast():
                    outputs = d_trained(torch.cat([torch.cat([seg, fake], 1), torch.cat([seg, real], 1)], 0))
                fake_out, real_out = losses.split(_float(outputs), batch)
                fake = fake.float()
                g_gan = losses.generator_hinge(fake_out)
                g_feat = losses.feature_matching(fake_out, real_out, cfg.lambda_feat)
                g_loss = g_gan + g_feat
                values = {'g_gan': g_gan.item(), 'g_feat': g_feat.item()}
                if cfg.lambda_l1 > 0:
                    g_l1 = F.l1_loss(fake, real) * cfg.lambda_l1
                    g_loss = g_loss + g_l1
                    values['g_l1'] = g_l1.item()
                if vgg is not None:
                    g_vgg = _vgg_loss(vgg, fake, real, model.mean, model.std, precision.autocast) * cfg.lambda_vgg
                    g_loss = g_loss + g_vgg
                    values['g_vgg'] = g_vgg.item()
                opt_g.zero_grad(set_to_none=True)
                precision.backward(g_loss)
            precision.step(opt_g)
            # discriminator step
            with precision.autocast():
                outputs = d_trained(torch.cat([torch.cat([seg, fake.detach()], 1), torch.cat([seg, real], 1)], 0))
            fake_out, real_out = losses.split(_float(outputs), batch)
            d_loss = losses.discriminator_hinge(fake_out, real_out)
            opt_d.zero_grad(set_to_none=True)
            precision.backward(d_loss)
            precision.step(opt_d)
            precision.update()
            values['d_hinge'] = d_loss.item()
            values = dist.mean_scalars(values)
            step += 1
            for key, value in values.items():
                sums[key] = sums.get(key, 0.0) + value
            sums['_n'] = sums.get('_n', 0.0) + 1
            logger.scalars(values, step, prefix='train/')
            if show_progress:
                bar.set_postfix(g=f'{values["g_gan"]:.2f}', d=f'{values["d_hinge"]:.2f}')  # type: ignore[attr-defined]
        epoch += 1
        figures = None
        if dist.is_main:
            figures = evaluate_synthesis(generator, val, num_classes, size, device, cfg.batch_size,
                                         sheet=work / 'samples' / f'epoch_{epoch:03d}.png')
        figures = dist.broadcast(figures)
        n = max(sums.pop('_n', 0.0), 1.0)
        row = {'epoch': epoch, 'step': step, **{k: v / n for k, v in sums.items()}, 'lr_g': cfg.lr_g * factor,
               'val_l1': figures['l1'], 'time_s': timer.elapsed}
        history.append(row)
        logger.epoch(row)
        save_epoch(checkpoint, config, STAGE, parts, dist, precision, epoch=epoch, step=step, history=history,
                   elapsed=timer.elapsed)
        log(f'synthesis epoch {epoch}/{cfg.epochs}: ' + ', '.join(f'{k} {v:.4f}' for k, v in row.items()
                                                                  if k not in ('epoch', 'step', 'time_s')))
    logger.close()
    l1 = None
    if history:
        l1 = history[-1]['val_l1']
    elif dist.is_main:
        l1 = evaluate_synthesis(generator, val, num_classes, size, device)['l1']
    l1 = dist.broadcast(l1)
    path = out_dir / model.stage(STAGE).files.get('torch', f'{STAGE}.pt')
    if dist.is_main:
        path = save_stage_network(out_dir, model, STAGE, generator.cpu().to(memory_format=torch.contiguous_format))
    result = StageResult(STAGE, epoch, step, timer.elapsed, {'val_l1': l1}, {'network': str(path)})
    if dist.is_main:
        record_stage(out_dir, STAGE, {**result.to_dict(), 'device': str(device), 'seed': config.seed,
                                      'vgg_loss': vgg is not None, 'frames': {'train': len(train), 'val': len(val)},
                                      **run_record(dist, config)})
    dist.barrier()  # the next stage reads what rank 0 wrote
    return result
