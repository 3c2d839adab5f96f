"""``MANIFEST.md`` of a trained model directory: how it was made and how good it is, from ``model.yaml``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data.objects import EXCLUDED_CATEGORIES, HELD_OUT_CATEGORIES
from ..model_config import load_model_config
from .common import format_duration

__all__ = ['MANIFEST_FILE', 'write_manifest']

MANIFEST_FILE = 'MANIFEST.md'


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f'{value:.4g}'
    return str(value)


# Where the inputs a training run can take come from, and on what terms (../shared/weights/README.md and
# ../shared/data/README.md of the project's development tree). Keyed by the training configuration's fields.
WEIGHT_SOURCES = {
    'segmentation.pretrained': 'ESPNetv2 Cityscapes weights, sacmehta/EdgeNets @2b232d3 '
                               '(model/segmentation/model_zoo/espnetv2): code MIT; the weights were trained on '
                               'Cityscapes, whose terms allow non-commercial use only',
    'squeezenet_weights': 'SqueezeNet v1.1 ImageNet features, DeepCognition/keras-squeezenet @a73d433: MIT',
    'lpips_weights': 'LPIPS v0.1 SqueezeNet heads, richzhang/PerceptualSimilarity @082bb24: BSD-2-Clause',
    'vgg19_weights': 'torchvision VGG19 ImageNet weights: BSD-3-Clause (torchvision)',
}
OBJECT_TERMS = ('COCO 2017 object cutouts: masks from the COCO annotations (CC BY 4.0, COCO Consortium); the '
                'pixels keep each photo\'s Flickr licence, listed per cutout in the folder\'s manifest.json '
                '(Attribution, Attribution-ShareAlike, Attribution-NonCommercial(-ShareAlike): some non-commercial, '
                'all need attribution); the cutouts are not shipped, only a model trained with them')
DATASET_TERMS = {
    'camvid': 'CamVid (SegNet split): research use; the SegNet tutorial repository that carries it is CC BY-NC 4.0',
    'cityscapes': 'Cityscapes: non-commercial use under the Cityscapes terms',
    'synthetic': "the project's own generated scenes: no third-party terms",
}


def sources_section(config: dict[str, Any]) -> list[str]:
    """Markdown lines naming the weights and data a run used, with their licences."""
    def lookup(key: str) -> Any:
        value: Any = config
        for part in key.split('.'):
            value = value.get(part) if isinstance(value, dict) else None
        return value
    lines = ['## Sources and licences', '']
    for key, source in WEIGHT_SOURCES.items():
        if lookup(key):
            lines.append(f'- `{lookup(key)}` ({key}): {source}')
    dataset = lookup('data.dataset')
    if dataset:
        terms = DATASET_TERMS.get(dataset, "see the dataset's own terms")
        lines.append(f'- training data `{dataset}`: {terms}')
    generator = lookup('dissimilarity.generator') or {}
    if generator.get('objects') and 'C' in [str(x).upper() for x in generator.get('sources') or []]:
        lines.append(f'- pasted objects `{generator["objects"]}` (data generator source C): {OBJECT_TERMS}')
        lines.append(f'  - category split: held out for validation only {list(HELD_OUT_CATEGORIES)}; left out of both '
                     f'{list(EXCLUDED_CATEGORIES)}; every other category pasted into training frames')
    lines += ['- the model files inherit the most restrictive of these terms', '']
    return lines


def int8_section(int8: dict[str, Any]) -> list[str]:
    """Markdown lines for ``export --int8``'s record: which stages are INT8, why the others are not, the check."""
    if not int8:
        return []
    stages = int8.get('stages') or {}
    accuracy = int8.get('accuracy') or {}
    fp32, quantized = accuracy.get('fp32') or {}, accuracy.get('int8') or {}
    validation = int8.get('validation') or {}
    lines = ['', '## INT8', '', '```', str(int8.get('command', '?')), '```', '',
             '- INT8 stages: ' + (', '.join(s for s, p in stages.items() if p == 'int8') or 'none')
             + f' (calibration {(int8.get("calibration") or {}).get("method", "?")}, chosen on {int8.get("cpu", "?")})']
    lines += [f'- {stage} kept in FP32: {why}' for stage, why in (int8.get('kept_in_fp32') or {}).items()]
    if fp32 and quantized:
        lines.append(f'- check on {validation.get("frames", "?")} frames of `{validation.get("root", "?")}`: '
                     f'AP {quantized.get("ap")} (FP32 {fp32.get("ap")}), FPR95 {quantized.get("fpr95")} '
                     f'(FP32 {fp32.get("fpr95")}), semantic mIoU against FP32 {accuracy.get("semantic_miou_vs_fp32")}%')
    variant = int8.get('tensorrt_variant') or {}
    if variant:
        lines.append('- TensorRT variant: ' + ('written' if variant.get('written') else 'not written')
                     + f' (calibration {variant.get("method", "?")}, checked on ONNX Runtime)')
    return lines


