"""INT8 models: calibrated Q/DQ graphs for ONNX Runtime on CPUs and TensorRT, checked against FP32.

``quantize_model(model_dir, calibration, validation)`` works on an exported model directory:

1. Calibration inputs: the FP32 pipeline (ONNX Runtime) runs on ``calibration_frames`` frames of a
   *training* split; every stage's inputs are recorded, so each stage is calibrated on what the stages
   before it really produce.
2. Static quantization per stage (``onnxruntime.quantization.quantize_static``), QDQ format, INT8
   weights per output channel, in two variants from the same calibration: ``<stage>.int8.onnx`` with
   uint8 activations (asymmetric), what ONNX Runtime's x86 integer kernels run fastest, and
   ``<stage>.int8-tensorrt.onnx`` with symmetric int8 activations (zero point 0), which TensorRT requires
   (measured here on the default model: the symmetric graphs ran 0.6x to 1.25x FP32 on ONNX Runtime, the
   uint8 ones 1.45x to 2x, the segmentation excepted).
3. A stage whose ONNX Runtime INT8 graph is not at least ``min_speedup`` (1.1x) faster than its FP32 one
   on this CPU stays FP32: a smaller gain is within the measurement's noise and not worth a second file
   (ESPNetv2, 85% grouped convolutions, runs slower in INT8 on ONNX Runtime). The choice is this CPU's:
   ``provenance.int8.cpu`` names it (:func:`~anomaly_seg_ros.benchmark.machine.cpu_description`), since
   INT8 gains differ between CPUs with and without VNNI (AVX-512 VNNI, AVX-VNNI, AMX) integer dot products.
   The activation calibration method is chosen on the validation frames among ``methods`` (the one that
   loses the least anomaly AP against FP32). A stage whose quantization costs more than the margins is kept
   in FP32 (greedy: the costliest stage first); ``model.yaml`` says which stages are INT8 and why the others are not.
4. The accuracy check: anomaly AP / FPR95 of the ensemble map (void objects of a segmentation split as the
   anomalies) and the mIoU of the INT8 semantic map against the FP32 one, on the validation frames. A
   model outside :class:`Int8Margins` is refused (:class:`QuantizationError`) unless ``force``.

Writes the INT8 graphs beside the float ones and records, in ``model.yaml``, the ``onnx_int8`` and
``onnx_int8_tensorrt`` files and ``provenance.int8`` (precision per stage, calibration data and method,
the check's figures, the CPU the stages were chosen on and their speed there).
Evaluation sets (CamVid test, Road Anomaly) must not be used here: the caller passes training and
validation splits.
"""
from __future__ import annotations

import dataclasses
import datetime
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ..benchmark.machine import cpu_description
from ..errors import AnomalySegError
from ..imaging import prepare_image
from ..model_config import ModelConfig, load_model_config, save_model_config
from ..pipeline import AnomalyPipeline
from ..runtime.onnxruntime_backend import OnnxRuntimeBackend
from ..runtime.stage_files import ONNX_INT8, ONNX_INT8_TENSORRT, stage_file
from ..stages import STAGE_ORDER, stage_specs

__all__ = [
    'CALIBRATION_METHODS',
    'AccuracyCheck',
    'Int8Margins',
    'Int8Report',
    'QuantizationError',
    'quantize_model',
    'record_stage_inputs',
]

_LOG = logging.getLogger(__name__)
CALIBRATION_METHODS = ('minmax', 'percentile', 'entropy')


class QuantizationError(AnomalySegError):
    """The INT8 model loses more accuracy than the margins allow (or cannot be made)."""


@dataclass(frozen=True)
class Int8Margins:
    """Largest accepted losses against FP32 on the validation frames: anomaly AP and FPR95 in percentage
    points, and the lowest mIoU (percent) of the INT8 semantic map measured against the FP32 one."""

    ap_drop: float = 1.0
    fpr95_rise: float = 2.0
    min_semantic_miou: float = 90.0


