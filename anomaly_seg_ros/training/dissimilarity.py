"""``train dissimilarity``: the dissimilarity network on the data generator's output (paper 3.2, A.1).

The training and validation sets are made by :mod:`.data_generator` from the train and validation
splits (sources A and B by default, see ``dissimilarity.generator.sources``) and cached on disk
(:mod:`.generated_set`). Loss: cross-entropy with ignore 255 and ENet class weights
1 / ln(1.02 + p_class) (p over the generated training labels). Adam (lr 1e-4, betas (0.5, 0.999)),
ReduceLROnPlateau on the validation loss (patience 10, factor 0.5), 50 epochs, batch 4, horizontal
flips, ImageNet normalization of both images. Validation after each epoch: loss, and AP / FPR95 /
AUROC of P(anomaly) on the generated validation set.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DatasetError
from ..evaluation import AnomalyMetricAccumulator
from ..labels import IGNORE_INDEX
from ..model_config import load_model_config
from ..networks import build_network, one_hot
from .calibration import ensure_perceptual_network
from .common import Checkpoint, RunLogger, StageResult, Timer, progress
from .config import TrainConfig, config_to_dict
from .generated_set import GeneratedSet, load_or_generate
from .loop import EpochData, begin_stage, cross_entropy, normalize_images, resume_from
from .model_dir import record_stage, save_stage_network
from .predicted import stage_frames

__all__ = ['enet_class_weights', 'generated_sets', 'train_dissimilarity']

STAGE = 'dissimilarity'


def enet_class_weights(labels: np.ndarray, num_classes: int = 2, c: float = 1.02) -> np.ndarray:
    """ENet weighting 1 / ln(c + p_class), p over the pixels whose label is a class (not ignore)."""
    counts = np.zeros(num_classes, dtype=np.float64)
    for start in range(0, labels.shape[0], 64):  # memory-mapped: count in chunks
        chunk = np.asarray(labels[start:start + 64]).ravel()
        counts += np.bincount(chunk[chunk < num_classes], minlength=num_classes)[:num_classes]
    p = counts / max(counts.sum(), 1.0)
    return (1.0 / np.log(c + p)).astype(np.float32)


def generated_sets(config: TrainConfig, out_dir: Path, work: Path, split: str, device: torch.device,
                   show_progress: bool, log: Callable[[str], None]) -> list[GeneratedSet]:
    """The generated sets of every configured source for ``split`` (cached)."""
    model = load_model_config(out_dir)
    sources = [s.upper() for s in config.dissimilarity.generator.sources]
    limit = config.data.train_limit if split == config.data.train_split else config.data.val_limit
    frames = stage_frames(config, out_dir, model, split, limit, device, work.parent / 'predicted', show_progress, log)
    cache = Path(config.dissimilarity.cache_dir or work.parent / 'generated')
    return [load_or_generate(out_dir, model, frames, split, source, config.dissimilarity.generator, config.seed,
                             cache, device, show_progress, log) for source in sources]


def _items(sets: list[GeneratedSet]) -> list[tuple[int, int]]:
    return [(k, i) for k, s in enumerate(sets) for i in range(len(s))]


def _sample(sets: list[GeneratedSet], item: tuple[int, int], flip: bool) -> tuple[torch.Tensor, ...]:
    k, i = item
    arrays = sets[k].arrays
    values = [np.array(arrays[name][i]) for name in ('image', 'synthesis', 'semantic', 'uncertainty', 'labels')]
    if flip:
        values = [np.ascontiguousarray(v[..., ::-1]) for v in values]
    return tuple(torch.from_numpy(v) for v in values)


def _forward(network: torch.nn.Module, batch: tuple[torch.Tensor, ...], num_classes: int, mean, std,
             device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    image, synthesis, semantic, uncertainty, labels = (t.to(device) for t in batch)
    unc = uncertainty.float() if getattr(network, 'use_uncertainty', True) else None
    logits = network(normalize_images(image, mean, std), normalize_images(synthesis, mean, std),
                     one_hot(semantic.long(), num_classes), unc)
    return logits, labels.long()


@torch.no_grad()
def evaluate_dissimilarity(network: torch.nn.Module, sets: list[GeneratedSet], num_classes: int, mean, std,
                           device: torch.device, weight: torch.Tensor | None, batch_size: int = 8) -> dict[str, float]:
    """Validation loss and AP / FPR95 / AUROC of P(anomaly) over the generated sets (all sources)."""
    was_training = network.training
    network.eval()
    accumulator = AnomalyMetricAccumulator()
    loss_sum, loss_n = 0.0, 0
    items = _items(sets)
    for start in range(0, len(items), batch_size):
        chunk = [_sample(sets, item, False) for item in items[start:start + batch_size]]
        batch = tuple(torch.stack([c[j] for c in chunk]) for j in range(5))
        logits, labels = _forward(network, batch, num_classes, mean, std, device)
        if bool((labels != IGNORE_INDEX).any()):
            loss_sum += float(F.cross_entropy(logits, labels, weight=weight, ignore_index=IGNORE_INDEX)) * len(chunk)
            loss_n += len(chunk)
        accumulator.update(F.softmax(logits, 1)[:, 1].cpu().numpy(), labels.cpu().numpy())
    network.train(was_training)
    metrics = accumulator.compute()
    return {'loss': loss_sum / max(loss_n, 1), 'ap': metrics.ap, 'fpr95': metrics.fpr95, 'auroc': metrics.auroc}


def train_dissimilarity(config: TrainConfig, out_dir: str | Path, work_dir: str | Path | None = None,
                        resume: bool = False, show_progress: bool = True,
                        log: Callable[[str], None] = print) -> StageResult:
    """Generate (or reuse) the training data and train the dissimilarity network of the model in
    ``out_dir`` (needs segmentation, synthesis and the perceptual calibration); writes
    ``<out_dir>/dissimilarity.pt``."""
    cfg = config.dissimilarity
    out_dir, work, device, model, _ = begin_stage(config, STAGE, out_dir, work_dir)
    ensure_perceptual_network(out_dir, config)
    generation = Timer()
    train_sets = generated_sets(config, out_dir, work, config.data.train_split, device, show_progress, log)
    val_sets = generated_sets(config, out_dir, work, config.data.val_split, device, show_progress, log)
    generation_s = generation.elapsed
    items = _items(train_sets)
    sources = list(cfg.generator.sources)
    if not items:
        raise DatasetError(f'the data generator made no training sample from {config.data.root} '
                           f'{config.data.train_split} (sources {sources}: no frame, or no swappable instance)')
    num_classes = model.label_set.num_classes
    weights = None
    if cfg.class_weighting == 'enet':
        labels = np.concatenate([np.asarray(s.arrays['labels']).reshape(len(s), -1) for s in train_sets if len(s)])
        weights = enet_class_weights(labels)
    weight = None if weights is None else torch.from_numpy(weights).to(device)

    def make(index: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        return _sample(train_sets, items[index], cfg.flip and rng.random() < 0.5)

    data = EpochData(len(items), make, config.seed)
    steps_per_epoch = data.steps(cfg.batch_size, cfg.steps_per_epoch)
    torch.manual_seed(config.seed)
    network = build_network(STAGE, model.stage(STAGE).architecture, imagenet_weights=cfg.vgg16_weights,
                            warn_if_random=cfg.vgg16_weights is None).to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode='min', factor=cfg.plateau_factor,
                                                           patience=cfg.plateau_patience)
    checkpoint = Checkpoint(work)
    start = resume_from(checkpoint, resume, STAGE, device,
                        {'network': network, 'optimizer': optimizer, 'scheduler': scheduler})
    epoch, step, history, elapsed = start.epoch, start.step, start.history, start.elapsed
    if start.resumed:
        log(f'dissimilarity: resuming {checkpoint.path} at epoch {epoch}, step {step}')
    logger = RunLogger(work, resume=start.resumed)
    timer = Timer(elapsed + (generation.elapsed if not start.resumed else 0.0))
    network.train()
    while epoch < cfg.epochs:
        total, count = 0.0, 0
        bar = progress(data.loader(epoch, cfg.batch_size, cfg.steps_per_epoch, config.num_workers), show_progress,
                       desc=f'dissimilarity {epoch + 1}/{cfg.epochs}', unit='batch', total=steps_per_epoch)
        for batch in bar:
            logits, labels = _forward(network, batch, num_classes, model.mean, model.std, device)
            loss = cross_entropy(logits, labels, weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            value = loss.item()
            total, count = total + value, count + 1
            logger.scalars({'loss': value}, step, prefix='train/')
            if show_progress:
                bar.set_postfix(loss=f'{value:.3f}')  # type: ignore[attr-defined]
        epoch += 1
        figures = evaluate_dissimilarity(network, val_sets, num_classes, model.mean, model.std, device, weight)
        scheduler.step(figures['loss'] if math.isfinite(figures['loss']) else total / max(count, 1))
        row = {'epoch': epoch, 'step': step, 'loss': total / max(count, 1), 'lr': optimizer.param_groups[0]['lr'],
               **{f'val_{k}': v for k, v in figures.items()}, 'time_s': timer.elapsed}
        history.append(row)
        logger.epoch(row)
        checkpoint.save(config, {'stage': STAGE, 'epoch': epoch, 'step': step, 'network': network.state_dict(),
                                 'optimizer': optimizer.state_dict(), 'scheduler': scheduler.state_dict(),
                                 'history': history, 'elapsed': timer.elapsed, 'config': config_to_dict(config)})
        log(f'dissimilarity epoch {epoch}/{cfg.epochs}: loss {row["loss"]:.4f}, val loss {figures["loss"]:.4f}, '
            f'AP {figures["ap"]:.4f}, FPR95 {figures["fpr95"]:.4f}, AUROC {figures["auroc"]:.4f}')
    logger.close()
    if history:
        figures = {k[4:]: v for k, v in history[-1].items() if k.startswith('val_')}
    else:
        figures = evaluate_dissimilarity(network, val_sets, num_classes, model.mean, model.std, device, weight)
    path = save_stage_network(out_dir, model, STAGE, network.cpu())
    validation = {f'val_{k}': v for k, v in figures.items()}
    result = StageResult(STAGE, epoch, step, timer.elapsed, validation, {'network': str(path)})
    record_stage(out_dir, STAGE, {
        **result.to_dict(), 'device': str(device), 'seed': config.seed, 'sources': list(cfg.generator.sources),
        'use_uncertainty': cfg.use_uncertainty, 'data_generation_s': round(generation_s, 1),
        'class_weights': None if weights is None else weights.tolist(),
        'samples': {'train': len(items), 'val': sum(len(s) for s in val_sets)},
        'generated_sets': [str(s.directory) for s in train_sets + val_sets]})
    return result
