"""Build one TensorRT engine per stage from the exported ONNX files, with the TensorRT Python API.

The build-only path: ``anomaly_seg export --models DIR --out DIR --tensorrt [--fp16]`` on the robot,
once, ahead of the first launch (minutes per stage; the node never builds). No torch and no
trtexec needed: the exported directory, TensorRT's Python bindings and cuda-python suffice.

Settings per TensorRT version (decided from ``trt.__version__``, never from enum integers; see
``../shared/TENSORRT.md`` and :func:`build_settings`):

==========  ==========================  ==============================================================
version     network flags               FP16
==========  ==========================  ==============================================================
10.0-10.11  0 (weakly typed)            ``BuilderFlag.FP16`` on the FP32 graph; normalization, reduce,
                                        softmax and top-k layers pinned to FP32
                                        (``OBEY_PRECISION_CONSTRAINTS``)
10.12+      ``STRONGLY_TYPED``          the FP16 ONNX graph (``<stage>.fp16.onnx``, InstanceNorm and
                                        reductions FP32 inside, FP32/INT32 inputs and outputs)
11.x        0 (always strongly typed)   the FP16 ONNX graph; precision builder flags no longer exist
==========  ==========================  ==============================================================

INT8 is explicit quantization (TensorRT 11 removed calibrators): the Q/DQ graphs of
``anomaly_seg export --int8`` with symmetric activations (``<stage>.int8-tensorrt.onnx``; a stage it kept
in float is built from its FP32 graph). 10.0-10.11 parse them weakly typed with ``BuilderFlag.INT8``
(which explicit quantization needs there); 10.12+ strongly typed; 11.x as they are, no flags.

FP32 engines are built with ``BuilderFlag.TF32`` cleared (10.x and 11.x alike; the flag is on by
default): with it, Ampere and newer GPUs (Orin included) round convolution inputs to 10-bit
mantissas, about 1e-3 off the FP32 reference, which is not what "fp32" promises. FP16 engines keep
TensorRT's default.

One process-wide logger (:func:`..runtime.tensorrt_common.tensorrt_logger`) serves every build; the errors
logged while one engine is built are named in the exception. VERBOSE messages only with
``verbose=True``.

After the build, ``model.yaml`` records per stage ``files.tensorrt`` and a ``tensorrt`` section
(version, GPU name, compute capability, platform, precision, ...), which the runtime backend checks
before deserializing anything.
"""
from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import BackendError, ModelError
from ..model_config import ModelConfig, load_model_config, save_model_config
from ..runtime import cuda_memory
from ..runtime.stage_files import ONNX_FP16, ONNX_INT8_TENSORRT, onnx_format, stage_file
from ..runtime.tensorrt_common import LogCapture, import_tensorrt, parse_version, platform_tag, tensorrt_logger
from ..stages import STAGE_ORDER, stage_specs

__all__ = ['BuildSettings', 'DEFAULT_TIMING_CACHE', 'build_engines', 'build_settings', 'parser_errors']

_LOG = logging.getLogger('anomaly_seg_ros.tensorrt')
DEFAULT_TIMING_CACHE = 'tensorrt_timing.cache'
# Layer types kept in FP32 inside a weakly typed FP16 network (the FP16 ONNX graphs do the same).
_FP32_LAYER_TYPES = ('NORMALIZATION', 'REDUCE', 'SOFTMAX', 'TOPK')


@dataclass(frozen=True)
class BuildSettings:
    """How to build for one TensorRT version and precision.

    ``onnx_format``: which exported graph to parse ('onnx' FP32, 'onnx_fp16', or 'onnx_int8_tensorrt', where
    a stage without one is built from its FP32 graph).
    ``network_flags``: the ``create_network`` bit mask. ``builder_flags``: ``BuilderFlag`` member
    names to set; ``cleared_flags``: member names to clear (TF32 for FP32 engines).
    ``fp32_layer_types``: ``LayerType`` names pinned to FP32 (weak typing only; float layers only).
    """

    version: tuple[int, ...]
    precision: str
    strongly_typed: bool
    network_flags: int
    onnx_format: str
    builder_flags: tuple[str, ...] = ()
    fp32_layer_types: tuple[str, ...] = ()
    cleared_flags: tuple[str, ...] = ()


