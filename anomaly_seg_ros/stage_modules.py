"""The four stage graphs of :mod:`anomaly_seg_ros.stages` as torch modules, and model directories.

Each stage module wraps its network with the pre- and post-processing of the stage contract
(ImageNet normalization, bilinear resizing of images and float maps to the stage resolution with
align_corners=False, nearest resizing of the semantic map, one-hot encoding with the ignore id as an
all-zero vector, softmax and the uncertainty maps, the ensemble). ``forward`` takes the stage's
inputs positionally in the order of :data:`~anomaly_seg_ros.stages.STAGES` and returns a tuple of
its outputs in that order; batch N works, the exported graphs use N = 1.

A ``<stage>.pt`` file is ``{'format_version': 1, 'stage', 'architecture', 'state_dict'}`` of the
stage's network (not the wrapper); :func:`load_stage_modules` rebuilds all four from ``model.yaml``.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .errors import ModelError
from .labels import CITYSCAPES, SYNTHETIC, LabelSet
from .model_config import (
    FORMAT_VERSION,
    IMAGENET_MEAN,
    IMAGENET_STD,
    STAGE_NAMES,
    ModelConfig,
    StageConfig,
    save_model_config,
)
from .networks import (
    LIGHT_INPUT_SIZES,
    PAPER_INPUT_SIZES,
    ICNet,
    architecture_with_defaults,
    build_network,
    fold_spectral_norm,
    light_architectures,
    normalize_architecture,
    one_hot,
    paper_architectures,
    resize_bilinear,
    resize_labels_nearest,
)
from .networks.functional import static_dim
from .uncertainty import (
    PERCEPTUAL_NORMALIZATIONS,
    ensemble,
    normalize_perceptual_difference,
    perceptual_difference,
    softmax_maps,
)

__all__ = [
    'DissimilarityStage',
    'PerceptualStage',
    'SegmentationStage',
    'SynthesisStage',
    'build_stage_module',
    'init_random_model_dir',
    'light_model_config',
    'load_network',
    'load_stage_modules',
    'make_model_config',
    'paper_model_config',
    'save_network',
]


class _Normalize(nn.Module):
    """(x - mean) / std per RGB channel, x (N, 3, H, W) in [0, 1]."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer('mean', torch.tensor([float(v) for v in mean]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor([float(v) for v in std]).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


def _size(size: Sequence[int]) -> tuple[int, int]:
    return int(size[0]), int(size[1])


class SegmentationStage(nn.Module):
    """image f32 (N, 3, Hs, Ws) RGB [0, 1] -> (semantic i32 (N, Hs, Ws) train ids,
    entropy f32 (N, 1, Hs, Ws) [0, 1], softmax_distance f32 (N, 1, Hs, Ws) [0, 1]).

    ``network`` maps a normalized image to logits (N, C, Hs, Ws) (e.g. ICNet).
    """

    def __init__(self, network: nn.Module, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD) -> None:
        super().__init__()
        self.network = network
        self.normalize = _Normalize(mean, std)

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # One pass of shared softmax terms (see softmax_maps): no channel-axis Softmax/TopK in the graph.
        semantic, entropy, distance = softmax_maps(self.network(self.normalize(image)))
        return semantic.to(torch.int32), entropy, distance


class SynthesisStage(nn.Module):
    """semantic i32 (N, Hs, Ws) -> (synthesis f32 (N, 3, Hy, Wy) RGB [0, 1],).

    The map is nearest-resized to ``size`` = (Hy, Wy), one-hot encoded (ignore id -> zeros) and
    passed through the generator; its tanh output is mapped to [0, 1].
    """

    def __init__(self, generator: nn.Module, num_classes: int, size: Sequence[int]) -> None:
        super().__init__()
        self.generator = generator
        self.num_classes = int(num_classes)
        self.size = _size(size)

    def forward(self, semantic: Tensor) -> tuple[Tensor]:
        seg = one_hot(resize_labels_nearest(semantic, self.size), self.num_classes)
        return ((self.generator(seg) + 1.0) * 0.5,)