@dataclass
class AccuracyCheck:
    """INT8 (or a candidate) against FP32 on the validation frames; AP/FPR95/AUROC in percent."""

    fp32: dict[str, float]
    int8: dict[str, float]
    semantic_miou: float

    @property
    def ap_drop(self) -> float:
        return self.fp32['ap'] - self.int8['ap']

    @property
    def fpr95_rise(self) -> float:
        return self.int8['fpr95'] - self.fp32['fpr95']

    def violations(self, margins: Int8Margins) -> list[str]:
        problems = []
        if self.ap_drop > margins.ap_drop:
            problems.append(f'anomaly AP {self.int8["ap"]:.2f} vs {self.fp32["ap"]:.2f} (drop {self.ap_drop:.2f} > '
                            f'{margins.ap_drop:g})')
        if self.fpr95_rise > margins.fpr95_rise:
            problems.append(f'FPR95 {self.int8["fpr95"]:.2f} vs {self.fp32["fpr95"]:.2f} (rise {self.fpr95_rise:.2f} '
                            f'> {margins.fpr95_rise:g})')
        if self.semantic_miou < margins.min_semantic_miou:
            problems.append(f'semantic mIoU against FP32 {self.semantic_miou:.2f} < {margins.min_semantic_miou:g}')
        return problems

    def to_dict(self) -> dict[str, Any]:
        return {'fp32': dict(self.fp32), 'int8': dict(self.int8), 'semantic_miou_vs_fp32': round(self.semantic_miou, 2),
                'ap_drop': round(self.ap_drop, 2), 'fpr95_rise': round(self.fpr95_rise, 2)}


@dataclass
class Int8Report:
    model_dir: Path
    method: str
    stages: dict[str, str]  # stage -> 'int8' | 'fp32'
    check: AccuracyCheck
    margins: Int8Margins
    trials: list[dict[str, Any]] = field(default_factory=list)
    tensorrt_check: AccuracyCheck | None = None
    kept_in_fp32: dict[str, str] = field(default_factory=dict)
    tensorrt_written: bool = False
    cpu: str = ''  # the CPU the stages were chosen on (by their speed there)

    def lines(self) -> list[str]:
        check = self.check
        return [
            f'INT8 model in {self.model_dir}: calibration {self.method}; stages '
            + ', '.join(f'{stage} {precision}' for stage, precision in self.stages.items()),
            f'stages chosen by their speed on {self.cpu or "this CPU"}; on a CPU without VNNI (AVX-512 VNNI, '
            'AVX-VNNI, AMX) the INT8 gains differ: `anomaly_seg bench --precision fp32,int8` measures yours',
            f'validation: anomaly AP {check.int8["ap"]:.2f} (FP32 {check.fp32["ap"]:.2f}), FPR95 '
            f'{check.int8["fpr95"]:.2f} (FP32 {check.fp32["fpr95"]:.2f}), AUROC {check.int8["auroc"]:.2f} '
            f'(FP32 {check.fp32["auroc"]:.2f}); semantic mIoU against FP32 {check.semantic_miou:.2f}%',
            *(f'{stage} kept in FP32: {why}' for stage, why in self.kept_in_fp32.items()),
            *([f'TensorRT variant (checked on ONNX Runtime): AP {self.tensorrt_check.int8["ap"]:.2f}, FPR95 '
               f'{self.tensorrt_check.int8["fpr95"]:.2f}, semantic mIoU {self.tensorrt_check.semantic_miou:.2f}%'
               + ('' if self.tensorrt_written else ': outside the margins, not written (no INT8 engines)')]
              if self.tensorrt_check else []),
        ]


# -- calibration inputs ----------------------------------------------------------------------------------
def record_stage_inputs(model_dir: str | Path, config: ModelConfig, frames: Sequence[np.ndarray],
                        progress: Callable[[str], None] | None = None) -> dict[str, list[dict[str, np.ndarray]]]:
    """Every stage's inputs when the FP32 graphs (ONNX Runtime, CPU) run on ``frames`` (HxWx3 uint8 RGB)."""
    specs = stage_specs(config)
    weights = np.asarray(config.ensemble_weights, np.float32)
    size = config.stage('segmentation').input_size
    recorded: dict[str, list[dict[str, np.ndarray]]] = {stage: [] for stage in STAGE_ORDER}
    with OnnxRuntimeBackend(model_dir, config, 'cpu') as backend:
        for index, frame in enumerate(frames):
            values: dict[str, np.ndarray] = {'image': prepare_image(frame, size), 'ensemble_weights': weights}
            for stage in STAGE_ORDER:
                inputs = {name: values[name] for name in specs[stage].input_names}
                recorded[stage].append(inputs)
                outputs = backend.run(stage, inputs)
                values.update({name: backend.download(value) for name, value in outputs.items()})
            if progress and (index + 1) % 8 == 0:
                progress(f'calibration inputs: {index + 1}/{len(frames)} frames')
    return recorded


