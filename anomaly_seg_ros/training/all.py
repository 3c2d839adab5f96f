"""``train all``: segmentation -> synthesis -> perceptual calibration -> dissimilarity -> (optional
half-precision .pt files) -> ONNX export -> ensemble tuning, leaving a complete model directory.

Every step resumes (``resume=True``): finished stages are not retrained, an interrupted one continues
from its last checkpoint. Under torchrun the stages train on every process; the ONNX export, the
ensemble tuning, the provenance and ``MANIFEST.md`` are rank 0's (the other ranks return after the
dissimilarity stage, with ``ensemble`` None). ``model.yaml``'s provenance records the command, seed, commit, machine,
training time and the validation figures of every stage; ``MANIFEST.md`` sums them up with the file sizes.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..model_config import load_model_config, save_model_config
from .calibration import calibrate_perceptual
from .common import StageResult, Timer, format_duration, git_commit, machine_info
from .config import TrainConfig, config_to_dict
from .dissimilarity import train_dissimilarity, validation_set_path
from .distributed import init_distributed
from .ensemble import EnsembleResult, tune_ensemble
from .manifest import write_manifest
from .model_dir import compact_network_files
from .segmentation import train_segmentation
from .synthesis import train_synthesis

__all__ = ['AllResult', 'train_all']


@dataclass
class AllResult:
    stages: list[StageResult]
    ensemble: EnsembleResult | None     # None on the ranks other than 0 of a multi-process run
    seconds: float
    validation: dict[str, Any]
    exported: bool

    def summary(self) -> str:
        figures = ', '.join(f'{k} {v:.4f}' if isinstance(v, float) else f'{k} {v}' for k, v in self.validation.items())
        return f'train all: done in {format_duration(self.seconds)}; validation: {figures}'


def _export(out_dir: Path, log: Callable[[str], None]) -> bool:
    try:
        from ..export import export_model
    except ImportError as exc:
        log(f'train all: ONNX export skipped ({exc}); run `anomaly_seg export --models {out_dir} --out {out_dir}`')
        return False
    report = export_model(out_dir, out_dir)
    log(f'train all: exported ONNX graphs into {out_dir} (parity with PyTorch checked on {report.frames} frames)')
    return True


def train_all(config: TrainConfig, out_dir: str | Path, work_dir: str | Path | None = None, resume: bool = False,
              show_progress: bool = True, log: Callable[[str], None] = print,
              command: str | None = None) -> AllResult:
    """Run every training step in order for the model directory ``out_dir`` (see the module docstring)."""
    out_dir = Path(out_dir)
    timer = Timer()
    commit = git_commit()  # the code that trains is the code at the start, whatever happens to the checkout meanwhile
    dist = init_distributed(config.device)
    log = dist.main_only(log)
    kwargs = {'work_dir': work_dir, 'resume': resume, 'show_progress': show_progress, 'log': log}
    stages = []
    for train in (train_segmentation, train_synthesis):
        stages.append(train(config, out_dir, **kwargs))
        log(stages[-1].summary())
    stages.append(calibrate_perceptual(config, out_dir, show_progress=show_progress, log=log))
    stages.append(train_dissimilarity(config, out_dir, **kwargs))
    log(stages[-1].summary())
    if not dist.is_main:
        return AllResult(stages, None, timer.elapsed, {}, False)
    model = load_model_config(out_dir)
    if config.export.torch_dtype == 'float16':
        saved = compact_network_files(out_dir, model)
        log(f'train all: stored the .pt weights in float16 ({saved / 1e6:.1f} MB saved)')
    # Exported before the ensemble is tuned: the graphs take the weights as an input, and the tuning can then
    # run on the deployed graphs (ensemble.backend: onnxruntime).
    exported = _export(out_dir, log) if config.export.onnx else False
    ens = config.ensemble
    backend = ens.backend
    if backend != 'torch' and not exported:
        log(f'train all: no ONNX graphs were exported; tuning the ensemble with the torch backend, not {backend}')
        backend = 'torch'
    device = None if config.device in ('auto', '') else config.device
    # With pasted objects (source C) the weights are chosen on the validation frames with held-out objects;
    # otherwise on the validation split's void objects.
    ens_dataset, ens_root, ens_split = config.data.dataset, config.data.root, ens.split
    if config.dissimilarity.generator.pastes_objects:
        ens_root = str(validation_set_path(config, Path(work_dir or out_dir / 'training') / 'dissimilarity'))
        ens_dataset, ens_split = 'folder', None
    ensemble = tune_ensemble(out_dir, ens_dataset, ens_root, ens_split, ens.grid,
                             ens.limit if ens.limit is not None else config.data.val_limit, ens.bins, backend,
                             device, show_progress=show_progress, log=log, criterion=ens.criterion)
    by_stage = {s.stage: s for s in stages}
    validation = {
        'segmentation_miou': by_stage['segmentation'].validation['val_miou'],
        'synthesis_l1': by_stage['synthesis'].validation['val_l1'],
        'perceptual_scale': by_stage['calibration'].validation['perceptual_scale'],
        'dissimilarity_ap': by_stage['dissimilarity'].validation['val_ap'],
        'dissimilarity_fpr95': by_stage['dissimilarity'].validation['val_fpr95'],
        'ensemble_ap': ensemble.ap, 'ensemble_fpr95': ensemble.fpr95,
    }
    model = load_model_config(out_dir)
    provenance = copy.deepcopy(dict(model.provenance))
    training_time = sum(s.seconds for s in stages) + ensemble.seconds
    provenance.update({
        'command': command or 'train_all()',
        'seed': config.seed,
        'commit': commit,
        'data': {'dataset': config.data.dataset, 'root': str(config.data.root),
                 'train_split': config.data.train_split, 'val_split': config.data.val_split,
                 'ensemble_validation': {'dataset': ens_dataset, 'root': str(ens_root), 'split': ens_split}},
        'machine': machine_info(dist.device),
        'training_time_s': round(training_time, 1),
        'wall_time_s': round(timer.elapsed, 1),
        'validation': validation,
        'config': config_to_dict(config),
        'torch_weights_dtype': config.export.torch_dtype,
    })
    if dist.is_distributed:
        provenance['processes'] = {'count': dist.world_size, 'backend': dist.backend, 'launcher': 'torchrun',
                                   'nodes': dist.world_size // max(dist.local_world_size, 1),
                                   'global_batch': {name: getattr(config, name).batch_size * dist.world_size
                                                    for name in ('segmentation', 'synthesis', 'dissimilarity')}}
    if config.gpu_input_sizes:
        provenance['gpu_input_sizes'] = {k: list(v) for k, v in config.gpu_input_sizes.items()}
    save_model_config(replace(model, provenance=provenance), out_dir)
    write_manifest(out_dir)
    result = AllResult(stages, ensemble, timer.elapsed, validation, exported)
    log(result.summary())
    return result