def write_manifest(model_dir: str | Path, extra: str = '') -> Path:
    """Write ``<model_dir>/MANIFEST.md`` from its ``model.yaml`` provenance; ``extra`` is appended."""
    model_dir = Path(model_dir)
    model = load_model_config(model_dir)
    prov = dict(model.provenance)
    stages = prov.get('stages') or {}
    files = sorted(p for p in model_dir.iterdir() if p.is_file() and p.name != MANIFEST_FILE)
    total = sum(p.stat().st_size for p in files)
    lines = [f'# Model directory `{model_dir.name}`', '',
             'Made by `anomaly_seg train all`; everything below is read from `model.yaml` (provenance).', '',
             '## Reproduce', '', '```', str(prov.get('command', '?')), '```', '',
             f'- seed: {prov.get("seed")}', f'- commit: `{prov.get("commit")}`',
             f'- data: {prov.get("data")}',
             f'- training time: {format_duration(float(prov.get("training_time_s", 0)))}'
             + (f' (wall time of the command {format_duration(float(prov["wall_time_s"]))})'
                if prov.get('wall_time_s') is not None else ' (sum of the stages)'),
             f'- machine: {prov.get("machine")}', f'- .pt weights stored as {prov.get("torch_weights_dtype", "?")}', '',
             '## Validation figures (validation split, never the anomaly test split)', '',
             '| figure | value |', '|---|---:|']
    lines += [f'| {k} | {_fmt(v)} |' for k, v in (prov.get('validation') or {}).items()]
    lines += ['', f'Ensemble weights (dissimilarity, entropy, perceptual difference, softmax distance): '
              f'{[round(w, 4) for w in model.ensemble_weights]}; perceptual scale {model.perceptual_scale:.4g}.', '',
              '## Stages', '', '| stage | input size | architecture | epochs | steps | time | figures |',
              '|---|---|---|---:|---:|---:|---|']
    for name in ('segmentation', 'synthesis', 'perceptual', 'dissimilarity'):
        stage = model.stage(name)
        record = stages.get(name) or {}
        figures = record.get('validation') or {k: record[k] for k in ('scale',) if k in record}
        arch = ', '.join(f'{k}={v}' for k, v in stage.architecture.items() if k not in ('num_classes',))
        time_s = record.get('training_time_s', record.get('time_s'))
        lines.append(f'| {name} | {stage.input_size[0]}x{stage.input_size[1]} | {arch} | {record.get("epochs", "")} | '
                     f'{record.get("steps", "")} | {format_duration(float(time_s)) if time_s is not None else ""} | '
                     + ', '.join(f'{k} {_fmt(v)}' for k, v in figures.items()) + ' |')
    ensemble = stages.get('ensemble') or {}
    if ensemble:
        lines += ['', f'Ensemble grid search: {ensemble.get("candidates")} weight vectors on '
                  f'{(ensemble.get("validation") or {}).get("frames")} validation frames in '
                  f'{ensemble.get("time_s")} s; best 5:', '']
        lines += [f'- {row["weights"]}: FPR95 {row["fpr95"]:.4f}, AP {row["ap"]:.4f}'
                  for row in ensemble.get('top', [])]
    gpu = prov.get('gpu_input_sizes')
    if gpu:
        lines += ['', '## GPU working point', '',
                  'Stage input sizes for a GPU (HxW; the sizes above are the CPU working point; stages not named '
                  'keep theirs): ' + ', '.join(f'{stage} {size[0]}x{size[1]}' for stage, size in gpu.items()) + '.']
    lines += int8_section(prov.get('int8') or {})
    lines += ['', *sources_section(prov.get('config') or {})]
    lines += ['## Files', '', '| file | bytes |', '|---|---:|']
    lines += [f'| {p.name} | {p.stat().st_size:,} |' for p in files]
    lines += [f'| total (without this manifest) | {total:,} |', '']
    if extra:
        lines += [extra.rstrip(), '']
    path = model_dir / MANIFEST_FILE
    path.write_text('\n'.join(lines))
    return path