class _Inputs:
    """onnxruntime's CalibrationDataReader over recorded inputs (``get_next`` until None)."""

    def __init__(self, inputs: Sequence[Mapping[str, np.ndarray]]) -> None:
        self._iterator: Iterator[Mapping[str, np.ndarray]] = iter(inputs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        item = next(self._iterator, None)
        return None if item is None else dict(item)


def _prepare(source: Path, target: Path) -> None:
    """Shape inference and ONNX Runtime's own folding, as onnxruntime recommends before static quantization."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(source), str(target), skip_symbolic_shape=True)


def _quantize_stage(source: Path, prepared: Path, target: Path, inputs: Sequence[Mapping[str, np.ndarray]],
                    method: str, symmetric: bool) -> None:
    """Quantize ``prepared`` (:func:`_prepare` of the FP32 graph ``source``) into ``target``. ``symmetric``: int8
    activations with zero point 0 (TensorRT); else uint8 (ONNX Runtime on x86)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    methods = {'minmax': CalibrationMethod.MinMax, 'percentile': CalibrationMethod.Percentile,
               'entropy': CalibrationMethod.Entropy}
    # The quantizer warns on the root logger for every rank-1 normalization constant it cannot quantize
    # per channel (hundreds of lines, expected: they stay per tensor).
    logging.disable(logging.WARNING)
    try:
        quantize_static(str(prepared), str(target), _Inputs(inputs), quant_format=QuantFormat.QDQ,
                        per_channel=True, weight_type=QuantType.QInt8,
                        activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
                        calibrate_method=methods[method],
                        extra_options={'ActivationSymmetric': symmetric, 'WeightSymmetric': True})
    finally:
        logging.disable(logging.NOTSET)
    # Keep the graph's metadata (num_classes, ...): the backends check it against model.yaml.
    original, quantized = onnx.load(str(source), load_external_data=False), onnx.load(str(target))
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(original.metadata_props)
    onnx.save(quantized, str(target))


# -- the accuracy check ----------------------------------------------------------------------------------
@dataclass
class _Validation:
    images: list[np.ndarray]
    labels: list[np.ndarray]  # anomaly labels 0/1/255 at frame size
    fp32_anomaly: list[np.ndarray]
    fp32_semantic: list[np.ndarray]
    fp32_metrics: dict[str, float]


def _metrics(scores: Sequence[np.ndarray], labels: Sequence[np.ndarray]) -> dict[str, float]:
    from ..evaluation.metrics import anomaly_metrics

    result = anomaly_metrics(list(scores), list(labels))
    return {key: round(100.0 * float(result[key]), 2) for key in ('ap', 'fpr95', 'auroc')}


def _run(model_dir: Path, config: ModelConfig, images: Sequence[np.ndarray],
         precision: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    backend = OnnxRuntimeBackend(model_dir, config, 'cpu', precision=precision)
    anomaly, semantic = [], []
    with AnomalyPipeline(config, backend) as pipeline:
        for image in images:
            result = pipeline.process(image, ('anomaly', 'semantic'))
            anomaly.append(result.anomaly)
            semantic.append(result.semantic)
    return anomaly, semantic


def _validation(model_dir: Path, config: ModelConfig, dataset: Any, frames: int) -> _Validation:
    from ..training.ensemble import VoidLabelledFrames

    labelled = VoidLabelledFrames(dataset)
    count = min(frames, len(labelled))
    picks = np.linspace(0, len(labelled) - 1, count).round().astype(int) if count else []
    samples = [labelled[int(i)] for i in picks]  # spread over the split, not its first scenes
    images = [s.image for s in samples]
    labels = [s.anomaly for s in samples]
    anomaly, semantic = _run(model_dir, config, images, 'fp32')
    return _Validation(images, labels, anomaly, semantic, _metrics(anomaly, labels))


def _check(model_dir: Path, config: ModelConfig, validation: _Validation) -> AccuracyCheck:
    from ..evaluation.semantic import semantic_metrics

    anomaly, semantic = _run(model_dir, config, validation.images, 'int8')
    agreement = semantic_metrics(semantic, validation.fp32_semantic, config.label_set.num_classes)
    return AccuracyCheck(validation.fp32_metrics, _metrics(anomaly, validation.labels),
                         round(100.0 * float(agreement.miou), 2))


def _with_int8(config: ModelConfig, files: Mapping[str, str], tensorrt_files: Mapping[str, str] | None = None
               ) -> ModelConfig:
    """``config`` whose stages in ``files`` use that INT8 graph (``tensorrt_files``: that TensorRT variant)
    and the others their FP32 one."""
    for stage in STAGE_ORDER:
        stage_files = {k: v for k, v in config.stage(stage).files.items() if k not in (ONNX_INT8, ONNX_INT8_TENSORRT)}
        if stage in files:
            stage_files[ONNX_INT8] = files[stage]
        if tensorrt_files and stage in tensorrt_files:
            stage_files[ONNX_INT8_TENSORRT] = tensorrt_files[stage]
        config = config.with_stage(stage, files=stage_files)
    return config


def _stage_speed(source: Path, quantized: Path, inputs: Mapping[str, np.ndarray], runs: int = 7) -> tuple[float, float]:
    """Median ms of the FP32 and the INT8 graph on one input, interleaved run by run (a fair ratio on a
    loaded machine)."""
    import time

    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    sessions = [ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])
                for path in (source, quantized)]
    feeds = dict(inputs)
    times: list[list[float]] = [[], []]
    for run in range(runs + 1):
        for index, session in enumerate(sessions):
            start = time.perf_counter()
            session.run(None, feeds)
            if run:  # the first run of each is a warm-up
                times[index].append((time.perf_counter() - start) * 1e3)
    return float(np.median(times[0])), float(np.median(times[1]))


