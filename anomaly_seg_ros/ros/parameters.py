"""The node's parameters: declarations, defaults, and one validation function.

:data:`PARAMETERS` is the single list of what the node accepts (name, default, description,
range, whether it may change at run time); ``config/anomaly_seg.yaml`` holds the same defaults.
:func:`validate` turns a complete set of raw values into :class:`NodeSettings` or raises
:class:`ParameterError` with a reason; the node calls it for the start-up values and again for
every later update (merged with the current values), so both paths accept and refuse alike.
Read-only parameters are fixed at start-up (the model is loaded, topics and QoS are created once).

Only :func:`declare` and :func:`descriptor` touch rclpy (imported lazily), so the rest is testable
without ROS.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import AnomalySegError
from ..runtime.base import BACKEND_NAMES
from ..visualization import COLORMAPS
from .diagnostics import DiagnosticThresholds
from .outputs import OUTPUT_TOPICS, HeatmapStyle

__all__ = [
    'DEFAULTS',
    'PARAMETERS',
    'READ_ONLY',
    'NodeSettings',
    'ParameterError',
    'ParameterSpec',
    'declare',
    'descriptor',
    'plain_value',
    'validate',
    'validate_update',
]

_RELIABILITIES = ('best_effort', 'reliable')
_TRANSPORTS = ('raw', 'compressed')
_PUBLISHING = ('auto', 'parallel', 'inline')
_SIZE_PATTERN = re.compile(r'^\s*(\d+)\s*x\s*(\d+)\s*$')
MAX_DEPTH = 100
# A 4K camera frame; the conversion layer's own hard limit is the range's upper end.
DEFAULT_MAX_FRAME_PIXELS = 4096 * 2160
MAX_FRAME_PIXELS_LIMIT = 16384 * 16384


class ParameterError(AnomalySegError):
    """A parameter value is invalid; ``reason`` says why and what is accepted."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f'parameter {name!r}: {reason}')
        self.name = name
        self.reason = reason


@dataclass(frozen=True)
class ParameterSpec:
    """One declared parameter. ``number_range`` = (low, high) for scalar numbers (inclusive)."""

    name: str
    default: Any
    description: str
    read_only: bool = False
    number_range: tuple[float, float] | None = None
    dynamic_typing: bool = False  # numbers: accept 1 where 1.0 is meant


PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec('model_dir', '', 'Model directory (model.yaml + stage files). Empty: the shipped '
                  'models/cityscapes_camvid (real frames) from the package share directory or the checkout.',
                  read_only=True),
    ParameterSpec('backend', 'onnxruntime', f'Inference backend: {", ".join(BACKEND_NAMES)}.', read_only=True),
    ParameterSpec('device', '', "Device: '' (CUDA where the backend can use it, else CPU), 'cpu', 'cuda' "
                  "or 'cuda:N'.", read_only=True),
    ParameterSpec('precision', 'fp32', "'fp32', 'fp16' (graphs/engines of `anomaly_seg export --fp16`) or 'int8' "
                  '(the calibrated Q/DQ graphs of `export --int8`, or engines built from them); tensorrt: the '
                  "engines' own precision must match unless 'fp32'.", read_only=True),
    ParameterSpec('input_transport', 'raw', "'raw': subscribe to `image` (sensor_msgs/Image); 'compressed': "
                  'to `image/compressed` (sensor_msgs/CompressedImage, jpeg/png).', read_only=True),
    ParameterSpec('input_significant_bits', 16, 'Bits a 16-bit camera frame (mono16, 16UC1, bayer_*16) uses, '
                  'in the low bits of each value: 16 for full-range data, 10 or 12 for 10/12-bit sensors. That '
                  'range is scaled to 8 bits; larger values saturate.', number_range=(8, 16)),
    ParameterSpec('qos.input_reliability', 'best_effort', 'Input subscription reliability: best_effort '
                  '(receives from any publisher) or reliable.', read_only=True),
    ParameterSpec('qos.input_depth', 1, 'Input queue depth (keep last). 1: the newest frame only.',
                  read_only=True, number_range=(1, MAX_DEPTH)),
    ParameterSpec('qos.output_reliability', 'reliable', 'Output publisher reliability: reliable (any '
                  'subscriber can receive) or best_effort.', read_only=True),
    ParameterSpec('qos.output_depth', 10, 'Output queue depth (keep last). Reliable delivery of large '
                  'images to a subscriber that is briefly slower needs a few (1 loses frames).', read_only=True,
                  number_range=(1, MAX_DEPTH)),
    ParameterSpec('outputs', list(OUTPUT_TOPICS), 'Output topics to advertise (under ~/); of these, only '
                  f'those with subscribers are computed. Known: {", ".join(OUTPUT_TOPICS)}.', read_only=True),
    ParameterSpec('publishing', 'auto', "'parallel': a second thread renders and publishes a frame's outputs "
                  "while the next frame is inferred (more frames per second where a core is free: GPU "
                  "backends, CPUs with cores to spare); 'inline': outputs are published before the next "
                  "frame is taken (lower latency where inference already keeps every core busy, as a CPU "
                  "backend does on a small machine); 'auto': parallel when the backend runs on a GPU, else "
                  'inline.', read_only=True),
    ParameterSpec('max_frame_pixels', DEFAULT_MAX_FRAME_PIXELS, 'Largest camera frame and output_size, in '
                  'pixels (width x height): bigger camera frames are skipped with a reason, a bigger '
                  'output_size is refused. Bounds the memory a frame takes; the default (4096x2160, 4K) fits '
                  'an 8 GB Jetson.', number_range=(1, MAX_FRAME_PIXELS_LIMIT)),
    ParameterSpec('output_size', 'input', "Size of published maps: 'input' (the camera frame's), 'network' "
                  "(each stage's own resolution) or 'WIDTHxHEIGHT'."),
    ParameterSpec('ensemble_weights', [0.0, 0.0, 0.0, 0.0], 'Ensemble weights (dissimilarity, entropy, '
                  'perceptual_difference, softmax_distance), normalized to sum 1. All zeros: the weights '
                  'stored with the model.', dynamic_typing=True),
    ParameterSpec('colormap', 'turbo', f'Colormap of anomaly_color and overlay: {", ".join(COLORMAPS)}.'),
    ParameterSpec('heatmap_range', [0.0, 1.0], 'Anomaly values [low, high] mapped to the colormap ends; '
                  'values outside saturate.', dynamic_typing=True),
    ParameterSpec('overlay_alpha', 0.5, 'Heatmap weight in the overlay (0: camera only, 1: heatmap only).',
                  number_range=(0.0, 1.0), dynamic_typing=True),
    ParameterSpec('diagnostics.max_drop_fraction', 0.5, 'WARN on /diagnostics when more than this fraction of '
                  'the input frames of a period is dropped (the pipeline is slower than the camera).',
                  read_only=True, number_range=(0.0, 1.0), dynamic_typing=True),
    ParameterSpec('diagnostics.max_latency_ms', 1000.0, 'WARN when the p90 receive-to-publish latency of a '
                  'period is above this.', read_only=True, number_range=(1.0, 600000.0), dynamic_typing=True),
    ParameterSpec('diagnostics.max_stamp_skew_ms', 5000.0, 'WARN when frame stamps are further than this from '
                  "the node's clock (median of a period), in the future or the past: clocks that differ, or a "
                  'bag replayed without use_sim_time.', read_only=True, number_range=(1.0, 86400000.0),
                  dynamic_typing=True),
    ParameterSpec('diagnostics_period', 1.0, 'Seconds between /diagnostics messages.', read_only=True,
                  number_range=(0.1, 60.0), dynamic_typing=True),
)
DEFAULTS: dict[str, Any] = {spec.name: spec.default for spec in PARAMETERS}
READ_ONLY: frozenset[str] = frozenset(spec.name for spec in PARAMETERS if spec.read_only)
_SPECS = {spec.name: spec for spec in PARAMETERS}


@dataclass(frozen=True)
class NodeSettings:
    """Validated parameter values in the forms the node uses.

    ``output_size``: ``None`` (input size), ``'network'`` or (H, W). ``ensemble_weights``: ``None``
    for the model's own weights.
    """

    model_dir: str
    backend: str
    device: str
    precision: str
    input_transport: str
    input_significant_bits: int
    input_reliability: str
    input_depth: int
    output_reliability: str
    output_depth: int
    outputs: tuple[str, ...]
    publishing: str
    output_size: tuple[int, int] | str | None
    max_frame_pixels: int
    ensemble_weights: tuple[float, float, float, float] | None
    style: HeatmapStyle
    diagnostics_period: float
    diagnostic_thresholds: DiagnosticThresholds


