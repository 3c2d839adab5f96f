"""ONNX export of a model directory: one graph per stage, checked against PyTorch on frames.

``export_model(models, out)`` writes ``<stage>.onnx`` for the four stages of :mod:`..stages` (opset 17,
static shapes from ``model.yaml``, tensor names exactly :data:`.stages.STAGES`; TorchScript exporter
with constant folding, then ONNX Runtime's basic offline folding of the remaining shape arithmetic;
every file passes ``onnx.checker`` with full shape inference), optionally ``<stage>.fp16.onnx``
(:mod:`.fp16`), copies the ``<stage>.pt`` files so the directory still loads with the torch
backend, and writes ``model.yaml`` listing every file, with the parity figures under
``provenance.export``.

Parity, enforced: every stage is run by PyTorch and by ONNX Runtime (CPU) on the same inputs, frame by
frame (each stage fed PyTorch's outputs of the stages before it). Float outputs must agree within
``tolerance`` (1e-4, max abs diff) and the semantic argmax on at least ``min_agreement`` (99.9%) of
pixels; otherwise :class:`ParityError` (the CLI exits non-zero). The FP16 graphs are compared with the
FP32 ones and reported (not enforced: FP16 is expected to differ).
"""
from __future__ import annotations

import datetime
import logging
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import torch

from ..errors import DatasetError, ModelError
from ..imaging import prepare_image
from ..model_config import METADATA_FILE, ModelConfig, load_model_config, save_model_config
from ..runtime.onnxruntime_backend import OnnxRuntimeBackend
from ..runtime.stage_files import ONNX_FP16
from ..stage_modules import load_stage_modules
from ..stages import STAGE_ORDER, StageSpec, stage_specs
from .fp16 import convert_to_fp16

__all__ = [
    'OPSET',
    'ExportReport',
    'ParityError',
    'StageComparison',
    'compare_stages',
    'export_model',
    'export_stage',
    'store_exact_float16_weights',
    'load_frames',
    'reference_outputs',
    'synthetic_frames',
]

_LOG = logging.getLogger(__name__)
OPSET = 17
_IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.ppm')


class ParityError(ModelError):
    """The exported graphs do not reproduce PyTorch within the tolerances."""


@dataclass
class StageComparison:
    """Differences between two runs of one stage over all frames.

    ``max_abs`` / ``mean_abs``: per float output, over every pixel of every frame.
    ``semantic_agreement``: fraction of equal argmax labels (segmentation only).
    """

    stage: str
    max_abs: dict[str, float] = field(default_factory=dict)
    mean_abs: dict[str, float] = field(default_factory=dict)
    semantic_agreement: float | None = None

    def violations(self, tolerance: float, min_agreement: float) -> list[str]:
        found = [f'{self.stage}.{name}: max abs diff {value:.3g} > {tolerance:g}'
                 for name, value in self.max_abs.items() if not value <= tolerance]
        if self.semantic_agreement is not None and not self.semantic_agreement >= min_agreement:
            found.append(f'{self.stage}.semantic: argmax agreement {self.semantic_agreement:.4%} < {min_agreement:.1%}')
        return found

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {'max_abs_diff': {k: float(f'{v:.3g}') for k, v in self.max_abs.items()},
                                'mean_abs_diff': {k: float(f'{v:.3g}') for k, v in self.mean_abs.items()}}
        if self.semantic_agreement is not None:
            data['semantic_agreement'] = round(float(self.semantic_agreement), 6)
        return data


@dataclass
class ExportReport:
    out_dir: Path
    config: ModelConfig
    parity: list[StageComparison]
    fp16: list[StageComparison] | None = None
    frames: int = 0

    def lines(self) -> list[str]:
        rows = [f'{len(self.parity)} stages exported to {self.out_dir}; parity ONNX Runtime vs PyTorch on '
                f'{self.frames} frames:']
        for label, comparisons in (('fp32', self.parity), ('fp16 vs fp32', self.fp16 or [])):
            for c in comparisons:
                diffs = ', '.join(f'{k} max {c.max_abs[k]:.2g} mean {c.mean_abs[k]:.2g}' for k in c.max_abs)
                agree = '' if c.semantic_agreement is None else f'; semantic agreement {c.semantic_agreement:.4%}'
                rows.append(f'  [{label}] {c.stage}: {diffs}{agree}')
        return rows


