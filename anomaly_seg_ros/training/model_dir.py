"""The model directory a training run fills: ``model.yaml`` first, then ``<stage>.pt`` stage by stage.

``model.yaml`` is written at the start (from the preset, the architecture and input-size overrides
and the dataset's label set) so every stage command finds the shared metadata; each command then
writes its network file and records its figures under ``provenance.stages.<stage>``.
"""
from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelError
from ..labels import LabelSet
from ..model_config import FILE_FORMATS, METADATA_FILE, ModelConfig, load_model_config, save_model_config
from ..networks import architecture_with_defaults, build_network, normalize_architecture
from ..runtime.stage_files import stage_file
from ..stage_modules import light_model_config, paper_model_config, save_network
from .config import TrainConfig, config_to_dict

__all__ = [
    'compact_network_files',
    'model_config_for',
    'prepare_model_dir',
    'record_stage',
    'save_stage_network',
]

_log = logging.getLogger(__name__)


def model_config_for(config: TrainConfig, label_set: LabelSet) -> ModelConfig:
    """The model metadata a configuration describes (preset + overrides), before training."""
    factory = paper_model_config if config.preset == 'paper' else light_model_config
    base = factory(label_set)
    sizes = {stage: tuple(base.stage(stage).input_size) for stage in base.stages}
    sizes.update({stage: (int(v[0]), int(v[1])) for stage, v in config.input_sizes.items()})
    model = factory(label_set, input_sizes=sizes)
    for stage, changes in config.architectures.items():
        if stage not in model.stages:
            raise ModelError(f'architectures.{stage}: unknown stage; stages: {list(model.stages)}')
        base = dict(model.stage(stage).architecture)
        if changes.get('name', base['name']) != base['name']:  # another network: only the label set size carries over
            base = {k: v for k, v in base.items() if k == 'num_classes'}
        architecture = {**base, **dict(changes)}
        model = model.with_stage(stage, architecture=normalize_architecture(architecture))
    # The dissimilarity ablation flag lives in the training section, not in the architecture overrides.
    arch = dict(model.stage('dissimilarity').architecture)
    arch['use_uncertainty'] = bool(config.dissimilarity.use_uncertainty)
    model = model.with_stage('dissimilarity', architecture=arch)
    for stage in model.stages:  # fails early on an invalid override
        build_network(stage, model.stage(stage).architecture, warn_if_random=False)
    options = {'scale': model.perceptual_scale, 'normalization': config.calibration.normalization}
    return model.with_stage('perceptual', options=options)


def prepare_model_dir(out_dir: str | Path, config: TrainConfig, label_set: LabelSet) -> ModelConfig:
    """Create ``out_dir/model.yaml`` for ``config``, or check that an existing one agrees with it.

    Raises:
        ModelError: the directory holds a model with another label set, input sizes or architecture.
    """
    out_dir = Path(out_dir)
    wanted = model_config_for(config, label_set)
    if (out_dir / METADATA_FILE).is_file():
        existing = load_model_config(out_dir)
        problems = []
        if existing.label_set.class_names != wanted.label_set.class_names:
            problems.append(f'label set {existing.label_set.name} vs {wanted.label_set.name}')
        for stage in wanted.stages:
            old, new = existing.stage(stage), wanted.stage(stage)
            if tuple(old.input_size) != tuple(new.input_size):
                problems.append(f'{stage} input size {list(old.input_size)} vs {list(new.input_size)}')
            if architecture_with_defaults(old.architecture) != architecture_with_defaults(new.architecture):
                problems.append(f'{stage} architecture {dict(old.architecture)} vs {dict(new.architecture)}')
        if problems:
            raise ModelError(f'{out_dir / METADATA_FILE} describes another model ({"; ".join(problems)}); '
                             'choose a new --out directory or the configuration it was made with')
        return existing
    provenance = {'config': config_to_dict(config)}
    save_model_config(replace(wanted, provenance=provenance), out_dir)
    return wanted


def record_stage(out_dir: str | Path, stage: str, record: Mapping[str, Any],
                 **changes: Any) -> ModelConfig:
    """Store ``record`` under ``provenance.stages.<stage>`` of ``model.yaml`` and apply top-level
    ``changes`` (e.g. ``ensemble_weights=...``); returns the new metadata."""
    model = load_model_config(out_dir)
    provenance = copy.deepcopy(dict(model.provenance))
    stages = dict(provenance.get('stages') or {})
    stages[stage] = dict(record)
    provenance['stages'] = stages
    model = replace(model, provenance=provenance, **changes)
    save_model_config(model, out_dir)
    return model


def save_stage_network(out_dir: str | Path, model: ModelConfig, stage: str, network: torch.nn.Module) -> Path:
    """Write ``<out_dir>/<stage>.pt`` (the file model.yaml lists) for ``network``.

    The stage's graphs and engines exported from the previous weights are deleted: the ONNX Runtime and
    TensorRT backends would otherwise run the old network without a word (``anomaly_seg export`` re-makes them).
    """
    stage_cfg = model.stage(stage)
    file = stage_cfg.files.get('torch', f'{stage}.pt')
    exported = [stage_file(out_dir, model, stage, fmt) for fmt in FILE_FORMATS if fmt != 'torch']
    stale = [path for path in exported if path.is_file()]
    for path in stale:
        path.unlink()
    if stale:
        _log.warning('%s retrained: deleted %s, exported from its previous weights; run `anomaly_seg export` '
                     '(with --int8 / --tensorrt as before) to make them again', stage,
                     ', '.join(p.name for p in stale))
    return save_network(Path(out_dir) / file, stage, stage_cfg.architecture, network)


def compact_network_files(out_dir: str | Path, model: ModelConfig) -> int:
    """Store the floating-point tensors of every ``<stage>.pt`` in float16 (half the size).

    ``load_network`` copies them into the float32 networks, so the torch backend and an ONNX
    export made afterwards both use the rounded weights (relative rounding 2**-11). Returns the
    number of bytes saved.
    """
    saved = 0
    for stage in model.stages:
        path = Path(out_dir) / model.stage(stage).files.get('torch', f'{stage}.pt')
        before = path.stat().st_size
        record = torch.load(path, map_location='cpu', weights_only=True)
        record['state_dict'] = {k: _half(v) for k, v in record['state_dict'].items()}
        tmp = path.with_name(path.name + '.tmp')
        torch.save(record, tmp)
        tmp.replace(path)
        saved += before - path.stat().st_size
    return saved


def _half(value: torch.Tensor) -> torch.Tensor:
    """float16 where the tensor is floating point and fits its range, else unchanged."""
    if not value.is_floating_point():
        return value
    half = value.half()
    return half if bool(torch.isfinite(half).all()) else value
