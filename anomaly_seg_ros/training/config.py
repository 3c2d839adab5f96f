"""Typed training configuration: dataclasses with defaults, presets, YAML files, command-line overrides.

One :class:`TrainConfig` describes a whole training run (every stage has its section); each command
uses its own section and saves the final configuration as YAML beside its checkpoint. Resolution
order: dataclass defaults -> preset (``light`` or ``paper``) -> YAML file -> command-line overrides
(dotted keys, ``--set dissimilarity.epochs=20``, or the named flags of the commands).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import AnomalySegError

__all__ = [
    'PRESETS',
    'CalibrationConfig',
    'ConfigError',
    'DataConfig',
    'DataGeneratorConfig',
    'DiscriminatorConfig',
    'DissimilarityConfig',
    'EnsembleConfig',
    'ExportConfig',
    'SegmentationConfig',
    'SegmentationOEConfig',
    'SynthesisConfig',
    'TrainConfig',
    'config_from_dict',
    'config_to_dict',
    'load_train_config',
    'parse_overrides',
    'save_config',
    'validate_config',
]


class ConfigError(AnomalySegError):
    """A training configuration file or override is invalid."""


@dataclass
class DataConfig:
    """Where the training frames come from (a dataset readable by ``open_dataset``)."""

    dataset: str = 'synthetic'
    root: str = ''
    train_split: str = 'train'
    val_split: str = 'val'
    train_limit: int | None = None      # use only the first N training frames
    val_limit: int | None = None        # use only the first N validation frames
    cache_in_memory: bool = True        # keep decoded frames in RAM (skipped above ~4 GB)
    semantic: str = 'ground_truth'      # maps the synthesis and the data generator start from:
    #                                     'ground_truth' (the dataset's labels) or 'predicted' (the segmentation
    #                                     stage's own predictions; for a label set the dataset does not have)


@dataclass
class SegmentationOEConfig:
    """Outlier exposure of the segmentation network (segmentation_oe.py): objects pasted onto the training
    frames (``dissimilarity.generator.objects``) get a uniform softmax, the other pixels keep their classes."""

    epochs: int = 0                             # 0: off
    batch_size: int = 4
    lr: float = 1e-4                            # Adam
    outlier_weight: float = 0.5                 # weight of the cross-entropy to uniform on the pasted pixels
    trainable: str = 'decoder'                  # 'decoder' (encoder frozen) or 'all'
    max_miou_drop: float = 0.015                # a kept epoch's validation mIoU may lie this far below the start
    steps_per_epoch: int | None = None          # cap (tests and quick runs)


@dataclass
class SegmentationConfig:
    """ICNet training (Zhao et al. 2018): SGD, poly LR, cascade label guidance, scale/crop/flip."""

    epochs: int = 160
    batch_size: int = 16
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    poly_power: float = 0.9
    crop_size: list[int] | None = None          # (H, W), divisible by 32; None: the stage input size
    scale_min: float = 0.5
    scale_max: float = 2.0
    flip: bool = True
    aux_weights: list[float] = field(default_factory=lambda: [0.4, 0.4])  # 1/8 (sub24), 1/16 (sub4) outputs
    steps_per_epoch: int | None = None          # cap (tests and quick runs)
    pretrained: str | None = None               # import these public weights instead of training (see pretrained.py)
    outlier_exposure: SegmentationOEConfig = field(default_factory=SegmentationOEConfig)


@dataclass
class DiscriminatorConfig:
    ndf: int = 64
    n_layers: int = 4
    num_d: int = 2


@dataclass
class SynthesisConfig:
    """SPADE training: hinge GAN, discriminator feature matching, VGG loss (with ImageNet VGG19), TTUR."""

    epochs: int = 200
    batch_size: int = 16
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    beta1: float = 0.0
    beta2: float = 0.9
    lambda_feat: float = 10.0
    lambda_vgg: float = 10.0
    lambda_l1: float = 0.0                      # pixel L1 to the real image (pix2pix); not in SPADE, see synthesis.py
    decay_start_epoch: int | None = 100         # linear LR decay to 0 from this epoch (None: constant)
    flip: bool = True
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    steps_per_epoch: int | None = None


@dataclass
class CalibrationConfig:
    """Perceptual difference scale: 1 / quantile of the raw map over training frames vs their re-synthesis."""

    quantile: float = 0.99
    frames: int | None = 200                    # training frames used (None: all)
    normalization: str = 'calibrated'           # 'calibrated' or 'minmax' (the authors' per-image scaling)


@dataclass
class DataGeneratorConfig:
    """The paper's training data generator (Sec. 3.2): source A class swap, source B void objects, and
    source C, real objects pasted onto the road (outlier exposure; ``objects`` is the cutout folder)."""

    sources: list[str] = field(default_factory=lambda: ['A', 'B'])
    swap_probability: float = 0.5               # per instance; at least one instance is swapped per frame
    min_instance_pixels: int = 64               # at the segmentation input size
    batch_size: int = 8
    void: str = 'anomaly'                       # void pixels in sources B and C: 'anomaly' (the paper's source B)
    #                                             or 'ignore' (CamVid's void is mostly unlabelled object borders)
    objects: str | None = None                  # source C: folder of RGBA cutouts with manifest.json
    pastes_per_frame: int = 2                   # source C: differently pasted copies of each training frame
    # Source C's validation set: the validation split with held-out-category objects pasted, written once
    # (a `folder` anomaly set; default <work>/validation_objects); the ensemble and the INT8 check use it too.
    validation_set: str | None = None

    @property
    def pastes_objects(self) -> bool:
        """Source C is among the sources (objects are pasted; its validation set decides the choices)."""
        return 'C' in {str(s).upper() for s in self.sources}


@dataclass
class DissimilarityConfig:
    """Dissimilarity network training as the paper (A.1) and REFERENCE.md."""

    epochs: int = 50
    batch_size: int = 4
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    plateau_patience: int = 10
    plateau_factor: float = 0.5
    flip: bool = True
    use_uncertainty: bool = True
    class_weighting: str = 'enet'               # 'enet' (1 / ln(1.02 + p)) or 'none'
    vgg16_weights: str | None = None            # torchvision VGG16 ImageNet state dict for the encoder
    generator: DataGeneratorConfig = field(default_factory=DataGeneratorConfig)
    cache_dir: str | None = None                # generated sets (default: <work>/generated)
    steps_per_epoch: int | None = None
    checkpoint: str = 'last'                    # the weights kept: the 'last' epoch's or the 'best' validation AP's


# Ensemble criteria (training/ensemble.py says what each does) and how model.yaml's provenance describes them.
ENSEMBLE_CRITERIA = {
    'lowest_fpr95': 'lowest FPR95, ties by AP',
    'lowest_fpr95_keeping_ap': 'lowest FPR95 among the vectors with AP >= the best single cue, ties by AP',
}


@dataclass
class EnsembleConfig:
    """Grid search of the ensemble weights (Sec. 3.3) on the validation split."""

    grid: list[int] = field(default_factory=lambda: [0, 1, 2, 3])
    split: str = 'val'
    limit: int | None = None
    bins: int = 4096                            # score quantization of the per-vector histograms
    backend: str = 'torch'
    criterion: str = 'lowest_fpr95'             # the paper's; see training/ensemble.py for the other


@dataclass
class ExportConfig:
    onnx: bool = True                           # export <stage>.onnx into the model directory at the end
    torch_dtype: str = 'float32'                # 'float16' stores the .pt weights in half precision


@dataclass
class TrainConfig:
    """A whole training run; ``architectures`` and ``input_sizes`` override the preset's per stage."""

    preset: str = 'light'
    seed: int = 0
    device: str = 'auto'                        # 'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:N'
    num_workers: int | None = None              # data loader workers per process; None: 0 on the CPU (they would
    #                                             take the cores the training needs), up to 4 on CUDA
    precision: str = 'fp32'                     # 'fp32', or on CUDA 'bf16' / 'fp16' (autocast; see precision.py)
    sync_batchnorm: bool = False                # multi-process runs: BatchNorm statistics over the global batch
    channels_last: bool | None = None           # None: on CUDA with bf16/fp16 (tensor cores), else off
    cudnn_benchmark: bool = True                # CUDA: pick the fastest convolution algorithms (fixed sizes)
    vgg19_weights: str | None = None            # torchvision VGG19 ImageNet state dict: perceptual stage
    #                                             (width 1) and the synthesis VGG loss (off without it)
    squeezenet_weights: str | None = None       # SqueezeNet v1.1 ImageNet features (.npz): squeezenet perceptual
    #                                             stage and the dissimilarity network's squeezenet encoder
    lpips_weights: str | None = None            # LPIPS v0.1 SqueezeNet heads (.npz): its 'lpips' distance
    label_set: str | None = None                # the model's classes (default: the training dataset's)
    data: DataConfig = field(default_factory=DataConfig)
    input_sizes: dict[str, list[int]] = field(default_factory=dict)
    # Stage sizes recommended on a GPU, recorded in model.yaml (provenance.gpu_input_sizes) and MANIFEST.md
    # for whoever rebuilds the stages there; the model directory itself holds the CPU sizes.
    gpu_input_sizes: dict[str, list[int]] = field(default_factory=dict)
    architectures: dict[str, dict[str, Any]] = field(default_factory=dict)
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    dissimilarity: DissimilarityConfig = field(default_factory=DissimilarityConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    export: ExportConfig = field(default_factory=ExportConfig)


# Settings per preset on top of the dataclass defaults (which follow the papers at full scale).
PRESETS: dict[str, dict[str, Any]] = {
    'paper': {
        'segmentation': {'crop_size': [1024, 1024]},
    },
    'light': {
        'segmentation': {'epochs': 60, 'batch_size': 8},
        'synthesis': {'epochs': 40, 'batch_size': 4, 'decay_start_epoch': 20, 'discriminator': {'ndf': 32}},
        'calibration': {'frames': 100},
    },
}
# The shipped CPU demo (models/demo): the light stages with a narrower ICNet (planes 32-64-64-96 instead of
# 32-64-128-192) and SPADE generator (ngf 6 instead of 16), whose wide low-resolution layers hold most of the
# light parameters (9.5 M, 38 MB a format) for little of its cost: 3.8 M parameters, so .pt (float16) and
# .onnx files fit 25 MB together; 14.2 GFLOP a frame (the four stage graphs, torch's counter).
# Schedules: ~25 min on 2 CPU cores.
PRESETS['demo'] = {
    **PRESETS['light'],
    'architectures': {
        'segmentation': {'name': 'icnet', 'block': 'basic', 'layers': [2, 2, 2, 2], 'planes': [32, 64, 64, 96],
                         'stem': [16, 16, 32], 'sub1': [16, 16, 32], 'head_channels': 96, 'cff_channels': 64},
        'synthesis': {'ngf': 6, 'spade_hidden': 24},
    },
    'segmentation': {'epochs': 40, 'batch_size': 8, 'crop_size': [256, 256], 'lr': 0.03},
    # Pixel L1 (see synthesis.py): without ImageNet VGG weights, GAN + feature matching alone are still noise
    # after the ~1600 generator steps this budget allows.
    'synthesis': {'epochs': 8, 'batch_size': 4, 'decay_start_epoch': 4, 'lambda_l1': 20.0,
                  'discriminator': {'ndf': 32}},
    'dissimilarity': {'epochs': 6},
    'export': {'torch_dtype': 'float16'},
}

# Real camera frames (models/cityscapes_camvid, the node's default): public ESPNetv2 Cityscapes weights as the
# segmentation stage (--pretrained; 512x256, the CPU working point), SqueezeNet ImageNet features with the LPIPS
# heads as the perceptual stage, and the synthesis and dissimilarity stages trained on CamVid train frames from
# the segmentation's own predicted Cityscapes maps (data.semantic: predicted). The generator has the demo's width
# (ngf 6): a wider one does not fit the 25 MB a shipped model directory may take. About 1 h 40 min on 2 CPU
# cores (AMD EPYC, AVX-512 VNNI), source C's data generation included. On a GPU the segmentation runs at
# 1024x512 from the EdgeNets file trained at that size (espnetv2_s_2.0_city_1024x512.pth); the other stages keep
# their trained sizes.
PRESETS['real'] = {
    **PRESETS['light'],
    'label_set': 'cityscapes',
    'gpu_input_sizes': {'segmentation': [512, 1024]},
    'data': {'dataset': 'camvid', 'semantic': 'predicted'},
    'architectures': {
        'segmentation': {'name': 'espnetv2', 'scale': 2.0, 'keep_background': False},
        'synthesis': {'ngf': 6, 'spade_hidden': 24},
        'perceptual': {'name': 'squeezenet_features', 'distance': 'lpips'},
    },
    'synthesis': {'epochs': 20, 'batch_size': 4, 'decay_start_epoch': 10, 'lambda_l1': 20.0,
                  'discriminator': {'ndf': 32}},
    # Source C (objects pasted on the road, --objects) replaces source B: CamVid's void is mostly unlabelled
    # object borders, which B taught as anomalies; void pixels are ignored. One pasted copy per training frame
    # keeps the dissimilarity epochs at the 2-core budget; the validation AP still rose at the 10th epoch.
    'dissimilarity': {'epochs': 20, 'checkpoint': 'best',
                      'generator': {'sources': ['A', 'C'], 'void': 'ignore', 'pastes_per_frame': 1}},
    # The dissimilarity output is far stronger than the other cues on the validation set; the paper's lowest
    # FPR95 gave them half the weight for 1 FPR95 point and 16 AP points. The framework must be no worse than
    # any of its cues, so the search keeps the best cue's AP.
    'ensemble': {'backend': 'onnxruntime', 'criterion': 'lowest_fpr95_keeping_ap'},
    'export': {'torch_dtype': 'float16'},
}


def config_to_dict(config: Any) -> dict[str, Any]:
    """A plain (YAML-safe) dict of a config dataclass."""
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value
    return plain(config)


def save_config(config: TrainConfig, path: str | Path) -> Path:
    """Write ``config`` as YAML (atomically); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))
    tmp.replace(path)
    return path


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _coerce(kind: Any, value: Any, where: str) -> Any:
    """Check/convert ``value`` to the annotated type ``kind``."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f'{where}: invalid value {value!r}')
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, Mapping):
            raise ConfigError(f'{where}: expected a mapping, got {value!r}')
        return _from_dict(kind, value, where)
    if origin is list:
        (item,) = typing.get_args(kind)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f'{where}: expected a list, got {value!r}')
        return [_coerce(item, v, f'{where}[{i}]') for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f'{where}: expected a mapping, got {value!r}')
        _, item = typing.get_args(kind)
        return {str(k): _coerce(item, v, f'{where}.{k}') for k, v in value.items()}
    if kind is Any:
        return value
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f'{where}: expected true/false, got {value!r}')
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f'{where}: expected an integer, got {value!r}')
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 5e-5 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f'{where}: expected a number, got {value!r}')
    if kind is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f'{where}: expected a string, got {value!r}')
    raise ConfigError(f'{where}: unsupported type {kind}')