# -- frames -------------------------------------------------------------------------------------------
def load_frames(directory: str | Path, limit: int = 8) -> list[np.ndarray]:
    """Up to ``limit`` HxWx3 uint8 RGB images from ``directory`` (recursively, sorted by path)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DatasetError(f'frames directory {directory} does not exist; pass a folder of camera images')
    paths = sorted(p for p in directory.rglob('*') if p.suffix.lower() in _IMAGE_SUFFIXES)
    frames = []
    for path in paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        if len(frames) >= limit:
            break
    if not frames:
        raise DatasetError(f'no readable images ({", ".join(_IMAGE_SUFFIXES)}) in {directory}')
    return frames


def synthetic_frames(count: int = 4, size: tuple[int, int] = (240, 320), seed: int = 0) -> list[np.ndarray]:
    """Deterministic road-like test frames (sky, road, blocks, noise) when no camera frames are given."""
    rng = np.random.default_rng(seed)
    height, width = size
    frames = []
    for _ in range(count):
        frame = np.zeros((height, width, 3), np.float32)
        horizon = int(height * rng.uniform(0.35, 0.55))
        frame[:horizon] = rng.uniform(0.5, 1.0, 3) * np.linspace(1.0, 0.7, horizon)[:, None, None]
        frame[horizon:] = rng.uniform(0.2, 0.5) * np.ones(3)
        for _ in range(6):
            y, x = int(rng.integers(0, height - 10)), int(rng.integers(0, width - 10))
            h, w = int(rng.integers(8, height // 3)), int(rng.integers(8, width // 4))
            frame[y:y + h, x:x + w] = rng.uniform(0, 1, 3)
        frame += rng.normal(0, 0.03, frame.shape)
        frames.append((np.clip(frame, 0, 1) * 255).astype(np.uint8))
    return frames


# -- export -------------------------------------------------------------------------------------------
def _example_inputs(spec: StageSpec, num_classes: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    values = []
    for tensor in spec.inputs:
        if tensor.dtype == 'int32':
            values.append(torch.randint(0, num_classes, tensor.shape, generator=generator, dtype=torch.int32))
        elif tensor.name == 'ensemble_weights':
            values.append(torch.tensor([0.75, 0.25, 0.0, 0.0]))
        else:
            values.append(torch.rand(tensor.shape, generator=generator))
    return tuple(values)


def _fold_with_onnxruntime(source: Path, target: Path) -> bool:
    """ONNX Runtime's basic (provider-independent, standard-op) optimizations, saved as a model."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(target)
    options.log_severity_level = 3
    ort.InferenceSession(str(source), options, providers=['CPUExecutionProvider'])
    folded = onnx.load(str(target))
    domains = {node.domain for node in folded.graph.node} - {'', 'ai.onnx'}
    if domains:
        _LOG.warning('onnxruntime folding introduced ops of %s; keeping the unfolded graph', sorted(domains))
        return False
    return True