_PRECISIONS = ('fp32', 'fp16', 'int8')


def _string(values: Mapping[str, Any], name: str, choices: Sequence[str] | None = None) -> str:
    value = values[name]
    if not isinstance(value, str):
        raise ParameterError(name, f'must be a string, got {value!r}')
    if choices is not None and value not in choices:
        raise ParameterError(name, f'{value!r} is not one of {", ".join(choices)}')
    return value


def _number(values: Mapping[str, Any], name: str, integer: bool = False) -> float:
    value = values[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        kind = 'an integer' if integer else 'a number'
        raise ParameterError(name, f'must be {kind}, got {value!r}')
    if not math.isfinite(value):
        raise ParameterError(name, f'must be finite, got {value!r}')
    low, high = _SPECS[name].number_range or (-math.inf, math.inf)
    if not low <= value <= high:
        raise ParameterError(name, f'{value} is outside [{low:g}, {high:g}]')
    return value


def _numbers(values: Mapping[str, Any], name: str, length: int) -> tuple[float, ...]:
    value = values[name]
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != length:
        raise ParameterError(name, f'must be a list of {length} numbers, got {value!r}')
    numbers = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item):
            raise ParameterError(name, f'must be a list of {length} finite numbers, got {list(value)!r}')
        numbers.append(float(item))
    return tuple(numbers)


def _output_size(values: Mapping[str, Any]) -> tuple[int, int] | str | None:
    text = _string(values, 'output_size')
    if text == 'input':
        return None
    if text == 'network':
        return 'network'
    match = _SIZE_PATTERN.match(text)
    if match is None:
        raise ParameterError('output_size', f"{text!r} is not 'input', 'network' or WIDTHxHEIGHT (e.g. 640x480)")
    width, height = int(match.group(1)), int(match.group(2))
    if not (1 <= width <= 16384 and 1 <= height <= 16384):
        raise ParameterError('output_size', f'{width}x{height}: width and height must be in 1..16384')
    limit = int(_number(values, 'max_frame_pixels', integer=True))
    if width * height > limit:
        raise ParameterError('output_size', f'{width}x{height} is {width * height} pixels, above max_frame_pixels '
                             f'({limit}); every output of that size is held in memory at once')
    return height, width


def _outputs(values: Mapping[str, Any]) -> tuple[str, ...]:
    value = values['outputs']
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise ParameterError('outputs', f'must be a list of topic names, got {value!r}')
    unknown = [v for v in value if v not in OUTPUT_TOPICS]
    if unknown:
        raise ParameterError('outputs', f'unknown outputs {unknown}; known: {", ".join(OUTPUT_TOPICS)}')
    if not value:
        raise ParameterError('outputs', 'name at least one output topic')
    return tuple(dict.fromkeys(value))  # drop duplicates, keep order


def _weights(values: Mapping[str, Any]) -> tuple[float, float, float, float] | None:
    a, b, c, d = _numbers(values, 'ensemble_weights', 4)
    if min(a, b, c, d) < 0:
        raise ParameterError('ensemble_weights', f'weights must be non-negative, got {[a, b, c, d]}')
    if a + b + c + d == 0:
        return None
    # The graph computes in float32: a weight it cannot hold (overflow, or a nonzero value that
    # flushes to zero) would be silently changed, so it is refused rather than reinterpreted.
    tiny, huge = float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max)
    for weight in (a, b, c, d):
        if weight > huge or 0 < weight < tiny:
            raise ParameterError('ensemble_weights', f'{weight:g} is outside float32 range [{tiny:g}, {huge:g}] '
                                 '(the graph computes in float32); give relative weights, e.g. [0.75, 0.25, 0, 0]')
    return a, b, c, d


