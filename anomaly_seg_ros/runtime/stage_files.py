"""Where each stage's file lives in a model directory, and checks of a graph's tensors against the contract.

Shared by the ONNX Runtime and TensorRT backends and by the exporter (numpy and yaml only).

File formats in ``model.yaml``'s ``files`` mapping of a stage: ``torch`` (``<stage>.pt``), ``onnx``
(``<stage>.onnx``, FP32), ``onnx_fp16`` (``<stage>.fp16.onnx``, FP16 inside, FP32/INT32 at its
inputs and outputs), ``onnx_int8`` (``<stage>.int8.onnx``, Q/DQ INT8 inside with uint8 activations,
what ONNX Runtime's CPU kernels run fastest; same inputs and outputs), ``onnx_int8_tensorrt``
(``<stage>.int8-tensorrt.onnx``, the same with symmetric int8 activations, which TensorRT requires) -
both only for the stages ``anomaly_seg export --int8`` quantized, the others run their FP32 graph - and
``tensorrt`` (``<stage>.engine``). A format missing from the mapping falls back to the default file name.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import ModelError
from ..model_config import FILE_FORMATS, ModelConfig
from ..stages import STAGE_ORDER, StageSpec

__all__ = [
    'EXPORT_COMMAND',
    'ONNX_FP16',
    'ONNX_INT8',
    'ONNX_INT8_TENSORRT',
    'TensorInfo',
    'check_graph_io',
    'check_graph_metadata',
    'onnx_files_present',
    'onnx_format',
    'stage_file',
]

ONNX_FP16 = 'onnx_fp16'
ONNX_INT8 = 'onnx_int8'
ONNX_INT8_TENSORRT = 'onnx_int8_tensorrt'
EXPORT_COMMAND = 'anomaly_seg export --models <trained model dir> --out {model_dir}'

# (name, shape, dtype): dims that are None, strings (symbolic) or negative are dynamic.
TensorInfo = tuple[str, Sequence[object], str]


def stage_file(model_dir: str | Path, config: ModelConfig, stage: str, fmt: str) -> Path:
    """Path of ``stage``'s file in format ``fmt`` (see the module docstring)."""
    if fmt not in FILE_FORMATS:
        raise ValueError(f'unknown file format {fmt!r}; formats: {", ".join(FILE_FORMATS)}')
    name = config.stage(stage).files.get(fmt) or f'{stage}{FILE_FORMATS[fmt]}'
    return Path(model_dir) / name


def onnx_format(config: ModelConfig, stage: str, precision: str, tensorrt: bool = False) -> str:
    """The ONNX file format ``stage`` runs in at ``precision``: fp32 ``onnx``, fp16 ``onnx_fp16``; int8
    ``onnx_int8`` (``onnx_int8_tensorrt`` for a TensorRT build) where the stage was quantized, else its FP32
    graph (a stage kept in float)."""
    if precision == 'fp32':
        return 'onnx'
    if precision == 'fp16':
        return ONNX_FP16
    if precision == 'int8':
        fmt = ONNX_INT8_TENSORRT if tensorrt else ONNX_INT8
        return fmt if fmt in config.stage(stage).files else 'onnx'
    raise ValueError(f"precision must be 'fp32', 'fp16' or 'int8', got {precision!r}")


def _dims_match(actual: Sequence[object], expected: tuple[int, ...]) -> bool:
    if len(actual) != len(expected):
        return False
    return all(not isinstance(a, int) or a < 0 or a == e for a, e in zip(actual, expected))


def _describe(shape: Sequence[object]) -> str:
    return '(' + ', '.join('?' if not isinstance(d, int) or d < 0 else str(d) for d in shape) + ')'


def check_graph_io(path: Path, spec: StageSpec, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo],
                   fix: str) -> None:
    """Raise :class:`ModelError` naming ``path`` unless its tensors are exactly ``spec``'s.

    Names must match as sets (order is free), shapes dimension by dimension (dynamic dimensions
    accepted), dtypes exactly ('float32', 'int32'). ``fix`` says what to do about a mismatch.
    """
    problems: list[str] = []
    for kind, actual, expected in (('input', inputs, spec.inputs), ('output', outputs, spec.outputs)):
        by_name = {name: (shape, dtype) for name, shape, dtype in actual}
        wanted = {t.name for t in expected}
        missing = [t.name for t in expected if t.name not in by_name]
        extra = sorted(set(by_name) - wanted)
        if missing:
            problems.append(f'{kind}s {missing} missing')
        if extra:
            problems.append(f'unexpected {kind}s {extra}')
        for tensor in expected:
            if tensor.name not in by_name:
                continue
            shape, dtype = by_name[tensor.name]
            if not _dims_match(list(shape), tensor.shape):
                problems.append(f'{kind} {tensor.name!r} has shape {_describe(list(shape))}, expected {tensor.shape}')
            if dtype != tensor.dtype:
                problems.append(f'{kind} {tensor.name!r} has dtype {dtype}, expected {tensor.dtype}')
    if problems:
        raise ModelError(f'{path} does not match stage {spec.name!r} of the model metadata: '
                         f'{"; ".join(problems)}. {fix}')


def check_graph_metadata(path: Path, config: ModelConfig, metadata: Mapping[str, str], fix: str) -> None:
    """Raise :class:`ModelError` naming ``path`` when its export metadata contradicts ``config``.

    ``metadata``: the graph's key/value metadata (ONNX ``metadata_props``). Its ``num_classes`` (written
    by :func:`..export.export_stage`) must be the label set's; the tensor shapes cannot show a graph
    exported for another label set. Graphs without the key (older exports) are not checked.
    """
    declared = metadata.get('num_classes')
    expected = config.label_set.num_classes
    if declared is not None and str(declared).strip() != str(expected):
        raise ModelError(f'{path} was exported for {declared} classes, but the model metadata says label set '
                         f'{config.label_set.name!r} with {expected} classes: the file belongs to another model. {fix}')


def onnx_files_present(model_dir: str | Path, config: ModelConfig, fp16: bool = False) -> bool:
    """Whether ``model_dir`` holds every stage's exported ONNX file (and the FP16 one if ``fp16``)."""
    formats = ['onnx', ONNX_FP16] if fp16 else ['onnx']
    return all(stage_file(model_dir, config, stage, fmt).is_file() for stage in STAGE_ORDER for fmt in formats)