def export_stage(module: torch.nn.Module, spec: StageSpec, path: str | Path, num_classes: int,
                 stage_doc: str = '') -> onnx.ModelProto:
    """Export one stage module to ``path`` (opset 17, static shapes, the spec's tensor names); checked."""
    path = Path(path)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        raw, folded = Path(tmp) / 'raw.onnx', Path(tmp) / 'folded.onnx'
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # the TorchScript exporter's deprecation and tracer notices
            with torch.inference_mode(False), torch.no_grad():
                torch.onnx.export(module, _example_inputs(spec, num_classes), str(raw), dynamo=False,
                                  opset_version=OPSET, input_names=list(spec.input_names),
                                  output_names=list(spec.output_names), do_constant_folding=True,
                                  export_params=True)
        model = onnx.load(str(folded if _fold_with_onnxruntime(raw, folded) else raw))
    # ONNX Runtime lists all its domains; keep only the ones the graph uses (TensorRT parses the rest).
    used = {node.domain for node in model.graph.node} | {''}
    kept = [onnx.helper.make_opsetid(opset.domain, opset.version) for opset in model.opset_import
            if opset.domain in used]
    model.ClearField('opset_import')
    model.opset_import.extend(kept)
    model.producer_name = 'anomaly_seg_ros'
    model.doc_string = stage_doc or f'anomaly_seg_ros stage {spec.name}'
    del model.metadata_props[:]
    for key, value in (('stage', spec.name), ('inputs', ', '.join(spec.input_names)),
                       ('outputs', ', '.join(spec.output_names)), ('num_classes', str(int(num_classes)))):
        model.metadata_props.add(key=key, value=value)
    _check_onnx(model, spec, path)
    compact = onnx.ModelProto()
    compact.CopyFrom(model)
    store_exact_float16_weights(compact)
    _check_onnx(compact, spec, path)
    onnx.save(compact, str(path))
    return model


def store_exact_float16_weights(model: onnx.ModelProto, min_elements: int = 256) -> int:
    """Store float32 initializers whose values are all exact in float16 as float16, each followed by a Cast
    back to float32; returns how many. Lossless: the values are the same, ONNX Runtime and TensorRT fold the
    Cast when they load the graph, and the file shrinks (weights trained or stored in float16 are half the
    size). Applied to the saved FP32 graphs only (the FP16 conversion starts from the plain graph)."""
    from onnx import TensorProto, helper, numpy_helper

    casts = []
    for initializer in model.graph.initializer:
        if initializer.data_type != TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(initializer)
        half = values.astype(np.float16)
        if values.size < min_elements or not np.array_equal(half.astype(np.float32), values):
            continue
        name = initializer.name
        initializer.CopyFrom(numpy_helper.from_array(half, f'{name}__float16'))
        casts.append(helper.make_node('Cast', [f'{name}__float16'], [name], to=TensorProto.FLOAT,
                                      name=f'{name}__to_float32'))
    if casts:  # before every consumer: the graph stays topologically sorted
        nodes = list(model.graph.node)
        del model.graph.node[:]
        model.graph.node.extend([*casts, *nodes])
    return len(casts)


def _check_onnx(model: onnx.ModelProto, spec: StageSpec, path: Path) -> None:
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ModelError(f'{path}: the exported graph fails the ONNX checker: {exc}') from exc
    names = ([i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}],
             [o.name for o in model.graph.output])
    if tuple(names[0]) != spec.input_names or tuple(names[1]) != spec.output_names:
        raise ModelError(f'{path}: exported tensor names {names} differ from the contract '
                         f'{spec.input_names} -> {spec.output_names}')


