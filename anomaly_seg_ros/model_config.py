"""The model directory and its metadata file ``model.yaml``.

A model directory is self-describing: one ``model.yaml`` plus, per stage, one file per format
(``<stage>.pt`` for the torch backend, ``<stage>.onnx`` for ONNX Runtime, ``<stage>.engine`` for
TensorRT). The metadata plays the role of torchvision's weights record: label set, normalization,
each stage's input resolution and architecture (builder keyword arguments), the perceptual
difference calibration, the ensemble weights, and provenance.

Layout of ``model.yaml`` (format_version 1)::

    format_version: 1
    label_set: {name, class_names, colors, raw_to_train, void_ids, instance_ids, ...}
    normalization: {mean: [r, g, b], std: [r, g, b]}        # applied to [0,1] RGB inside the graphs
    stages:
      segmentation:  {input_size: [H, W], architecture: {...}, files: {torch: segmentation.pt, ...}}
      synthesis:     {...}
      perceptual:    {..., scale: 0.8, normalization: calibrated | minmax}
      dissimilarity: {...}
    ensemble_weights: [dissimilarity, entropy, perceptual_difference, softmax_distance]
    provenance: {command, seed, commit, data, training_time_s, validation: {...}}
    tensorrt: {version, gpu_name, compute_capability, precision}   # only where engines were built
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from .errors import ModelError
from .labels import LabelSet

__all__ = [
    'FORMAT_VERSION',
    'FILE_FORMATS',
    'IMAGENET_MEAN',
    'IMAGENET_STD',
    'METADATA_FILE',
    'STAGE_NAMES',
    'ModelConfig',
    'StageConfig',
    'load_model_config',
    'save_model_config',
]

FORMAT_VERSION = 1
METADATA_FILE = 'model.yaml'
STAGE_NAMES: tuple[str, ...] = ('segmentation', 'synthesis', 'perceptual', 'dissimilarity')
# format key in stages.<stage>.files -> file suffix; onnx_fp16 is the FP16 graph (issue 5) for ONNX Runtime.
FILE_FORMATS: dict[str, str] = {'torch': '.pt', 'onnx': '.onnx', 'onnx_fp16': '.fp16.onnx', 'onnx_int8': '.int8.onnx',
                                'onnx_int8_tensorrt': '.int8-tensorrt.onnx', 'tensorrt': '.engine'}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class StageConfig:
    """One stage: its network's input resolution, builder arguments and files per format.

    ``input_size`` is (H, W) of the stage's network input. ``architecture`` holds the keyword
    arguments of the network builder. ``files`` maps a format (torch, onnx, tensorrt) to a file
    name relative to the model directory. ``options`` holds stage-specific settings (the
    perceptual stage's ``scale`` and ``normalization``).
    """

    input_size: tuple[int, int]
    architecture: Mapping[str, Any] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            'input_size': [int(self.input_size[0]), int(self.input_size[1])],
            'architecture': copy.deepcopy(dict(self.architecture)),
            'files': dict(self.files),
            **copy.deepcopy(dict(self.options)),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageConfig:
        size = data['input_size']
        return cls(
            input_size=(int(size[0]), int(size[1])),
            architecture=dict(data.get('architecture') or {}),
            files=dict(data.get('files') or {}),
            options={k: v for k, v in data.items() if k not in ('input_size', 'architecture', 'files')},
        )


@dataclass(frozen=True)
class ModelConfig:
    """Everything ``model.yaml`` says about a trained pipeline."""

    label_set: LabelSet
    stages: Mapping[str, StageConfig]
    ensemble_weights: tuple[float, float, float, float] = (0.75, 0.25, 0.0, 0.0)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    provenance: Mapping[str, Any] = field(default_factory=dict)
    tensorrt: Mapping[str, Any] | None = None
    format_version: int = FORMAT_VERSION

    def stage(self, name: str) -> StageConfig:
        try:
            return self.stages[name]
        except KeyError:
            raise ModelError(f'model metadata has no stage {name!r}') from None

    @property
    def perceptual_scale(self) -> float:
        return float(self.stage('perceptual').options.get('scale', 1.0))

    @property
    def perceptual_normalization(self) -> str:
        return str(self.stage('perceptual').options.get('normalization', 'calibrated'))

    def with_stage(self, name: str, **changes: Any) -> ModelConfig:
        """A copy with one stage's fields replaced (e.g. ``files=...``)."""
        stages = dict(self.stages)
        stages[name] = replace(self.stage(name), **changes)
        return replace(self, stages=stages)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            'format_version': self.format_version,
            'label_set': self.label_set.to_dict(),
            'normalization': {'mean': list(self.mean), 'std': list(self.std)},
            'stages': {name: self.stages[name].to_dict() for name in STAGE_NAMES if name in self.stages},
            'ensemble_weights': [float(w) for w in self.ensemble_weights],
            'provenance': copy.deepcopy(dict(self.provenance)),
        }
        if self.tensorrt is not None:
            data['tensorrt'] = dict(self.tensorrt)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = 'model metadata') -> ModelConfig:
        version = data.get('format_version')
        if version != FORMAT_VERSION:
            raise ModelError(f'{source}: format_version {version!r} is not supported by this version of '
                             f'anomaly_seg_ros (expects {FORMAT_VERSION}); re-export or retrain the model '
                             'with this version')
        try:
            stages = {name: StageConfig.from_dict(stage) for name, stage in data['stages'].items()}
            missing = [name for name in STAGE_NAMES if name not in stages]
            if missing:
                raise ModelError(f'{source}: stages {missing} missing; a model needs {list(STAGE_NAMES)}')
            weights = tuple(float(w) for w in data.get('ensemble_weights', (0.75, 0.25, 0.0, 0.0)))
            norm = data.get('normalization') or {}
            return cls(
                label_set=LabelSet.from_dict(data['label_set']),
                stages=stages,
                ensemble_weights=_check_weights(weights, source),
                mean=_triple(norm.get('mean', IMAGENET_MEAN)),
                std=_triple(norm.get('std', IMAGENET_STD)),
                provenance=dict(data.get('provenance') or {}),
                tensorrt=dict(data['tensorrt']) if data.get('tensorrt') else None,
                format_version=int(version),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelError(f'{source}: malformed metadata ({type(exc).__name__}: {exc}); '
                             'regenerate it with `anomaly_seg train` or `anomaly_seg export`') from exc


def _triple(values: Sequence[float]) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in values)
    return a, b, c