def build_settings(trt: Any, precision: str) -> BuildSettings:
    """The build settings for the ``trt`` module at hand (any object with ``__version__`` and the enums)."""
    if precision not in ('fp32', 'fp16', 'int8'):
        raise ValueError(f"precision must be 'fp32', 'fp16' or 'int8', got {precision!r}")
    version = parse_version(trt.__version__)
    if version[0] < 10:
        raise BackendError(f'TensorRT {trt.__version__} is too old: the engines need TensorRT 10 or 11 '
                           '(JetPack 6 ships 10.x)')
    if precision == 'int8':  # explicit quantization: the Q/DQ nodes say what runs in INT8
        if version[0] >= 11:
            return BuildSettings(version, precision, True, 0, ONNX_INT8_TENSORRT)
        if version >= (10, 12):
            flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
            return BuildSettings(version, precision, True, flags, ONNX_INT8_TENSORRT)
        return BuildSettings(version, precision, False, 0, ONNX_INT8_TENSORRT, ('INT8',))
    fp16 = precision == 'fp16'
    # TF32 (on by default, still a builder flag in 11.x) would make "fp32" engines ~1e-3 off FP32 on Ampere+.
    cleared = () if fp16 else ('TF32',)
    if version[0] >= 11:  # strongly typed always; EXPLICIT_BATCH and the precision flags are gone
        return BuildSettings(version, precision, True, 0, ONNX_FP16 if fp16 else 'onnx', cleared_flags=cleared)
    if version >= (10, 12):  # precision flags deprecated: opt in to strong typing, FP16 from the graph
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        return BuildSettings(version, precision, True, flags, ONNX_FP16 if fp16 else 'onnx', cleared_flags=cleared)
    if fp16:  # 10.0-10.11: weakly typed FP32 graph + FP16 builder flag, sensitive layers pinned to FP32
        return BuildSettings(version, precision, False, 0, 'onnx', ('FP16', 'OBEY_PRECISION_CONSTRAINTS'),
                             _FP32_LAYER_TYPES)
    return BuildSettings(version, precision, False, 0, 'onnx', cleared_flags=cleared)


def parser_errors(parser: Any) -> str:
    """The ONNX parser's errors, one per line, with node name and operator."""
    lines = []
    for index in range(int(parser.num_errors)):
        error = parser.get_error(index)
        node = _call_or(error, 'node_name', '?')
        operator = _call_or(error, 'node_operator', '?')
        lines.append(f'node {node!r} ({operator}): {_call_or(error, "desc", str(error))}')
    return '\n'.join(lines) or 'no parser error recorded'


def _call_or(obj: Any, method: str, default: str) -> str:
    try:
        return str(getattr(obj, method)())
    except Exception:  # noqa: BLE001 - older parsers lack node_name/node_operator
        return default


def _pin_fp32(trt: Any, network: Any, type_names: tuple[str, ...]) -> int:
    """Pin the float layers of ``type_names`` to FP32; returns how many were pinned.

    Only layers whose data input (input 0) is float: FP32 precision on an integer reduce or top-k
    (an index computation) makes the weakly typed FP16 build fail.
    """
    types = {getattr(trt.LayerType, name) for name in type_names if hasattr(trt.LayerType, name)}
    floats = (trt.float32, trt.float16)
    pinned = 0
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        if layer.type not in types:
            continue
        data = layer.get_input(0) if layer.num_inputs > 0 else None
        if data is None or data.dtype not in floats:
            continue
        layer.precision = trt.float32
        for out in range(layer.num_outputs):
            if layer.get_output(out).dtype in floats:
                layer.set_output_type(out, trt.float32)
        pinned += 1
    return pinned