# -- parity -------------------------------------------------------------------------------------------
def reference_outputs(modules: dict[str, torch.nn.Module], specs: dict[str, StageSpec], image: np.ndarray,
                      weights: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of the four stages run by PyTorch on one prepared image (1, 3, Hs, Ws) in [0, 1]."""
    values = {'image': torch.from_numpy(image), 'ensemble_weights': torch.from_numpy(weights)}
    with torch.inference_mode():
        for stage in STAGE_ORDER:
            outputs = modules[stage](*(values[name] for name in specs[stage].input_names))
            values.update(zip(specs[stage].output_names, outputs))
    return {name: value.numpy() for name, value in values.items()}


def compare_stages(reference: Sequence[dict[str, np.ndarray]], backend: Any,
                   specs: dict[str, StageSpec]) -> list[StageComparison]:
    """Run every stage of ``backend`` on each frame's ``reference`` inputs and compare with its outputs."""
    results = []
    for stage in STAGE_ORDER:
        spec = specs[stage]
        comparison = StageComparison(stage)
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        equal = total = 0
        for values in reference:
            outputs = backend.run(stage, {name: values[name] for name in spec.input_names})
            for name in spec.output_names:
                got, want = backend.download(outputs[name]), values[name]
                if name == 'semantic':
                    equal += int(np.count_nonzero(got == want))
                    total += want.size
                    continue
                diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
                comparison.max_abs[name] = max(comparison.max_abs.get(name, 0.0), float(diff.max()))
                sums[name] = sums.get(name, 0.0) + float(diff.sum())
                counts[name] = counts.get(name, 0) + diff.size
        comparison.mean_abs = {name: sums[name] / counts[name] for name in sums}
        if total:
            comparison.semantic_agreement = equal / total
        results.append(comparison)
    return results


# -- the whole directory --------------------------------------------------------------------------------
def export_model(models_dir: str | Path, out_dir: str | Path, *, fp16: bool = False,
                 frames: Sequence[np.ndarray] | None = None, tolerance: float = 1e-4,
                 min_agreement: float = 0.999) -> ExportReport:
    """Export ``models_dir`` (``model.yaml`` + ``<stage>.pt``) to ``out_dir`` (see the module docstring).

    Raises:
        ModelError: unreadable model directory or a graph failing the checker.
        ParityError: ONNX Runtime does not reproduce PyTorch within the tolerances (the files stay in
            ``out_dir`` for inspection, with ``model.yaml`` written).
    """
    models_dir, out_dir = Path(models_dir), Path(out_dir)
    config = load_model_config(models_dir)
    modules = load_stage_modules(models_dir, config, 'cpu')
    specs = stage_specs(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    num_classes = config.label_set.num_classes
    new_config = replace(config, tensorrt=None)
    for stage in STAGE_ORDER:
        files = {k: v for k, v in config.stage(stage).files.items() if k not in ('tensorrt', ONNX_FP16)}
        source_pt = models_dir / files.get('torch', f'{stage}.pt')
        if out_dir.resolve() != models_dir.resolve():
            shutil.copy2(source_pt, out_dir / source_pt.name)
        files['torch'] = source_pt.name
        files['onnx'] = f'{stage}.onnx'
        model = export_stage(modules[stage], specs[stage], out_dir / files['onnx'], num_classes)
        if fp16:
            files[ONNX_FP16] = f'{stage}.fp16.onnx'
            half = convert_to_fp16(model)
            _check_onnx(half, specs[stage], out_dir / files[ONNX_FP16])
            onnx.save(half, str(out_dir / files[ONNX_FP16]))
        new_config = new_config.with_stage(stage, files=files)
        _LOG.info('exported %s', out_dir / files['onnx'])

    frames = list(frames) if frames is not None else synthetic_frames()
    weights = np.asarray(config.ensemble_weights, np.float32)
    seg_size = config.stage('segmentation').input_size
    reference = [reference_outputs(modules, specs, prepare_image(frame, seg_size), weights) for frame in frames]
    with OnnxRuntimeBackend(out_dir, new_config, 'cpu') as backend:
        parity = compare_stages(reference, backend, specs)
    fp16_report = None
    if fp16:
        with OnnxRuntimeBackend(out_dir, new_config, 'cpu', precision='fp16') as half_backend:
            fp16_report = compare_stages(reference, half_backend, specs)
    provenance = dict(config.provenance)
    provenance['export'] = {
        'opset': OPSET, 'torch': str(torch.__version__), 'onnx': str(onnx.__version__), 'fp16': fp16,
        'frames': len(frames),
        'exported_at': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'tolerance': tolerance, 'min_semantic_agreement': min_agreement,
        'parity': {c.stage: c.to_dict() for c in parity},
        **({'fp16_vs_fp32': {c.stage: c.to_dict() for c in fp16_report}} if fp16_report else {}),
    }
    new_config = replace(new_config, provenance=provenance)
    save_model_config(new_config, out_dir)
    report = ExportReport(out_dir, new_config, parity, fp16_report, len(frames))
    problems = [p for c in parity for p in c.violations(tolerance, min_agreement)]
    if problems:
        raise ParityError(f'the ONNX export in {out_dir} does not reproduce PyTorch: {"; ".join(problems)} '
                          f'(see {out_dir / METADATA_FILE} provenance.export); do not deploy it')
    return report