def _from_dict(cls: type, data: Mapping[str, Any], where: str = 'config') -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f'{where}: unknown key(s) {unknown}; known: {sorted(names)}')
    values = {name: _coerce(hints[name], data[name], f'{where}.{name}') for name in names if name in data}
    return cls(**values)


def config_from_dict(data: Mapping[str, Any]) -> TrainConfig:
    """A :class:`TrainConfig` from its dict form (e.g. a saved ``config.yaml``); raises ConfigError."""
    return validate_config(_from_dict(TrainConfig, data))


def validate_config(config: TrainConfig) -> TrainConfig:
    """Check the values that have a fixed set of choices or constraints; returns ``config``."""
    problems = []
    if config.preset not in PRESETS:
        problems.append(f'preset {config.preset!r} is not one of {sorted(PRESETS)}')
    sources = config.dissimilarity.generator.sources
    if not sources or not set(s.upper() for s in sources) <= {'A', 'B', 'C'}:
        problems.append(f'dissimilarity.generator.sources must be a non-empty subset of [A, B, C], got {sources}')
    generator = config.dissimilarity.generator
    if generator.pastes_objects and not generator.objects:
        problems.append('dissimilarity.generator.sources has C (pasted objects) but no objects folder is given '
                        '(--objects DIR, e.g. ../shared/data/coco_objects)')
    if generator.void not in ('anomaly', 'ignore'):
        problems.append(f"dissimilarity.generator.void must be 'anomaly' or 'ignore', got {generator.void!r}")
    if config.dissimilarity.checkpoint not in ('last', 'best'):
        problems.append(f"dissimilarity.checkpoint must be 'last' or 'best', got {config.dissimilarity.checkpoint!r}")
    if generator.pastes_per_frame < 1:
        problems.append(f'dissimilarity.generator.pastes_per_frame must be >= 1, got {generator.pastes_per_frame}')
    oe = config.segmentation.outlier_exposure
    if oe.epochs and not config.dissimilarity.generator.objects:
        problems.append('segmentation.outlier_exposure.epochs > 0 needs the objects to paste: pass --objects DIR '
                        '(dissimilarity.generator.objects)')
    if oe.epochs and not config.segmentation.pretrained:
        problems.append('segmentation.outlier_exposure fine-tunes imported weights: pass --pretrained FILE '
                        '(segmentation.pretrained)')
    if oe.trainable not in ('decoder', 'all'):
        problems.append(f"segmentation.outlier_exposure.trainable must be 'decoder' or 'all', got {oe.trainable!r}")
    if config.dissimilarity.class_weighting not in ('enet', 'none'):
        problems.append(f"dissimilarity.class_weighting must be 'enet' or 'none', got "
                        f'{config.dissimilarity.class_weighting!r}')
    if config.ensemble.criterion not in ENSEMBLE_CRITERIA:
        problems.append(f'ensemble.criterion must be one of {sorted(ENSEMBLE_CRITERIA)}, got '
                        f'{config.ensemble.criterion!r}')
    if config.precision not in ('fp32', 'bf16', 'fp16'):
        problems.append(f"precision must be 'fp32', 'bf16' or 'fp16', got {config.precision!r}")
    if config.num_workers is not None and config.num_workers < 0:
        problems.append(f'num_workers must be >= 0 (or null: automatic), got {config.num_workers}')
    if config.export.torch_dtype not in ('float32', 'float16'):
        problems.append(f"export.torch_dtype must be 'float32' or 'float16', got {config.export.torch_dtype!r}")
    if config.data.semantic not in ('ground_truth', 'predicted'):
        problems.append(f"data.semantic must be 'ground_truth' or 'predicted', got {config.data.semantic!r}")
    if config.calibration.normalization not in ('calibrated', 'minmax'):
        problems.append(f"calibration.normalization must be 'calibrated' or 'minmax', got "
                        f'{config.calibration.normalization!r}')
    crop = config.segmentation.crop_size
    if crop is not None and (len(crop) != 2 or crop[0] % 32 or crop[1] % 32 or min(crop) <= 0):
        problems.append(f'segmentation.crop_size must be [H, W] divisible by 32 (ICNet), got {crop}')
    if not 0 < config.calibration.quantile <= 1:
        problems.append(f'calibration.quantile must be in (0, 1], got {config.calibration.quantile}')
    for name in ('segmentation', 'synthesis', 'dissimilarity'):
        section = getattr(config, name)
        if section.epochs < 0 or section.batch_size < 1:
            problems.append(f'{name}: epochs must be >= 0 and batch_size >= 1')
    if problems:
        raise ConfigError('invalid training configuration: ' + '; '.join(problems))
    return config


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``['a.b=1', 'c=[1, 2]']`` -> nested dict; values are parsed as YAML."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition('=')
        if not sep or not key.strip():
            raise ConfigError(f'override {item!r} is not KEY=VALUE (e.g. dissimilarity.epochs=20)')
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f'override {item!r}: the value is not valid YAML ({exc})') from exc
        node = out
        parts = key.strip().split('.')
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def load_train_config(config: str | Path = 'light', overrides: Mapping[str, Any] | None = None,
                      sets: Mapping[str, Any] | None = None) -> TrainConfig:
    """Resolve a :class:`TrainConfig`.

    Args:
        config: a preset name (``light``, ``paper``) or a YAML file (which may name its own
            ``preset``; its keys override the preset's).
        overrides: nested dict of the commands' named flags (``None`` = flag not given, skipped).
        sets: nested dict of ``--set KEY=VALUE`` items (:func:`parse_overrides`), applied last.
    Raises:
        ConfigError: unknown preset, unreadable file, unknown keys or wrongly typed values.
    """
    file_data: dict[str, Any] = {}
    text = str(config)
    if text in PRESETS:
        preset = text
    else:
        path = Path(text)
        if not path.is_file():
            raise ConfigError(f'--config {text!r} is neither a preset ({", ".join(PRESETS)}) nor a YAML file')
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f'{path}: cannot be read as YAML ({exc})') from exc
        if not isinstance(loaded, Mapping):
            raise ConfigError(f'{path}: expected a mapping of configuration sections')
        file_data = dict(loaded)
        preset = str(file_data.get('preset', 'light'))
        if preset not in PRESETS:
            raise ConfigError(f'{path}: preset {preset!r} unknown; choose one of {", ".join(PRESETS)}')
    data = _merge(config_to_dict(TrainConfig()), PRESETS[preset])
    data = _merge(data, file_data)
    data['preset'] = preset
    data = _merge(data, _drop_none(overrides or {}))
    data = _merge(data, sets or {})
    return config_from_dict(data)


def _drop_none(data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            inner = _drop_none(value)
            if inner:
                out[key] = inner
        elif value is not None:
            out[key] = value
    return out
