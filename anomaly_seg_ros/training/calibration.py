"""Perceptual difference calibration: the fixed scale of ``stages.perceptual.scale`` in ``model.yaml``.

The raw eq. 3 map is computed as the pipeline computes it, between training frames and their
re-synthesis from the PREDICTED semantic map (the trained segmentation and synthesis stages), and
``scale = 1 / quantile`` of its pixel values (default the 99th percentile), so that the map of an
ordinary frame lands in [0, 1] and only unusual differences saturate. The perceptual network
(``perceptual.pt``: frozen VGG19 or SqueezeNet, with ImageNet weights when given, else seeded random
features)
is written first if the model directory has none.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..model_config import load_model_config, save_model_config
from ..networks import build_network
from ..stage_modules import load_stage_modules
from ..uncertainty import calibrate_perceptual_scale
from .common import StageResult, Timer, progress, rng_for
from .config import TrainConfig
from .frames import Frames
from .loop import begin_stage
from .model_dir import record_stage, save_stage_network

__all__ = ['calibrate_perceptual', 'ensure_perceptual_network']

STAGE = 'perceptual'
_PIXELS_PER_FRAME = 20000


def ensure_perceptual_network(out_dir: str | Path, config: TrainConfig) -> Path:
    """Write ``perceptual.pt`` unless the model directory has it: VGG19 features with ``config.vgg19_weights``,
    or SqueezeNet features with ``config.squeezenet_weights`` (and ``config.lpips_weights``), random features
    drawn from ``config.seed`` where no file is given."""
    out_dir = Path(out_dir)
    model = load_model_config(out_dir)
    stage_cfg = model.stage(STAGE)
    path = out_dir / stage_cfg.files.get('torch', f'{STAGE}.pt')
    if path.is_file():
        return path
    torch.manual_seed(config.seed)
    if stage_cfg.architecture.get('name') == 'squeezenet_features':
        lpips = config.lpips_weights if stage_cfg.architecture.get('distance', 'lpips') == 'lpips' else None
        network = build_network(STAGE, stage_cfg.architecture, imagenet_weights=config.squeezenet_weights,
                                lpips_weights=lpips)
    else:
        network = build_network(STAGE, stage_cfg.architecture, imagenet_weights=config.vgg19_weights,
                                warn_if_random=config.vgg19_weights is None)
    return save_stage_network(out_dir, model, STAGE, network)


@torch.no_grad()
def raw_perceptual_values(model_dir: str | Path, frames: Frames, device: torch.device, batch_size: int = 8,
                          seed: int = 0, show_progress: bool = False, indices: range | None = None) -> np.ndarray:
    """A pixel subsample (float32, >= 0) of the raw perceptual difference between ``frames`` (at the
    segmentation input size; only ``indices`` of them when given) and their re-synthesis from the predicted
    semantic maps. A frame's pixels are drawn from (seed, frame index), whoever computes it."""
    indices = range(len(frames)) if indices is None else indices
    if not len(indices):
        return np.zeros((0,), dtype=np.float32)
    model = load_model_config(model_dir)
    modules = load_stage_modules(model_dir, model, device, stages=('segmentation', 'synthesis', 'perceptual'))
    values = []
    for start in progress(range(indices.start, indices.stop, batch_size), show_progress, desc='calibrate',
                          unit='batch'):
        batch = [frames[i] for i in range(start, min(start + batch_size, indices.stop))]
        image = torch.from_numpy(np.stack([f.image.transpose(2, 0, 1) for f in batch])).to(device).float() / 255
        semantic = modules['segmentation'](image)[0]
        synthesis = modules['synthesis'](semantic)[0]
        raw = modules['perceptual'].raw_difference(image, synthesis).flatten(1).cpu().numpy()
        for i, row in enumerate(raw):
            pick = rng_for(seed, start + i).choice(row.size, size=min(_PIXELS_PER_FRAME, row.size), replace=False)
            values.append(row[pick])
    return np.concatenate(values).astype(np.float32)


def calibrate_perceptual(config: TrainConfig, out_dir: str | Path, show_progress: bool = True,
                         log: Callable[[str], None] = print) -> StageResult:
    """Compute and store ``stages.perceptual.scale`` of the model in ``out_dir`` (needs the trained
    segmentation and synthesis networks)."""
    cfg = config.calibration
    timer = Timer()
    out_dir, _, device, model, train_dataset, dist, _ = begin_stage(config, STAGE, out_dir, None)
    log, show_progress = dist.main_only(log), show_progress and dist.is_main
    limit = cfg.frames if config.data.train_limit is None else min(cfg.frames or 10**9, config.data.train_limit)
    frames = Frames(train_dataset, tuple(model.stage('segmentation').input_size), limit, cache=False)
    if dist.is_main:
        ensure_perceptual_network(out_dir, config)
    dist.barrier()
    # Each rank computes a contiguous share of the frames; the shares in rank order are the frames in order.
    values = raw_perceptual_values(out_dir, frames, device, seed=config.seed, show_progress=show_progress,
                                   indices=dist.shard(len(frames)))
    if dist.is_distributed:
        values = np.concatenate(dist.all_gather(values))
    scale = calibrate_perceptual_scale(torch.from_numpy(values), cfg.quantile)
    quantiles = {f'raw_p{int(q * 100)}': float(np.quantile(values, q)) for q in (0.5, 0.9, 0.99)}
    quantiles['raw_max'] = float(values.max())
    options = {'scale': float(scale), 'normalization': cfg.normalization}
    record = {'scale': float(scale), 'quantile': cfg.quantile, 'frames': len(frames), 'pixels': int(values.size),
              **quantiles, 'time_s': round(timer.elapsed, 1)}
    if dist.is_main:
        model = record_stage(out_dir, STAGE, record)
        model = model.with_stage(STAGE, options=options)
        save_model_config(model, out_dir)
    dist.barrier()  # the next stage reads the scale rank 0 wrote
    log(f'perceptual calibration: scale {scale:.4g} (1 / the {cfg.quantile:g} quantile of the raw map over '
        f'{len(frames)} training frames vs their re-synthesis)')
    return StageResult('calibration', 0, 0, timer.elapsed, {'perceptual_scale': float(scale), **quantiles},
                       {'metadata': str(out_dir / 'model.yaml')})
