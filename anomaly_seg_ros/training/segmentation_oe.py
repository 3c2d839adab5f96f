"""Outlier exposure for the segmentation stage: pasted objects get a uniform softmax (Meta-OoD's entropy maximization).

Chan, Rottmann and Gottschalk (ICCV 2021) fine-tune a segmentation network so that pixels of pasted
out-of-distribution objects get the uniform distribution as their target (cross-entropy to uniform, i.e.
maximal softmax entropy) while the other pixels keep their classes. Here:

- the frames are the training split's, with objects of the *training* categories pasted onto the road
  exactly as the data generator's source C pastes them (a new draw every epoch);
- "keep their classes" means the network's own classes before the fine-tune: the target of every other
  pixel is the imported network's prediction of the frame without objects (the predicted maps the later
  stages already use), so the Cityscapes classes stay and no CamVid-to-Cityscapes labels are needed;
- loss = cross-entropy to those predictions + ``outlier_weight`` x cross-entropy to uniform on the
  pasted pixels (the feathered band around an object is ignored);
- BatchNorm statistics stay those of the imported weights (batches of a few frames); ``trainable:
  decoder`` fine-tunes the decoder alone (about 43 k of ESPNetv2's 789 k parameters; its encoder then
  runs without gradients, the CPU budget), ``all`` the whole network.

After every epoch the validation split scores the mIoU (the dataset's classes) and the source C validation
set (held-out categories) the softmax entropy's AP on the pasted objects. The kept epoch is the one with
the highest AP among those whose mIoU lies within ``max_miou_drop`` of the imported network's; when none
does, the imported weights stay. ``<work>/segmentation/outlier_exposure.pt`` holds the state after every
epoch, so an interrupted fine-tune resumes.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data import open_dataset
from ..data.objects import ObjectBank
from ..data.pasting import PasteSettings, paste_objects, surface_mask
from ..evaluation import anomaly_metrics
from ..labels import IGNORE_INDEX
from ..model_config import ModelConfig
from ..uncertainty import softmax_entropy
from .common import Timer, progress, rng_for
from .config import ConfigError, TrainConfig
from .frames import Frames
from .loop import normalize_images
from .predicted import stage_frames

__all__ = ['finetune_segmentation_oe', 'outlier_exposure_loss', 'validation_entropy_ap']

_STATE_FILE = 'outlier_exposure.pt'
_ENCODER_PREFIX = 'base_net.'  # ESPNetv2's encoder; the rest is its decoder


def outlier_exposure_loss(logits: torch.Tensor, inlier_target: torch.Tensor, outlier: torch.Tensor,
                          outlier_weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, inlier, outlier) losses: cross-entropy to ``inlier_target`` (N, H, W class ids, 255 ignored:
    set it on the outlier pixels) + ``outlier_weight`` x cross-entropy to the uniform distribution, i.e.
    -mean_c log p_c, averaged over the ``outlier`` pixels (N, H, W bool). A term without pixels is 0."""
    log_p = F.log_softmax(logits.float(), dim=1)
    if bool((inlier_target != IGNORE_INDEX).any()):
        inlier = F.nll_loss(log_p, inlier_target.long(), ignore_index=IGNORE_INDEX)
    else:
        inlier = log_p.sum() * 0.0
    if bool(outlier.any()):
        uniform = -log_p.mean(dim=1)[outlier].mean()
    else:
        uniform = log_p.sum() * 0.0
    return inlier + outlier_weight * uniform, inlier, uniform


@torch.no_grad()
def validation_entropy_ap(network: torch.nn.Module, frames: Frames, model: ModelConfig, device: torch.device,
                          batch_size: int = 4, show_progress: bool = False) -> float:
    """AP of the softmax entropy against the pasted objects of the validation set ``frames`` (a ``folder``
    anomaly set at the segmentation input size; labels 0 / 1 / 255)."""
    was_training = network.training
    network.eval()
    scores, labels = [], []
    for start in progress(range(0, len(frames), batch_size), show_progress, desc='validate entropy', unit='batch'):
        batch = [frames[i] for i in range(start, min(start + batch_size, len(frames)))]
        images = torch.from_numpy(np.stack([f.image.transpose(2, 0, 1) for f in batch])).to(device)
        entropy = softmax_entropy(network(normalize_images(images, model.mean, model.std)))[:, 0]
        scores += list(entropy.cpu().numpy())
        labels += [f.anomaly for f in batch]
    network.train(was_training)
    return float(anomaly_metrics(scores, labels)['ap'])


def _paste_batch(frames: Any, indices: list[int], bank: ObjectBank, model: ModelConfig, seed: int, epoch: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """uint8 images with objects pasted, the inlier targets (the frames' predicted maps, 255 on and around the
    objects) and the outlier masks of training frames ``indices``; the draw depends on (seed, epoch, frame)."""
    images, targets, outliers = [], [], []
    for index in indices:
        frame = frames[index]
        rng = rng_for(seed, 7, epoch, index)
        result = paste_objects(frame.image, surface_mask(frame.semantic, model.label_set), bank, rng, PasteSettings())
        target = np.asarray(frame.semantic).astype(np.int64)
        target[result.anomaly | result.uncertain] = IGNORE_INDEX
        images.append(result.image.transpose(2, 0, 1))
        targets.append(target)
        outliers.append(result.anomaly)
    return (torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(targets)),
            torch.from_numpy(np.stack(outliers)))


