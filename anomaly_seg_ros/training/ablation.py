"""``train ablation``: the paper's ablation (Table 2 / Sec. 5.1) on an anomaly set, or on a segmentation
set's void objects as anomalies (CamVid val for the real-frame model).

Rows (AP, FPR95, AUROC): softmax entropy alone, softmax distance alone, perceptual difference alone,
re-synthesis only (a dissimilarity network trained WITHOUT the uncertainty inputs and with data generator
source A alone, i.e. without source B's void objects or source C's pasted objects, otherwise with the model's
own training settings), dissimilarity without the
ensemble (the full model's network output) and the full framework (the tuned ensemble).

The re-synthesis-only network gets its own model directory ``<out>/resynthesis_only`` (the full
model's segmentation, synthesis and perceptual files with a dissimilarity network of
``use_uncertainty: false``), trained with :func:`.dissimilarity.train_dissimilarity` (resumable).
Results: ``<out>/ablation.md`` (a markdown table) and ``<out>/ablation.json``.
"""
from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..evaluation import CUES, evaluate_dataset
from ..model_config import load_model_config, save_model_config
from .common import StageResult, Timer, format_duration
from .config import TrainConfig, config_from_dict
from .dissimilarity import train_dissimilarity
from .ensemble import VoidLabelledFrames

__all__ = ['ABLATION_ROWS', 'AblationResult', 'make_resynthesis_only_dir', 'run_ablation']

ABLATION_ROWS = (
    ('softmax entropy', 'full', 'entropy'),
    ('softmax distance', 'full', 'softmax_distance'),
    ('perceptual difference', 'full', 'perceptual_difference'),
    ('re-synthesis only (no uncertainty inputs, data generator source A only)', 'resynthesis_only', 'dissimilarity'),
    ('dissimilarity without ensemble', 'full', 'dissimilarity'),
    ('full framework (ensemble)', 'full', 'anomaly'),
)
_COPIED_STAGES = ('segmentation', 'synthesis', 'perceptual')


@dataclass
class AblationResult:
    rows: list[dict[str, Any]]
    dataset: str
    frames: int
    seconds: float
    training: StageResult | None

    def markdown(self) -> str:
        lines = [f'Ablation on {self.dataset} ({self.frames} frames); metrics in %.', '',
                 '| method | AP ↑ | FPR95 ↓ | AUROC ↑ |', '|---|---:|---:|---:|']
        for row in self.rows:
            lines.append(f'| {row["method"]} | {_pct(row["ap"])} | {_pct(row["fpr95"])} | {_pct(row["auroc"])} |')
        return '\n'.join(lines) + '\n'


def _pct(value: float | None) -> str:
    return 'n/a' if value is None or value != value else f'{100 * value:.2f}'


def training_config_of(model_dir: Path) -> TrainConfig:
    """The training configuration a model directory was made with (``provenance.config``)."""
    model = load_model_config(model_dir)
    data = model.provenance.get('config')
    if not isinstance(data, dict):
        raise ModelError(f'{model_dir / "model.yaml"} records no training configuration (provenance.config); '
                         'the ablation retrains with the model\'s settings, so use a directory made by `train all`')
    return config_from_dict(data)


def make_resynthesis_only_dir(full_dir: Path, target: Path) -> None:
    """``target``: the full model's segmentation/synthesis/perceptual files and a model.yaml whose
    dissimilarity network has no uncertainty encoder (torch files only)."""
    model = load_model_config(full_dir)
    target.mkdir(parents=True, exist_ok=True)
    for stage in model.stages:
        files = {'torch': model.stage(stage).files.get('torch', f'{stage}.pt')}
        if stage in _COPIED_STAGES:
            shutil.copy2(full_dir / files['torch'], target / files['torch'])
        model = model.with_stage(stage, files=files)
    arch = dict(model.stage('dissimilarity').architecture)
    arch['use_uncertainty'] = False
    model = model.with_stage('dissimilarity', architecture=arch)
    provenance = copy.deepcopy(dict(model.provenance))
    provenance['ablation'] = {'variant': 'resynthesis_only', 'from': str(full_dir)}
    provenance.get('stages', {}).pop('dissimilarity', None)
    provenance.get('stages', {}).pop('ensemble', None)
    save_model_config(replace(model, provenance=provenance, ensemble_weights=(1.0, 0.0, 0.0, 0.0)), target)


