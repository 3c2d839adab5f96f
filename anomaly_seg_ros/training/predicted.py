"""Training frames whose semantic maps are the segmentation stage's own predictions (``data.semantic: predicted``).

A model whose segmentation comes from public weights (Cityscapes classes) is trained further on a
dataset with other labels (CamVid): the synthesis stage then learns from the maps it will be given at
run time, and the data generator starts from them, as the paper's source B already does. Each frame
keeps its camera image and void mask (source B's anomalies); ``semantic`` is the predicted train ids
and ``instance`` numbers the connected components of the label set's object classes in the
Cityscapes convention (``labelId * 1000 + k``), so source A swaps predicted objects.

Predictions are computed once per (segmentation network file, split, frames) and kept in a ``.npy``
file under the cache folder, so the synthesis and dissimilarity stages and a resumed run reuse them.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from ..labels import LabelSet
from ..model_config import ModelConfig
from ..stage_modules import load_stage_modules
from .common import progress
from .config import TrainConfig
from .distributed import Dist, DistributedError
from .frames import Frame, Frames, open_frames

__all__ = ['PredictedFrames', 'components_as_instances', 'predict_semantic', 'stage_frames']

_BATCH = 4


def components_as_instances(semantic: np.ndarray, label_set: LabelSet) -> np.ndarray:
    """Instance ids from a semantic map: each 8-connected component of an object class (raw ids in
    ``label_set.instance_ids``) becomes ``labelId * 1000 + k`` (k = 1, 2, ...); other pixels hold 0.

    Args:
        semantic: HxW uint8 train ids of ``label_set``.
    Returns:
        HxW int32.
    """
    instance = np.zeros(semantic.shape, dtype=np.int32)
    for raw_id in label_set.instance_ids:
        train_id = label_set.raw_to_train.get(raw_id, label_set.ignore_index)
        if train_id == label_set.ignore_index:
            continue
        mask = (semantic == train_id).astype(np.uint8)
        if not mask.any():
            continue
        count, components = cv2.connectedComponents(mask, connectivity=8)
        inside = components > 0
        instance[inside] = raw_id * 1000 + components[inside]
        del count
    return instance


@torch.no_grad()
def predict_semantic(model_dir: str | Path, model: ModelConfig, frames: Frames, device: torch.device,
                     show_progress: bool = False) -> np.ndarray:
    """(N, H, W) uint8 predicted train ids of ``frames`` (at the segmentation input size)."""
    module = load_stage_modules(model_dir, model, device, stages=('segmentation',))['segmentation']
    out = np.zeros((len(frames), *frames.size), dtype=np.uint8)
    for start in progress(range(0, len(frames), _BATCH), show_progress, desc='predict', unit='batch'):
        batch = [frames[i] for i in range(start, min(start + _BATCH, len(frames)))]
        image = torch.from_numpy(np.stack([f.image.transpose(2, 0, 1) for f in batch])).to(device).float() / 255
        out[start:start + len(batch)] = module(image)[0].to(torch.uint8).cpu().numpy()
    return out


def _key(model_dir: Path, model: ModelConfig, frames: Frames) -> str:
    digest = hashlib.sha256()
    path = model_dir / model.stage('segmentation').files.get('torch', 'segmentation.pt')
    digest.update(path.read_bytes())
    digest.update(repr((frames.size, type(frames.dataset).__name__, str(getattr(frames.dataset, 'root', '')),
                        list(getattr(frames.dataset, 'names', []))[: len(frames)])).encode())
    return digest.hexdigest()[:16]


class PredictedFrames:
    """``frames`` (at the segmentation input size) with predicted ``semantic`` and component ``instance``.

    Indexable like :class:`~.frames.Frames` (``len``, ``[i]``, ``size``, ``dataset``, ``label_set``);
    image and void come from the dataset unchanged.
    """

    def __init__(self, frames: Frames, model_dir: str | Path, model: ModelConfig, device: torch.device,
                 cache_root: str | Path, split: str, show_progress: bool = False,
                 log: Callable[[str], None] = print, dist: Dist | None = None) -> None:
        seg_size = tuple(model.stage('segmentation').input_size)
        if frames.size != seg_size:
            raise ValueError(f'predicted frames need frames at the segmentation size {seg_size}, got {frames.size}')
        self.frames = frames
        self.label_set = model.label_set
        model_dir = Path(model_dir)
        path = Path(cache_root) / f'{split}_{_key(model_dir, model, frames)}.npy'
        dist = dist or Dist()
        if dist.broadcast(path.is_file()):  # rank 0 decides, so no rank segments alone
            log(f'predicted maps: reusing {path}')
        elif dist.is_main:  # a single pass over the frames; the other ranks wait and read the file
            log(f'predicted maps: segmenting {len(frames)} {split} frames with {model_dir}')
            semantic = predict_semantic(model_dir, model, frames, device, show_progress)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.stem + '.partial.npy')
            np.save(tmp, semantic)
            tmp.replace(path)
        dist.barrier()
        if not path.is_file():
            raise DistributedError(f'rank {dist.rank} cannot see {path}, which rank 0 wrote: the work directory '
                                   'must be on a filesystem every node shares')
        self.semantic = np.load(path, mmap_mode='r')

    @property
    def size(self) -> tuple[int, int]:
        return self.frames.size

    @property
    def dataset(self) -> object:
        return self.frames.dataset

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> Frame:
        frame = self.frames[index]
        semantic = np.asarray(self.semantic[index])
        return Frame(frame.name, frame.image, semantic, components_as_instances(semantic, self.label_set), frame.void,
                     frame.anomaly)


def stage_frames(config: TrainConfig, out_dir: str | Path, model: ModelConfig, split: str, limit: int | None,
                 device: torch.device, cache_root: str | Path, show_progress: bool = False,
                 log: Callable[[str], None] = print, dist: Dist | None = None) -> Frames | PredictedFrames:
    """The frames of ``split`` at the segmentation input size with the semantic maps ``config.data.semantic``
    asks for: the dataset's labels in the model's label set, or the segmentation stage's predictions."""
    size = tuple(model.stage('segmentation').input_size)
    if config.data.semantic != 'predicted':
        return open_frames(config.data, split, size, model.label_set, limit)
    frames = open_frames(config.data, split, size, None, limit)
    return PredictedFrames(frames, out_dir, model, device, cache_root, split, show_progress, log, dist)