def finetune_segmentation_oe(config: TrainConfig, out_dir: Path, work: Path, model: ModelConfig,
                             network: torch.nn.Module, device: torch.device, validation_set: Path,
                             score_miou: Callable[[torch.nn.Module], float], resume: bool = False,
                             show_progress: bool = True, log: Callable[[str], None] = print
                             ) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Fine-tune ``network`` (the imported segmentation network, whose file is in ``out_dir``) with outlier
    exposure; ``score_miou`` gives a network's validation mIoU, ``validation_set`` is source C's (a
    ``folder`` set). Returns the kept network and the record of the run (per-epoch figures, the kept epoch)."""
    cfg = config.segmentation.outlier_exposure
    timer = Timer()
    size = tuple(model.stage('segmentation').input_size)
    train = stage_frames(config, out_dir, model, config.data.train_split, config.data.train_limit, device,
                         work.parent / 'predicted', show_progress, log)
    pasted_val = Frames(open_dataset('folder', validation_set), size, config.data.val_limit)
    bank = ObjectBank(config.dissimilarity.generator.objects or '', 'train')

    def figures(net: torch.nn.Module) -> dict[str, float]:
        return {'val_miou': score_miou(net),
                'val_entropy_ap': validation_entropy_ap(net, pasted_val, model, device, show_progress=show_progress)}

    network = network.to(device)
    imported = copy.deepcopy(network.state_dict())
    encoder = [name for name, _ in network.named_parameters() if name.startswith(_ENCODER_PREFIX)]
    if cfg.trainable == 'decoder' and not encoder:
        raise ConfigError(f"segmentation.outlier_exposure.trainable 'decoder' needs an encoder named "
                          f"{_ENCODER_PREFIX!r} (ESPNetv2); {model.stage('segmentation').architecture['name']} has "
                          "none: use 'all'")
    trainable = [p for name, p in network.named_parameters() if cfg.trainable == 'all' or name not in encoder]
    for p in network.parameters():
        p.requires_grad_(False)
    for p in trainable:
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(trainable, lr=cfg.lr)
    state_path = work / _STATE_FILE
    epoch, history, best = 0, [], None
    if resume and state_path.is_file():
        state = torch.load(state_path, map_location=device, weights_only=False)
        network.load_state_dict(state['network'])
        optimizer.load_state_dict(state['optimizer'])
        epoch, history, best, start = state['epoch'], state['history'], state['best'], state['start']
        log(f'segmentation outlier exposure: resuming {state_path} at epoch {epoch}')
    else:
        start = figures(network)
        log(f'segmentation outlier exposure: imported network val mIoU {start["val_miou"]:.4f}, validation-set '
            f'entropy AP {start["val_entropy_ap"]:.4f}')
    steps = -(-len(train) // cfg.batch_size)  # the last batch may be smaller
    if cfg.steps_per_epoch:
        steps = min(steps, cfg.steps_per_epoch)
    network.eval()  # BatchNorm keeps the imported statistics
    while epoch < cfg.epochs:
        order = rng_for(config.seed, 7, epoch).permutation(len(train))
        sums = np.zeros(3)  # loss, inlier, outlier
        bar = progress(range(steps), show_progress, desc=f'segmentation outlier exposure {epoch + 1}/{cfg.epochs}',
                       unit='batch')
        for step in bar:
            indices = [int(i) for i in order[step * cfg.batch_size:(step + 1) * cfg.batch_size]]
            images, targets, outliers = _paste_batch(train, indices, bank, model, config.seed, epoch)
            logits = network(normalize_images(images.to(device), model.mean, model.std))
            loss, inlier, uniform = outlier_exposure_loss(logits, targets.to(device), outliers.to(device),
                                                          cfg.outlier_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sums += [float(loss.detach()), float(inlier.detach()), float(uniform.detach())]
        epoch += 1
        means = sums / max(steps, 1)
        row = {'epoch': epoch, 'loss': float(means[0]), 'inlier_loss': float(means[1]), 'outlier_loss': float(means[2]),
               **figures(network)}
        history.append(row)
        if row['val_miou'] >= start['val_miou'] - cfg.max_miou_drop and \
                row['val_entropy_ap'] > (best or {'val_entropy_ap': start['val_entropy_ap']})['val_entropy_ap']:
            best = {**row, 'state_dict': copy.deepcopy(network.state_dict())}
        log(f'segmentation outlier exposure epoch {epoch}/{cfg.epochs}: loss {row["loss"]:.4f} (inlier '
            f'{row["inlier_loss"]:.4f}, outlier {row["outlier_loss"]:.4f}), val mIoU {row["val_miou"]:.4f}, '
            f'entropy AP {row["val_entropy_ap"]:.4f}')
        work.mkdir(parents=True, exist_ok=True)
        tmp = state_path.with_name(state_path.name + '.tmp')
        torch.save({'network': network.state_dict(), 'optimizer': optimizer.state_dict(), 'epoch': epoch,
                    'history': history, 'best': best, 'start': start}, tmp)
        tmp.replace(state_path)
    for p in network.parameters():
        p.requires_grad_(True)
    kept = 0 if best is None else int(best['epoch'])
    network.load_state_dict(best['state_dict'] if best is not None else imported)
    if best is None:
        log('segmentation outlier exposure: no epoch raised the entropy AP within the allowed mIoU drop; the '
            'imported weights stay')
    else:
        log(f'segmentation outlier exposure: keeping epoch {kept} (val mIoU {best["val_miou"]:.4f} vs '
            f'{start["val_miou"]:.4f}, entropy AP {best["val_entropy_ap"]:.4f} vs {start["val_entropy_ap"]:.4f})')
    record = {'epochs': epoch, 'kept_epoch': kept, 'trainable': cfg.trainable, 'outlier_weight': cfg.outlier_weight,
              'lr': cfg.lr, 'imported': start, 'history': history, 'time_s': round(timer.elapsed, 1),
              'validation_set': str(validation_set)}
    return network.cpu(), record