def _style(values: Mapping[str, Any]) -> HeatmapStyle:
    low, high = _numbers(values, 'heatmap_range', 2)
    if not high > low:
        raise ParameterError('heatmap_range', f'needs low < high, got [{low}, {high}]')
    return HeatmapStyle(colormap=_string(values, 'colormap', tuple(COLORMAPS)), value_range=(low, high),
                        overlay_alpha=float(_number(values, 'overlay_alpha')))


def validate(values: Mapping[str, Any]) -> NodeSettings:
    """Check a complete set of raw parameter values (``DEFAULTS`` fills gaps); raise ParameterError."""
    unknown = set(values) - set(DEFAULTS)
    if unknown:
        raise ParameterError(sorted(unknown)[0], f'unknown parameter; known: {", ".join(DEFAULTS)}')
    values = {**DEFAULTS, **values}
    device = _string(values, 'device')
    if device not in ('', 'cpu', 'cuda') and not re.fullmatch(r'cuda:\d+', device):
        raise ParameterError('device', f"{device!r} is not '', 'cpu', 'cuda' or 'cuda:N'")
    return NodeSettings(
        model_dir=_string(values, 'model_dir'),
        backend=_string(values, 'backend', BACKEND_NAMES),
        device=device,
        precision=_string(values, 'precision', _PRECISIONS),
        input_transport=_string(values, 'input_transport', _TRANSPORTS),
        input_significant_bits=int(_number(values, 'input_significant_bits', integer=True)),
        input_reliability=_string(values, 'qos.input_reliability', _RELIABILITIES),
        input_depth=int(_number(values, 'qos.input_depth', integer=True)),
        output_reliability=_string(values, 'qos.output_reliability', _RELIABILITIES),
        output_depth=int(_number(values, 'qos.output_depth', integer=True)),
        outputs=_outputs(values),
        publishing=_string(values, 'publishing', _PUBLISHING),
        output_size=_output_size(values),
        max_frame_pixels=int(_number(values, 'max_frame_pixels', integer=True)),
        ensemble_weights=_weights(values),
        style=_style(values),
        diagnostics_period=float(_number(values, 'diagnostics_period')),
        diagnostic_thresholds=DiagnosticThresholds(
            max_drop_fraction=float(_number(values, 'diagnostics.max_drop_fraction')),
            max_latency_ms=float(_number(values, 'diagnostics.max_latency_ms')),
            max_stamp_skew_ms=float(_number(values, 'diagnostics.max_stamp_skew_ms'))),
    )


def validate_update(current: Mapping[str, Any], changes: Mapping[str, Any]) -> NodeSettings:
    """Validate ``changes`` on top of the ``current`` raw values; read-only ones may not change."""
    for name, value in changes.items():
        if name in READ_ONLY and value != current.get(name, DEFAULTS.get(name)):
            raise ParameterError(name, 'is read-only: it is fixed when the node starts; restart the node '
                                 'with the new value (--ros-args -p or the params file)')
    return validate({**current, **changes})


def descriptor(spec: ParameterSpec) -> Any:
    """rcl_interfaces/ParameterDescriptor of ``spec`` (description, range, read-only)."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    desc = ParameterDescriptor(name=spec.name, description=spec.description, read_only=spec.read_only,
                               dynamic_typing=spec.dynamic_typing)
    if spec.number_range is not None:
        low, high = spec.number_range
        if isinstance(spec.default, int):
            desc.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
        else:
            desc.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
        desc.additional_constraints = f'{low:g} <= value <= {high:g}'
    if spec.read_only:
        desc.additional_constraints = (desc.additional_constraints + '; ' if desc.additional_constraints
                                       else '') + 'read-only: set at start-up'
    return desc


def declare(node: Any) -> dict[str, Any]:
    """Declare every parameter on ``node``; returns the raw values (defaults + overrides).

    A value of the wrong type for a statically typed parameter raises ParameterError.
    """
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

    values: dict[str, Any] = {}
    for spec in PARAMETERS:
        try:
            parameter = node.declare_parameter(spec.name, spec.default, descriptor(spec))
        except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
            raise ParameterError(spec.name, f'invalid value ({exc})') from exc
        values[spec.name] = plain_value(parameter.value)
    return values


def plain_value(value: Any) -> Any:
    """rclpy array values (array.array, lists) -> lists of Python scalars."""
    if isinstance(value, (str, bytes, bool, int, float)) or value is None:
        return value
    return [v for v in value]