def _load_timing_cache(path: Path) -> bytes:
    try:
        return path.read_bytes() if path.is_file() else b''
    except OSError as exc:
        _LOG.warning('timing cache %s unreadable (%s); starting an empty one', path, exc)
        return b''


def _write_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + '.tmp')
    with open(tmp, 'wb') as handle:
        handle.write(memoryview(data))
    tmp.replace(path)


def _build_one(trt: Any, logger: Any, errors: LogCapture, settings: BuildSettings, onnx_path: Path,
               engine_path: Path, shapes: dict[str, tuple[int, ...]], workspace_bytes: int,
               cache_state: dict[str, Any]) -> None:
    """Build one engine; ``errors`` collects what TensorRT logs meanwhile, for the exception message."""
    builder = trt.Builder(logger)
    if builder is None:
        raise BackendError(f'TensorRT Builder creation failed: {errors}')
    network = builder.create_network(settings.network_flags)
    parser = trt.OnnxParser(network, logger) if network is not None else None
    if parser is None:
        raise BackendError(f'TensorRT network/parser creation failed: {errors}')
    if not parser.parse_from_file(str(onnx_path)):
        raise ModelError(f'TensorRT could not parse {onnx_path}:\n{parser_errors(parser)}\nRe-export the model '
                         '(opset 17, static shapes) or report the node above')
    config = builder.create_builder_config()
    if config is None:
        raise BackendError(f'TensorRT builder config creation failed: {errors}')
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    for flag in settings.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    for flag in settings.cleared_flags:
        config.clear_flag(getattr(trt.BuilderFlag, flag))
    if settings.fp32_layer_types:
        _LOG.info('%s: %d layers kept in FP32', onnx_path.name, _pin_fp32(trt, network, settings.fp32_layer_types))
    profile = None
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        if all(int(d) >= 0 for d in tensor.shape):
            continue
        if tensor.name not in shapes:
            raise ModelError(f'{onnx_path} has an unexpected input {tensor.name!r}; re-export the model')
        # A dynamic dimension (not written by our exporter): one profile pinned to the contract's shape.
        profile = profile or builder.create_optimization_profile()
        shape = shapes[tensor.name]
        profile.set_shape(tensor.name, shape, shape, shape)
    if profile is not None and config.add_optimization_profile(profile) < 0:
        raise BackendError(f'TensorRT rejected the optimization profile for {onnx_path}: {errors}')
    cache = config.create_timing_cache(cache_state['bytes'])
    if cache is None or not config.set_timing_cache(cache, False):
        _LOG.warning('timing cache %s does not match this TensorRT/GPU; starting an empty one', cache_state['path'])
        cache = config.create_timing_cache(b'')
        if cache is None or not config.set_timing_cache(cache, False):
            raise BackendError(f'TensorRT could not create a timing cache: {errors}')
    start = time.monotonic()
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise BackendError(f'TensorRT failed to build {engine_path.name} from {onnx_path}: {errors}')
    _write_atomic(engine_path, plan)
    updated = config.get_timing_cache()
    serialized = updated.serialize() if updated is not None else None
    if serialized is None:
        _LOG.warning('TensorRT returned no timing cache; %s not updated', cache_state['path'])
    else:
        cache_state['bytes'] = bytes(memoryview(serialized))
        _write_atomic(cache_state['path'], cache_state['bytes'])
    _LOG.info('built %s in %.0f s', engine_path, time.monotonic() - start)