class PerceptualStage(nn.Module):
    """image f32 (N, 3, Hs, Ws), synthesis f32 (N, 3, Hy, Wy), both RGB [0, 1] ->
    (perceptual_difference f32 (N, 1, Hp, Wp) [0, 1],).

    Both images are bilinearly resized to ``size`` = (Hp, Wp), normalized, and compared with the
    frozen features of ``vgg``: VGG19 with eq. 3, or a network with its own ``difference`` (SqueezeNet:
    LPIPS or eq. 3 on unit-normalized features); the raw map is scaled by the calibrated ``scale`` and clipped
    (``normalization='calibrated'``) or min-max normalized per image (``'minmax'``).
    """

    def __init__(self, vgg: nn.Module, size: Sequence[int], mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, normalization: str = 'calibrated', scale: float = 1.0) -> None:
        super().__init__()
        if normalization not in PERCEPTUAL_NORMALIZATIONS:
            raise ValueError(f'perceptual normalization must be one of {PERCEPTUAL_NORMALIZATIONS}, '
                             f'got {normalization!r}')
        self.vgg = vgg
        self.size = _size(size)
        self.normalize = _Normalize(mean, std)
        self.normalization = normalization
        self.scale = float(scale)

    def raw_difference(self, image: Tensor, synthesis: Tensor) -> Tensor:
        """The unnormalized eq. 3 map (N, 1, Hp, Wp) >= 0 (for calibrating ``scale``)."""
        x = self.normalize(resize_bilinear(image, self.size))
        r = self.normalize(resize_bilinear(synthesis, self.size))
        batch = static_dim(x, 0)
        features = self.vgg(torch.cat([x, r], dim=0))
        features_x, features_r = [f[:batch] for f in features], [f[batch:] for f in features]
        difference = getattr(self.vgg, 'difference', None)  # a network with its own distance (SqueezeNet LPIPS)
        if difference is not None:
            return difference(features_x, features_r, self.size)
        return perceptual_difference(features_x, features_r, self.size)

    def forward(self, image: Tensor, synthesis: Tensor) -> tuple[Tensor]:
        raw = self.raw_difference(image, synthesis)
        return (normalize_perceptual_difference(raw, self.normalization, self.scale),)