def run_ablation(models: str | Path, dataset: str, root: str | Path, out_dir: str | Path, split: str | None = None,
                 resume: bool = False, backend: str = 'torch', device: str | None = None, limit: int | None = None,
                 cache_dir: str | None = None, epochs: int | None = None, show_progress: bool = True,
                 log: Callable[[str], None] = print) -> AblationResult:
    """Train the re-synthesis-only network (unless already trained) and evaluate every ablation row."""
    from ..data import SYNTHETIC_ANOMALY_SPLIT, open_dataset_for_model
    from ..pipeline import AnomalyPipeline
    timer = Timer()
    models, out_dir = Path(models), Path(out_dir)
    if split is None and dataset == 'synthetic':
        split = SYNTHETIC_ANOMALY_SPLIT
    config = training_config_of(models)
    dissimilarity = replace(config.dissimilarity, use_uncertainty=False,
                            generator=replace(config.dissimilarity.generator, sources=['A']),
                            cache_dir=cache_dir or config.dissimilarity.cache_dir,
                            epochs=epochs if epochs is not None else config.dissimilarity.epochs)
    config = replace(config, dissimilarity=dissimilarity)
    ablation_dir = out_dir / 'resynthesis_only'
    training = None
    done = (ablation_dir / 'dissimilarity.pt').is_file() and \
        'dissimilarity' in (load_model_config(ablation_dir).provenance.get('stages') or {})
    if not done or resume:
        if not (ablation_dir / 'model.yaml').is_file():
            make_resynthesis_only_dir(models, ablation_dir)
        training = train_dissimilarity(config, ablation_dir, out_dir / 'training', resume=resume,
                                       show_progress=show_progress, log=log)
        log(training.summary())
    # A segmentation set (CamVid, Cityscapes) is scored with its void objects as the anomalies.
    test = VoidLabelledFrames(open_dataset_for_model(dataset, Path(root), split, load_model_config(models).label_set))
    name = f'{dataset} {split}' if split else dataset
    with AnomalyPipeline.from_model_dir(models, backend=backend, device=device) as pipeline:
        full = evaluate_dataset(pipeline, test, limit=limit, cues=CUES, semantic=False, num_examples=0,
                                progress=show_progress, name=f'{name} (full model)')
    with AnomalyPipeline.from_model_dir(ablation_dir, backend='torch', device=device) as pipeline:
        ablation = evaluate_dataset(pipeline, test, limit=limit, cues=('dissimilarity',), semantic=False,
                                    num_examples=0, progress=show_progress, name=f'{name} (re-synthesis only)')
    reports = {'full': full.metrics, 'resynthesis_only': ablation.metrics}
    rows = [{'method': method, 'model': which, 'cue': cue,
             **{k: reports[which][cue].to_dict()[k] for k in ('ap', 'fpr95', 'auroc')}}
            for method, which, cue in ABLATION_ROWS]
    result = AblationResult(rows, name, full.num_frames, timer.elapsed, training)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / 'ablation.md').write_text(result.markdown())
    (out_dir / 'ablation.json').write_text(json.dumps({
        'dataset': name, 'frames': full.num_frames, 'models': str(models), 'resynthesis_only': str(ablation_dir),
        'backend': backend, 'rows': rows,
        'ensemble_weights': list(load_model_config(models).ensemble_weights)}, indent=2) + '\n')
    log(f'ablation: {len(rows)} rows on {name} in {format_duration(timer.elapsed)} -> {out_dir / "ablation.md"}')
    return result