def build_engines(model_dir: str | Path, *, precision: str = 'fp32', workspace_gb: float = 4.0,
                  timing_cache: str | Path | None = None, device: str | None = None,
                  stages: Collection[str] = STAGE_ORDER, verify: bool = True, verbose: bool = False) -> ModelConfig:
    """Build ``<stage>.engine`` for every stage of the exported ``model_dir`` and record them in ``model.yaml``.

    Args:
        model_dir: an exported directory (``model.yaml`` + ``<stage>.onnx``; ``<stage>.fp16.onnx``
            too for FP16 on TensorRT 10.12+/11).
        precision: 'fp32', 'fp16' or 'int8' (the Q/DQ graphs of ``anomaly_seg export --int8``).
        workspace_gb: builder workspace limit in GiB.
        timing_cache: timing cache file, loaded when present and saved after every engine
            (default ``<model_dir>/tensorrt_timing.cache``).
        device: 'cuda' or 'cuda:N'.
        verify: load the engines with the tensorrt backend afterwards (checks tensor names/shapes).
        verbose: forward TensorRT's INFO and VERBOSE messages too (to the ``anomaly_seg_ros.tensorrt``
            logger at INFO/DEBUG) while building; by default only warnings and errors.
    Returns:
        The updated metadata (also written to ``model.yaml``).
    """
    from ..runtime.tensorrt_backend import TensorRTBackend, parse_cuda_device

    model_dir = Path(model_dir)
    config = load_model_config(model_dir)
    trt = import_tensorrt()
    index = parse_cuda_device(device)
    cuda_memory.set_device(index)
    gpu = cuda_memory.device_info(index)
    settings = build_settings(trt, precision)
    specs = stage_specs(config)
    if precision == 'int8':
        if not any(ONNX_INT8_TENSORRT in config.stage(stage).files for stage in stages):
            raise ModelError(f'cannot build INT8 engines: {model_dir} has no INT8 graphs for TensorRT (model.yaml '
                             f'lists no onnx_int8_tensorrt file); make them first with `anomaly_seg export '
                             f'--models {model_dir} --out {model_dir} --int8 --calibration DATASET:ROOT:train`')
        onnx_paths = {stage: stage_file(model_dir, config, stage, onnx_format(config, stage, 'int8', tensorrt=True))
                      for stage in stages}
    else:
        onnx_paths = {stage: stage_file(model_dir, config, stage, settings.onnx_format) for stage in stages}
    missing = [str(p) for p in onnx_paths.values() if not p.is_file()]
    if missing:
        flag = ' --fp16' if settings.onnx_format == ONNX_FP16 else ''
        raise ModelError(f'cannot build engines: {", ".join(missing)} missing; export them first with '
                         f'`anomaly_seg export --models <trained model dir> --out {model_dir}{flag}`')
    cache_path = Path(timing_cache) if timing_cache else model_dir / DEFAULT_TIMING_CACHE
    banner = (f'BUILDING TensorRT ENGINES for {len(onnx_paths)} stages in {model_dir} ({precision}, TensorRT '
              f'{trt.__version__}, {gpu.name} compute {gpu.compute_capability_str}). This takes minutes per stage '
              'and is done once per machine; later starts load the engines.')
    _LOG.warning('%s\n%s\n%s', '=' * 100, banner, '=' * 100)
    logger = tensorrt_logger(trt)
    cache_state = {'path': cache_path, 'bytes': _load_timing_cache(cache_path)}
    files = {}
    with logger.verbosity('VERBOSE' if verbose else logger.min_severity_name):
        for stage, onnx_path in onnx_paths.items():
            engine_path = model_dir / f'{stage}.engine'
            _LOG.info('building %s from %s ...', engine_path.name, onnx_path.name)
            shapes = {t.name: t.shape for t in specs[stage].inputs}
            with logger.capture() as errors:  # this engine's errors only
                _build_one(trt, logger, errors, settings, onnx_path, engine_path, shapes,
                           int(workspace_gb * (1 << 30)), cache_state)
            files[stage] = engine_path.name
    for stage, name in files.items():
        config = config.with_stage(stage, files={**config.stage(stage).files, 'tensorrt': name})
    config = replace(config, tensorrt={
        'version': str(trt.__version__),
        'gpu_name': gpu.name,
        'compute_capability': gpu.compute_capability_str,
        'platform': platform_tag(),
        'precision': precision,
        'strongly_typed': settings.strongly_typed,
        'onnx': settings.onnx_format,
        'workspace_gb': float(workspace_gb),
        'built_at': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
    })
    save_model_config(config, model_dir)
    if verify:
        TensorRTBackend(model_dir, config, device=f'cuda:{index}', stages=list(files)).close()
    return config