class DissimilarityStage(nn.Module):
    """The dissimilarity network and the ensemble.

    Inputs: image f32 (N, 3, Hs, Ws), synthesis f32 (N, 3, Hy, Wy) (RGB [0, 1]), semantic i32
    (N, Hs, Ws), entropy f32 (N, 1, Hs, Ws), softmax_distance f32 (N, 1, Hs, Ws),
    perceptual_difference f32 (N, 1, Hp, Wp), ensemble_weights f32 (4,) (dissimilarity, entropy,
    perceptual_difference, softmax_distance; normalized inside).
    Outputs: (dissimilarity f32 (N, 1, Hd, Wd) = P(anomaly), anomaly f32 (N, 1, Hd, Wd)), in [0, 1].
    Everything is resized to ``size`` = (Hd, Wd) first (bilinear; nearest for the semantic map).
    """

    def __init__(self, network: nn.Module, num_classes: int, size: Sequence[int],
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        super().__init__()
        self.network = network
        self.num_classes = int(num_classes)
        self.size = _size(size)
        self.normalize = _Normalize(mean, std)

    def forward(self, image: Tensor, synthesis: Tensor, semantic: Tensor, entropy: Tensor,
                softmax_distance: Tensor, perceptual_difference: Tensor,
                ensemble_weights: Tensor) -> tuple[Tensor, Tensor]:
        size = self.size
        img = self.normalize(resize_bilinear(image, size))
        syn = self.normalize(resize_bilinear(synthesis, size))
        seg = one_hot(resize_labels_nearest(semantic, size), self.num_classes)
        ent = resize_bilinear(entropy, size)
        dist = resize_bilinear(softmax_distance, size)
        perc = resize_bilinear(perceptual_difference, size)
        uncertainty = torch.cat([ent, perc, dist], dim=1) if getattr(self.network, 'use_uncertainty', True) else None
        logits = self.network(img, syn, seg, uncertainty)
        # softmax(logits)[:, 1] of two classes, without a channel-axis Softmax (transposed by ONNX Runtime)
        dissimilarity = torch.sigmoid(logits[:, 1:2] - logits[:, 0:1])
        return dissimilarity, ensemble(dissimilarity, ent, perc, dist, ensemble_weights)


# --------------------------------------------------------------------------------------------------
# Building stage modules from a model configuration

# What each stage's network needs of its input size (ICNet: 32; the dissimilarity network: 8).
_DIVISOR = {'segmentation': 32, 'synthesis': 1, 'perceptual': 1, 'dissimilarity': 8}


def _check_network(stage: str, config: ModelConfig, network: nn.Module) -> None:
    stage_cfg = config.stage(stage)
    size = _size(stage_cfg.input_size)
    divisor = _DIVISOR[stage]
    if stage == 'segmentation' and not isinstance(network, ICNet):
        divisor = int(getattr(network, 'size_divisor', 1))
    if size[0] % divisor or size[1] % divisor:
        raise ModelError(f'stage {stage!r}: input_size {size[0]}x{size[1]} must be divisible by {divisor} '
                         f'for its network; change stages.{stage}.input_size')
    classes = getattr(network, 'num_classes', None)
    if classes is not None and classes != config.label_set.num_classes:
        raise ModelError(f'stage {stage!r}: the network has {classes} classes, the label set '
                         f'{config.label_set.name!r} {config.label_set.num_classes}; the model metadata and '
                         'the network disagree (retrain, or fix architecture.num_classes)')
    out_size = getattr(network, 'output_size', None)
    if stage == 'synthesis' and out_size is not None and tuple(out_size) != size:
        raise ModelError(f'stage synthesis: the generator produces {out_size[0]}x{out_size[1]} but '
                         f'stages.synthesis.input_size is {size[0]}x{size[1]}; they must agree')


def build_stage_module(stage: str, config: ModelConfig, network: nn.Module | None = None) -> nn.Module:
    """The stage module of ``stage`` for ``config``.

    Args:
        stage: 'segmentation' | 'synthesis' | 'perceptual' | 'dissimilarity'.
        config: the model's metadata (sizes, normalization, label set, perceptual options).
        network: the stage's network, used as is (shared, not copied); built randomly initialized
            from ``config.stage(stage).architecture`` when None.
    """
    if stage not in STAGE_NAMES:
        raise ModelError(f'unknown stage {stage!r}; stages: {list(STAGE_NAMES)}')
    stage_cfg = config.stage(stage)
    if network is None:
        network = build_network(stage, stage_cfg.architecture)
    _check_network(stage, config, network)
    size = _size(stage_cfg.input_size)
    num_classes = config.label_set.num_classes
    if stage == 'segmentation':
        return SegmentationStage(network, config.mean, config.std)
    if stage == 'synthesis':
        return SynthesisStage(network, num_classes, size)
    if stage == 'perceptual':
        normalization = config.perceptual_normalization
        if normalization not in PERCEPTUAL_NORMALIZATIONS:
            raise ModelError(f'stages.perceptual.normalization is {normalization!r}; use one of '
                             f'{list(PERCEPTUAL_NORMALIZATIONS)}')
        return PerceptualStage(network, size, config.mean, config.std, normalization, config.perceptual_scale)
    return DissimilarityStage(network, num_classes, size, config.mean, config.std)


# --------------------------------------------------------------------------------------------------
# Network files

def save_network(path: str | Path, stage: str, architecture: Mapping[str, Any], network: nn.Module) -> Path:
    """Write ``network``'s state dict with its stage and architecture to ``path`` (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        'format_version': FORMAT_VERSION,
        'stage': stage,
        'architecture': normalize_architecture(architecture),
        'state_dict': {k: v.detach().cpu() for k, v in network.state_dict().items()},
    }
    tmp = path.with_name(path.name + '.tmp')
    torch.save(record, tmp)
    tmp.replace(path)
    return path


def load_network(path: str | Path, stage: str, expected_architecture: Mapping[str, Any],
                 map_location: str | torch.device = 'cpu') -> nn.Module:
    """Rebuild a stage's network from a ``<stage>.pt`` file; returns it in eval mode.

    Raises:
        ModelError: naming the file, when it is missing or unreadable, of another format version
            or stage, its architecture differs from ``expected_architecture`` (model.yaml), or its
            state dict does not fit.
    """
    path = Path(path)
    redo = 'retrain the stage or recreate the model directory'
    if not path.is_file():
        raise ModelError(f'{path} is missing: the {stage} network file listed in model.yaml; {redo}')
    try:
        record = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise ModelError(f'{path} cannot be read as a torch network file ({type(exc).__name__}: {exc}); '
                         f'the file is corrupt or not a {stage} network; {redo}') from exc
    if not isinstance(record, Mapping) or not {'format_version', 'stage', 'architecture', 'state_dict'} <= set(record):
        raise ModelError(f'{path} is not a network file of anomaly_seg_ros (expected a dict with format_version, '
                         f'stage, architecture, state_dict); {redo}')
    if record['format_version'] != FORMAT_VERSION:
        raise ModelError(f'{path}: format_version {record["format_version"]!r}, this version reads '
                         f'{FORMAT_VERSION}; {redo}')
    if record['stage'] != stage:
        raise ModelError(f'{path} holds the {record["stage"]!r} network, not {stage!r}; check the file names in '
                         'model.yaml')
    found = normalize_architecture(record['architecture'])
    file_full, yaml_full = architecture_with_defaults(found), architecture_with_defaults(expected_architecture)
    if file_full != yaml_full:  # an argument left out equals its default
        keys = sorted(k for k in set(file_full) | set(yaml_full) if file_full.get(k) != yaml_full.get(k))
        diff = ', '.join(f'{k}: file {file_full.get(k)!r} vs model.yaml {yaml_full.get(k)!r}' for k in keys)
        raise ModelError(f'{path}: architecture differs from model.yaml ({diff}); the file belongs to another '
                         'model: copy the matching model.yaml or retrain')
    try:
        network = build_network(stage, found, warn_if_random=False)
    except ModelError as exc:
        raise ModelError(f'{path}: {exc}') from exc
    try:
        network.load_state_dict(record['state_dict'])
    except (RuntimeError, TypeError, KeyError) as exc:
        raise ModelError(f'{path}: the weights do not fit the architecture ({str(exc)[:300]}); {redo}') from exc
    return network.eval()


def load_stage_modules(model_dir: str | Path, config: ModelConfig, device: str | torch.device = 'cpu',
                       stages: Iterable[str] | None = None) -> dict[str, nn.Module]:
    """The stage modules of a model directory, for inference.

    Reads ``<model_dir>/<files.torch>`` of each stage, checks it against ``config``, folds spectral
    norm into plain weights, and returns ``{stage: module}`` in eval mode on ``device`` without
    gradients (use under ``torch.inference_mode()``). ``stages`` restricts which are loaded.
    """
    model_dir = Path(model_dir)
    modules: dict[str, nn.Module] = {}
    for stage in (STAGE_NAMES if stages is None else tuple(stages)):
        stage_cfg = config.stage(stage)
        file = stage_cfg.files.get('torch')
        if not file:
            raise ModelError(f'{model_dir / "model.yaml"}: stage {stage!r} lists no torch file (files.torch); '
                             'use the onnxruntime/tensorrt backend or a directory with .pt files')
        network = fold_spectral_norm(load_network(model_dir / file, stage, stage_cfg.architecture))
        module = build_stage_module(stage, config, network).to(device).eval()
        module.requires_grad_(False)
        modules[stage] = module
    return modules


# --------------------------------------------------------------------------------------------------
# Model configurations and random model directories

def make_model_config(label_set: LabelSet, architectures: Mapping[str, Mapping[str, Any]],
                      input_sizes: Mapping[str, Sequence[int]], *, perceptual_scale: float = 1.0,
                      perceptual_normalization: str = 'calibrated',
                      ensemble_weights: Sequence[float] = (0.75, 0.25, 0.0, 0.0),
                      mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                      provenance: Mapping[str, Any] | None = None) -> ModelConfig:
    """A :class:`ModelConfig` with files ``{'torch': '<stage>.pt'}`` for every stage.

    Args:
        label_set: classes of the model.
        architectures: architecture dict per stage (e.g. :func:`light_architectures`).
        input_sizes: (H, W) per stage.
        perceptual_scale, perceptual_normalization: the perceptual stage's options.
        ensemble_weights: (dissimilarity, entropy, perceptual_difference, softmax_distance).
        mean, std: image normalization applied inside the graphs.
        provenance: free-form record (command, seed, data, ...).
    """
    if perceptual_normalization not in PERCEPTUAL_NORMALIZATIONS:
        raise ValueError(f'perceptual_normalization must be one of {PERCEPTUAL_NORMALIZATIONS}')
    stages = {}
    for stage in STAGE_NAMES:
        options = {'scale': float(perceptual_scale), 'normalization': perceptual_normalization} \
            if stage == 'perceptual' else {}
        stages[stage] = StageConfig(input_size=_size(input_sizes[stage]),
                                    architecture=normalize_architecture(architectures[stage]),
                                    files={'torch': f'{stage}.pt'}, options=options)
    weights = tuple(float(w) for w in ensemble_weights)
    if len(weights) != 4 or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f'ensemble_weights must be 4 non-negative numbers with a positive sum, got {weights}')
    return ModelConfig(label_set=label_set, stages=stages, ensemble_weights=weights,  # type: ignore[arg-type]
                       mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std),  # type: ignore[arg-type]
                       provenance=dict(provenance or {}))


def light_model_config(label_set: LabelSet = SYNTHETIC, **kwargs: Any) -> ModelConfig:
    """The CPU configuration: :func:`light_architectures` at :data:`LIGHT_INPUT_SIZES`
    (segmentation 256x512, the other stages 128x256; about 20 GFLOP a frame).
    Keyword arguments go to :func:`make_model_config`."""
    sizes = kwargs.pop('input_sizes', LIGHT_INPUT_SIZES)
    return make_model_config(label_set, light_architectures(label_set.num_classes, _size(sizes['synthesis'])),
                             sizes, **kwargs)


def paper_model_config(label_set: LabelSet = CITYSCAPES, **kwargs: Any) -> ModelConfig:
    """The paper-scale configuration: :func:`paper_architectures` at :data:`PAPER_INPUT_SIZES`
    (segmentation 1024x2048, the other stages 256x512). Keyword arguments go to
    :func:`make_model_config`."""
    sizes = kwargs.pop('input_sizes', PAPER_INPUT_SIZES)
    return make_model_config(label_set, paper_architectures(label_set.num_classes, _size(sizes['synthesis'])),
                             sizes, **kwargs)


def init_random_model_dir(out_dir: str | Path, config: ModelConfig, seed: int = 0) -> Path:
    """Write randomly initialized ``<stage>.pt`` files and ``model.yaml`` into ``out_dir``.

    For tests and benchmarks (``bench --paper-scale``): the outputs are meaningless but every
    shape, cost and file is real. The provenance records ``weights: random`` and the seed.
    """
    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    for stage in STAGE_NAMES:
        stage_cfg = config.stage(stage)
        network = build_network(stage, stage_cfg.architecture, warn_if_random=False)
        _check_network(stage, config, network)
        save_network(out_dir / stage_cfg.files.get('torch', f'{stage}.pt'), stage, stage_cfg.architecture, network)
    provenance = {**dict(config.provenance), 'weights': 'random', 'seed': int(seed)}
    save_model_config(replace(config, provenance=provenance), out_dir)
    return out_dir