def _check_weights(weights: Sequence[float], source: str) -> tuple[float, float, float, float]:
    if len(weights) != 4 or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ModelError(f'{source}: ensemble_weights must be 4 non-negative numbers with a positive sum '
                         f'(dissimilarity, entropy, perceptual_difference, softmax_distance), got {list(weights)}')
    a, b, c, d = (float(w) for w in weights)
    return a, b, c, d


def load_model_config(model_dir: str | Path) -> ModelConfig:
    """Read and validate ``<model_dir>/model.yaml``; raises :class:`ModelError` with what to do."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelError(f'model directory {model_dir} does not exist; pass a directory made by '
                         '`anomaly_seg train all` or `anomaly_seg export`, or leave the parameter empty '
                         'for the shipped default model')
    path = model_dir / METADATA_FILE
    if not path.is_file():
        raise ModelError(f'{path} is missing; a model directory needs its {METADATA_FILE} '
                         '(made by `anomaly_seg train all` or `anomaly_seg export`)')
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        reason = ' '.join(str(exc).split())  # YAML errors span lines; the message must stay one line
        raise ModelError(f'{path} cannot be read as YAML ({reason}); regenerate it') from exc
    if not isinstance(data, Mapping):
        raise ModelError(f'{path} does not hold a mapping; regenerate it')
    return ModelConfig.from_dict(data, source=str(path))


def save_model_config(config: ModelConfig, model_dir: str | Path) -> Path:
    """Write ``model.yaml`` into ``model_dir`` (created if needed); returns its path."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / METADATA_FILE
    tmp = path.with_suffix('.yaml.tmp')
    tmp.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    tmp.replace(path)
    return path
