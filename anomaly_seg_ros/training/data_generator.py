"""The paper's training data generator for the dissimilarity network (Sec. 3.2, REFERENCE.md).

Source A, class swap: in the ground-truth map, random object instances (instance ids >= 1000 whose
labelId is one of the label set's ``instance_ids``) are relabelled to a different train class; an
image is synthesized from the edited map by the trained generator; the swapped instances are the
anomalies (1), ground-truth ignore pixels are ignored (255), the rest is 0. Uncertainty inputs:
entropy and softmax distance of the segmentation of the real image, and the perceptual difference
between the real image and the synthesized one. The semantic input is the edited map.

Source B, void objects: the PREDICTED semantic map, its entropy and softmax distance, an image
synthesized from the prediction and its perceptual difference to the real image; void pixels
(``Sample.void``) are anomalies (1), pixels that are ignore in the ground truth but not void are
ignored (255), the rest is 0.

Source C, pasted objects (outlier exposure): real object cutouts (:mod:`..data.objects`) are pasted
onto the road of the camera image (:mod:`..data.pasting`); the pasted image then goes through the
stages exactly as at run time (segmentation -> predicted map, entropy, softmax distance; synthesis of
the predicted map; perceptual difference), and the pasted pixels are the anomalies. A frame that
already carries anomaly labels (a validation set written with the objects pasted) is used as it is.

Void pixels (``Sample.void``) are anomalies in source B and ignored (255) in source C by default;
``void_policy`` selects either for both (source B's "void = anomaly" teaches CamVid's unlabelled
object borders as anomalies).

Everything is computed with the model directory's stage modules (so the inputs are exactly what the
pipeline produces) and stored at the dissimilarity input size, resized as the dissimilarity stage
resizes (bilinear for images and maps, nearest for the semantic map and the labels).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from ..data.objects import ObjectBank
from ..data.pasting import PasteSettings, paste_objects, pasted_anomaly_labels, surface_mask
from ..errors import DatasetError
from ..labels import IGNORE_INDEX, LabelSet
from ..networks import resize_bilinear, resize_labels_nearest
from .frames import Frame, resize_nearest

__all__ = [
    'SOURCES',
    'GeneratedBatch',
    'PastedObjects',
    'SwapResult',
    'class_swap_labels',
    'generate_batch',
    'swap_instances',
    'void_anomaly_labels',
]

SOURCES = ('A', 'B', 'C')


class SwapResult(NamedTuple):
    """semantic: HxW uint8 edited map; mask: HxW bool swapped pixels; swaps: instance id -> (old, new)."""

    semantic: np.ndarray
    mask: np.ndarray
    swaps: dict[int, tuple[int, int]]


def swap_instances(semantic: np.ndarray, instance: np.ndarray, label_set: LabelSet, rng: np.random.Generator,
                   probability: float = 0.5, min_pixels: int = 1) -> SwapResult:
    """Source A's class swap on one ground-truth map.

    Candidates: instance ids >= 1000 whose labelId (id // 1000) is in ``label_set.instance_ids``, with at
    least ``min_pixels`` pixels and a train class (not ignore). Each is swapped with ``probability``,
    and at least one is swapped when there is a candidate; a swapped instance takes a train class drawn
    uniformly from the others.

    Args:
        semantic: HxW uint8 train ids (255 ignore).
        instance: HxW int instance ids (Cityscapes convention), same size.
    Returns:
        The edited map, the swapped pixels and the swaps (no swap, empty mask where no candidate).
    """
    if semantic.shape != instance.shape:
        raise ValueError(f'semantic {semantic.shape} and instance {instance.shape} maps differ in size')
    allowed = np.asarray(label_set.instance_ids, dtype=np.int64)
    ids, counts = np.unique(instance[instance >= 1000], return_counts=True)
    candidates: list[tuple[int, int]] = []
    for instance_id, count in zip(ids.tolist(), counts.tolist()):
        if count < min_pixels or not np.isin(instance_id // 1000, allowed):
            continue
        classes = semantic[instance == instance_id]
        classes = classes[classes != IGNORE_INDEX]
        if classes.size == 0:
            continue
        candidates.append((int(instance_id), int(np.bincount(classes).argmax())))
    edited = semantic.copy()
    mask = np.zeros(semantic.shape, dtype=bool)
    swaps: dict[int, tuple[int, int]] = {}
    if not candidates or label_set.num_classes < 2:
        return SwapResult(edited, mask, swaps)
    chosen = rng.random(len(candidates)) < probability
    if not chosen.any():
        chosen[int(rng.integers(len(candidates)))] = True
    for (instance_id, old), pick in zip(candidates, chosen):
        if not pick:
            continue
        new = int(rng.integers(label_set.num_classes - 1))
        new += int(new >= old)  # uniform over the other classes
        pixels = instance == instance_id
        edited[pixels] = new
        mask |= pixels
        swaps[instance_id] = (old, new)
    return SwapResult(edited, mask, swaps)


def class_swap_labels(mask: np.ndarray, semantic: np.ndarray) -> np.ndarray:
    """Source A labels: HxW uint8, 1 on swapped pixels, 255 where the ground truth is ignore, else 0."""
    labels = np.zeros(semantic.shape, dtype=np.uint8)
    labels[semantic == IGNORE_INDEX] = IGNORE_INDEX
    labels[mask] = 1
    return labels


def void_anomaly_labels(void: np.ndarray, semantic: np.ndarray, void_policy: str = 'anomaly') -> np.ndarray:
    """Source B labels: HxW uint8, 1 on void pixels (255 with ``void_policy`` 'ignore'), 255 where the ground
    truth is ignore but not void, else 0."""
    labels = np.zeros(semantic.shape, dtype=np.uint8)
    labels[(semantic == IGNORE_INDEX) & ~void] = IGNORE_INDEX
    labels[void] = 1 if void_policy == 'anomaly' else IGNORE_INDEX
    return labels


class GeneratedBatch(NamedTuple):
    """Dissimilarity training samples at (Hd, Wd): image, synthesis (N,3,H,W) uint8 RGB; semantic (N,H,W)
    uint8 train ids; uncertainty (N,3,H,W) float16 in [0,1] (entropy, perceptual difference, softmax
    distance); labels (N,H,W) uint8 0/1/255; names of the frames they come from."""

    image: np.ndarray
    synthesis: np.ndarray
    semantic: np.ndarray
    uncertainty: np.ndarray
    labels: np.ndarray
    names: list[str]


def _uint8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()


class PastedObjects(NamedTuple):
    """What source C pastes: the object bank and the placement settings."""

    bank: ObjectBank
    settings: PasteSettings


def _paste_frame(frame: Frame, label_set: LabelSet, pasted: PastedObjects, void_policy: str,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Source C for one frame: (HxWx3 uint8 image with objects, HxW uint8 labels)."""
    if frame.anomaly is not None:  # a validation set written with its objects already pasted
        return frame.image, frame.anomaly
    if frame.semantic is None:
        raise DatasetError(f'frame {frame.name} has no semantic map; source C needs one to find the road')
    result = paste_objects(frame.image, surface_mask(frame.semantic, label_set), pasted.bank, rng, pasted.settings)
    return result.image, pasted_anomaly_labels(result, frame.void, void_policy)


@torch.no_grad()
def generate_batch(frames: Sequence[Frame], source: str, modules: dict[str, torch.nn.Module], label_set: LabelSet,
                   size: tuple[int, int], device: torch.device, rngs: Sequence[np.random.Generator],
                   probability: float = 0.5, min_pixels: int = 1, pasted: PastedObjects | None = None,
                   void_policy: str = 'anomaly') -> GeneratedBatch:
    """Make the samples of ``source`` ('A', 'B' or 'C') for ``frames`` (at the segmentation input size).

    ``modules``: the segmentation, synthesis and perceptual stage modules (eval mode). Frames without a
    swappable instance (source A) give no sample; ``rngs`` (one per frame) draw the swaps and the pastes.
    ``pasted``: source C's objects; ``void_policy``: what void pixels are ('anomaly' or 'ignore').
    """
    if source not in SOURCES:
        raise ValueError(f'unknown data generator source {source!r}; sources: {SOURCES}')
    pasted_labels: list[np.ndarray] = []
    if source == 'C':
        if pasted is None:
            raise ValueError('source C needs the objects to paste (PastedObjects)')
        made = [_paste_frame(frame, label_set, pasted, void_policy, rngs[i]) for i, frame in enumerate(frames)]
        images = [m[0] for m in made]
        pasted_labels = [m[1] for m in made]
    else:
        images = [f.image for f in frames]
    image = torch.from_numpy(np.stack([im.transpose(2, 0, 1) for im in images])).to(device).float() / 255
    predicted, entropy, distance = modules['segmentation'](image)
    keep: list[int] = []
    maps, labels = [], []
    for i, frame in enumerate(frames):
        if source == 'C':
            maps.append(predicted[i].cpu())  # what the pipeline sees: the prediction of the pasted frame
            labels.append(pasted_labels[i])
            keep.append(i)
            continue
        if frame.semantic is None:
            raise DatasetError(f'frame {frame.name} has no semantic ground truth; the data generator needs it')
        if source == 'A':
            if frame.instance is None:
                raise DatasetError(f'frame {frame.name} has no instance ids; source A (class swap) needs them: '
                                   'add the instanceIds files or train with --sources B')
            swap = swap_instances(frame.semantic, frame.instance, label_set, rngs[i], probability, min_pixels)
            if not swap.swaps:
                continue
            maps.append(torch.from_numpy(swap.semantic.astype(np.int32)))
            swap_labels = class_swap_labels(swap.mask, frame.semantic)
            if void_policy == 'ignore' and frame.void is not None:
                swap_labels[frame.void & ~swap.mask] = IGNORE_INDEX
            labels.append(swap_labels)
        else:
            if frame.void is None:
                raise DatasetError(f'frame {frame.name} has no void mask; source B (void objects) needs one: '
                                   'use a dataset with void labels or train with --sources A')
            maps.append(predicted[i].cpu())
            labels.append(void_anomaly_labels(frame.void, frame.semantic, void_policy))
        keep.append(i)
    if not keep:
        return GeneratedBatch(*(np.zeros((0,), np.uint8) for _ in range(5)), names=[])  # type: ignore[misc]
    index = torch.tensor(keep, device=device)
    image, entropy, distance = image[index], entropy[index], distance[index]
    semantic = torch.stack(maps).to(device)
    synthesis = modules['synthesis'](semantic)[0]
    perceptual = modules['perceptual'](image, synthesis)[0]
    uncertainty = torch.cat([resize_bilinear(m, size) for m in (entropy, perceptual, distance)], dim=1)
    return GeneratedBatch(
        image=_uint8(resize_bilinear(image, size)),
        synthesis=_uint8(resize_bilinear(synthesis, size)),
        semantic=resize_labels_nearest(semantic, size).to(torch.uint8).cpu().numpy(),
        uncertainty=uncertainty.clamp(0, 1).to(torch.float16).cpu().numpy(),
        labels=np.stack([resize_nearest(lab, size) for lab in labels]),
        names=[frames[i].name for i in keep],
    )