# -- the whole model -------------------------------------------------------------------------------------
def quantize_model(model_dir: str | Path, calibration_frames: Sequence[np.ndarray], validation_set: Any, *,
                   calibration_source: Mapping[str, Any], validation_source: Mapping[str, Any],
                   validation_frames: int = 50, methods: Sequence[str] = ('minmax', 'percentile'),
                   margins: Int8Margins = Int8Margins(), force: bool = False, min_speedup: float | None = 1.1,
                   command: str | None = None, progress: Callable[[str], None] | None = None) -> Int8Report:
    """Make and check the INT8 graphs of the exported model in ``model_dir`` (see the module docstring).

    Args:
        calibration_frames: training frames (HxWx3 uint8 RGB) to calibrate on.
        validation_set: a segmentation split with void labels (or an anomaly set) to choose and check on.
        calibration_source, validation_source: what the frames are (dataset, root, split, frames), for
            ``model.yaml``.
        min_speedup: keep in FP32 the stages whose ONNX Runtime INT8 graph is not this many times faster than
            FP32 on this CPU (None: quantize every stage the accuracy check allows, e.g. for TensorRT engines).
    Raises:
        QuantizationError: the best INT8 model is outside ``margins`` and ``force`` is False, or no stage
            is faster in INT8 (``model_dir`` is left as it was).
    """
    say = progress or _LOG.info
    model_dir = Path(model_dir)
    config = load_model_config(model_dir)
    unknown = [m for m in methods if m not in CALIBRATION_METHODS]
    if unknown or not methods:
        raise ValueError(f'calibration methods must be among {", ".join(CALIBRATION_METHODS)}, got {methods}')
    config = _with_int8(config, {})  # drop INT8 files of an earlier run from what is loaded
    say(f'recording stage inputs on {len(calibration_frames)} calibration frames ...')
    inputs = record_stage_inputs(model_dir, config, calibration_frames, say)
    say(f'FP32 reference on {validation_frames} validation frames ...')
    validation = _validation(model_dir, config, validation_set, validation_frames)
    work = Path(tempfile.mkdtemp(prefix='int8_', dir=model_dir))
    trials: list[dict[str, Any]] = []
    reasons: dict[str, str] = {}
    speed: dict[str, dict[str, float]] = {}
    cpu = cpu_description()
    say(f'INT8 stage choice by speed on this CPU: {cpu} (on a CPU without VNNI the INT8 gains differ)')
    try:
        prepared: dict[str, Path] = {}  # each stage's graph prepared once, for every method and variant

        def quantize(stages: Sequence[str], method: str, symmetric: bool) -> dict[str, str]:
            files = {}
            for stage in stages:
                say(f'quantizing {stage} ({method}, {"symmetric int8" if symmetric else "uint8"} activations) ...')
                source = stage_file(model_dir, config, stage, 'onnx')
                if stage not in prepared:
                    prepared[stage] = work / f'{stage}.prepared.onnx'
                    _prepare(source, prepared[stage])
                name = f'{work.name}/{stage}.{method}.{"int8-tensorrt" if symmetric else "int8"}.onnx'
                _quantize_stage(source, prepared[stage], model_dir / name, inputs[stage], method, symmetric)
                files[stage] = name
            return files

        first = quantize(STAGE_ORDER, methods[0], symmetric=False)
        for stage in STAGE_ORDER:
            fp32_ms, int8_ms = _stage_speed(stage_file(model_dir, config, stage, 'onnx'), model_dir / first[stage],
                                            inputs[stage][0])
            speed[stage] = {'fp32_ms': round(fp32_ms, 1), 'int8_ms': round(int8_ms, 1)}
            say(f'{stage}: FP32 {fp32_ms:.1f} ms, INT8 {int8_ms:.1f} ms on this CPU')
            if min_speedup is not None and int8_ms * min_speedup > fp32_ms:
                reasons[stage] = (f'INT8 not {min_speedup:g}x faster on ONNX Runtime CPU ({int8_ms:.1f} vs '
                                  f'{fp32_ms:.1f} ms)')
        candidates_stages = [stage for stage in STAGE_ORDER if stage not in reasons]
        if not candidates_stages:
            raise QuantizationError(f'no stage runs {min_speedup:g}x faster in INT8 than in FP32 on this CPU '
                                    f'({speed}); nothing written')
        candidates: dict[str, dict[str, str]] = {}
        checks: dict[str, AccuracyCheck] = {}
        for method in methods:
            files = ({s: first[s] for s in candidates_stages} if method == methods[0]
                     else quantize(candidates_stages, method, symmetric=False))
            candidates[method] = files
            checks[method] = _check(model_dir, _with_int8(config, files), validation)
            trials.append({'method': method, 'int8_stages': list(files), **checks[method].to_dict()})
            say(f'{method}: AP drop {checks[method].ap_drop:.2f}, FPR95 rise {checks[method].fpr95_rise:.2f}, '
                f'semantic mIoU {checks[method].semantic_miou:.2f}')
        method = min(methods, key=lambda m: (checks[m].ap_drop, checks[m].fpr95_rise))
        files, check = dict(candidates[method]), checks[method]
        # Keep the stages that cost the most in FP32, one at a time, until the model is within the margins.
        if check.violations(margins) and len(files) > 1:
            alone = {}
            for stage in files:
                alone[stage] = _check(model_dir, _with_int8(config, {stage: files[stage]}), validation)
                trials.append({'method': method, 'int8_stages': [stage], **alone[stage].to_dict()})
            for stage in sorted(alone, key=lambda s: (alone[s].ap_drop, alone[s].fpr95_rise), reverse=True):
                if not check.violations(margins) or len(files) == 1:
                    break
                files.pop(stage)
                reasons[stage] = (f'INT8 alone cost AP {alone[stage].ap_drop:.2f}, FPR95 {alone[stage].fpr95_rise:.2f} '
                                  'points')
                check = _check(model_dir, _with_int8(config, files), validation)
                trials.append({'method': method, 'int8_stages': list(files), **check.to_dict()})
                say(f'{stage} kept in FP32: AP drop {check.ap_drop:.2f}, FPR95 rise {check.fpr95_rise:.2f}')
        problems = check.violations(margins)
        if problems and not force:
            raise QuantizationError(f'the INT8 model loses too much against FP32 on the validation frames: '
                                    f'{"; ".join(problems)}; nothing written (use --force to write it anyway, '
                                    'or the --int8-max-* options to state other margins)')
        # The TensorRT variant of the same stages, checked the same way (on ONNX Runtime's CPU kernels); its
        # calibration method is chosen on its own (symmetric ranges favour another method at times). Outside the
        # margins it is not written: no INT8 engines rather than INT8 engines that lose accuracy.
        tensorrt_files: dict[str, str] = {}
        tensorrt_check = None
        tensorrt_method = None
        for candidate in sorted(methods, key=lambda m: (checks[m].ap_drop, checks[m].fpr95_rise)):
            variant = quantize(list(files), candidate, symmetric=True)
            variant_check = _check(model_dir, _with_int8(config, variant), validation)
            trials.append({'method': candidate, 'variant': 'tensorrt', 'int8_stages': list(variant),
                           **variant_check.to_dict()})
            say(f'TensorRT variant ({candidate}): AP drop {variant_check.ap_drop:.2f}, FPR95 rise '
                f'{variant_check.fpr95_rise:.2f}, semantic mIoU {variant_check.semantic_miou:.2f}')
            if tensorrt_check is None or (variant_check.ap_drop, variant_check.fpr95_rise) < (
                    tensorrt_check.ap_drop, tensorrt_check.fpr95_rise):
                tensorrt_files, tensorrt_check, tensorrt_method = variant, variant_check, candidate
            if not variant_check.violations(margins):
                tensorrt_files, tensorrt_check, tensorrt_method = variant, variant_check, candidate
                break
        tensorrt_problems = tensorrt_check.violations(margins)
        if tensorrt_problems and not force:
            say(f'TensorRT variant not written, outside the margins: {"; ".join(tensorrt_problems)}')
            tensorrt_files = {}
        final, final_tensorrt = {}, {}
        for stage in STAGE_ORDER:
            variants = ((ONNX_INT8, files, final), (ONNX_INT8_TENSORRT, tensorrt_files, final_tensorrt))
            for fmt, chosen, target in variants:
                path = stage_file(model_dir, _with_int8(config, {}), stage, fmt)
                path.unlink(missing_ok=True)
                if stage in chosen:
                    shutil.move(str(model_dir / chosen[stage]), str(path))
                    target[stage] = path.name
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stages = {stage: 'int8' if stage in final else 'fp32' for stage in STAGE_ORDER}
    provenance = dict(config.provenance)
    provenance['int8'] = {
        **({'command': command} if command else {}),
        'stages': stages,
        'kept_in_fp32': reasons,
        'format': {'onnx_int8': 'QDQ, per-channel symmetric int8 weights, uint8 activations (ONNX Runtime CPU)',
                   'onnx_int8_tensorrt': 'QDQ, per-channel symmetric int8 weights, symmetric int8 activations '
                                         '(TensorRT)'},
        'cpu': cpu,
        'speed_on_export_cpu_ms': speed,
        'calibration': {**dict(calibration_source), 'method': method, 'methods_tried': list(methods)},
        'validation': {**dict(validation_source), 'frames': len(validation.images)},
        'margins': dataclasses.asdict(margins),
        'accuracy': check.to_dict(),
        'tensorrt_variant': {'written': bool(final_tensorrt), 'method': tensorrt_method,
                             'accuracy': tensorrt_check.to_dict(), 'within_margins': not tensorrt_problems},
        'within_margins': not problems,
        'trials': trials,
        'made_at': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
    }
    save_model_config(replace(_with_int8(config, final, final_tensorrt), provenance=provenance), model_dir)
    return Int8Report(model_dir, method, stages, check, margins, trials, tensorrt_check, reasons, bool(final_tensorrt),
                      cpu)
