"""TensorRT backend: one deserialized engine (``<stage>.engine``) and execution context per stage.

Start-up, in this order: the engine files exist; ``tensorrt`` and cuda-python import; the
``tensorrt`` section of ``model.yaml`` matches this machine's TensorRT release, GPU compute
capability and platform (:func:`.tensorrt_common.check_engine_metadata`, BEFORE deserializing);
each plan deserializes (a null engine becomes a :class:`~..errors.ModelError` with TensorRT's
message); its tensors match :func:`..stages.stage_specs` by name, shape and dtype.

Running: tensors are bound by name (``set_tensor_address``) and each stage is enqueued with
``execute_async_v3`` on one non-default stream. Every stage output lives in a device buffer owned
by the backend, one per tensor name, and the next stage reads it where it is: only the camera
frame goes up (through pinned memory) and only requested outputs come down. Every call that
returns a bool or None is checked; the errors TensorRT logs during a call (one process-wide
logger, :func:`.tensorrt_common.tensorrt_logger`) are named in the exception. This backend never
builds engines: a missing engine is an error that names the build-only command.

Activation memory: the stages run one after another on one stream, so their execution contexts are
created ``USER_MANAGED`` and share one device buffer of the largest engine's size instead of
holding one each (``device_memory_size_v2`` / ``set_device_memory(ptr, size)`` from 10.1 and in 11;
``device_memory_size`` / ``device_memory = ptr`` on 10.0), which matters on an 8 GB Orin.
"""
from __future__ import annotations

import logging
import weakref
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendError, EngineMismatchError, ModelError
from ..model_config import ModelConfig
from ..stages import STAGE_ORDER, StageSpec, stage_specs
from . import cuda_memory
from .base import parse_device
from .cuda_memory import DeviceArray, PinnedArray, Stream
from .stage_files import check_graph_io, stage_file
from .tensorrt_common import (
    LogCapture,
    build_command,
    check_engine_metadata,
    engine_io,
    import_tensorrt,
    parse_version,
    platform_tag,
    tensorrt_logger,
)

__all__ = ['DeviceTensor', 'TensorRTBackend', 'parse_cuda_device']

_LOG = logging.getLogger(__name__)
_DTYPES = (np.dtype(np.float32), np.dtype(np.int32), np.dtype(np.float16))


class DeviceTensor:
    """A backend-native value: a :class:`DeviceArray` with ``shape``, ``dtype`` and ``ptr``.

    Stage outputs are the backend's own buffers, overwritten by the next run of the same stage;
    uploaded values return their buffer to the backend's pool when garbage-collected (safe while
    work is queued: all copies and stages run in order on one stream).
    """

    __slots__ = ('array', '__weakref__')

    def __init__(self, array: DeviceArray) -> None:
        self.array = array

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def ptr(self) -> int:
        return self.array.ptr


def parse_cuda_device(device: str | None) -> int:
    """``None``/'cuda' -> 0, 'cuda:N' -> N; 'cpu' and anything else -> :class:`BackendError`."""
    parsed = parse_device('cuda' if device is None else device)
    if parsed is not None and parsed[0] == 'cuda':
        return parsed[1]
    raise BackendError(f"the tensorrt backend runs on a GPU only (device 'cuda' or 'cuda:N'), got {device!r}; "
                       "use backend 'onnxruntime' for the CPU")


def _check(ok: Any, what: str, errors: LogCapture) -> None:
    if ok is None or ok is False:
        raise BackendError(f'TensorRT {what} failed: {errors}')


def device_memory_size(engine: Any, version: tuple[int, ...]) -> int:
    """Activation memory one execution context of ``engine`` needs, in bytes."""
    # device_memory_size is deprecated from 10.1 (the _v2 property supersedes it) and gone in 11.
    return int(engine.device_memory_size_v2 if version >= (10, 1) else engine.device_memory_size)


def set_device_memory(context: Any, ptr: int, size: int, version: tuple[int, ...]) -> None:
    """Give a ``USER_MANAGED`` context its activation memory (``size`` bytes at device address ``ptr``)."""
    if version >= (10, 1):
        context.set_device_memory(ptr, size)
    else:  # 10.0: the write-only property, no size
        context.device_memory = ptr


class TensorRTBackend:
    """Runs the TensorRT engines of ``model_dir`` (see the module docstring).

    Args:
        model_dir: an exported model directory whose engines were built on this machine.
        config: its metadata; ``config.tensorrt`` describes the engines.
        device: ``None``/``'cuda'`` (GPU 0) or ``'cuda:N'``.
        precision: ``None`` (whatever the engines were built for) or ``'fp32'``/``'fp16'``/``'int8'``, which
            the engines must have been built for (a plan's precision is fixed when it is built).
        stages: stages to load (default all four).
    Raises:
        ModelError: engine file missing/corrupt or not matching the stage contract.
        EngineMismatchError: engines built for another TensorRT release, GPU, platform or precision.
        BackendError: tensorrt or cuda-python missing, no GPU, a TensorRT/CUDA call failed.
    """

    name = 'tensorrt'

    def __init__(self, model_dir: str | Path, config: ModelConfig, device: str | None = None, *,
                 precision: str | None = None, stages: Collection[str] = STAGE_ORDER) -> None:
        if precision not in (None, 'fp32', 'fp16', 'int8'):
            raise ValueError(f"precision must be None, 'fp32', 'fp16' or 'int8', got {precision!r}")
        self.model_dir = Path(model_dir)
        self.config = config
        self._index = parse_cuda_device(device)
        self._specs: dict[str, StageSpec] = stage_specs(config)
        built = str((config.tensorrt or {}).get('precision', 'fp32'))
        paths = {}
        for stage in stages:
            if stage not in self._specs:
                raise ValueError(f'unknown stage {stage!r}; stages: {", ".join(STAGE_ORDER)}')
            paths[stage] = stage_file(self.model_dir, config, stage, 'tensorrt')
            if not paths[stage].is_file():
                raise ModelError(f'{paths[stage]} is missing: TensorRT engines are built once per machine, ahead '
                                 f'of the first launch, with `{build_command(self.model_dir, precision or built)}`; '
                                 'the node never builds them itself')
        trt = import_tensorrt()
        cuda_memory.set_device(self._index)
        gpu = cuda_memory.device_info(self._index)
        check_engine_metadata(config.tensorrt, self.model_dir, trt_version=trt.__version__,
                              compute_capability=gpu.compute_capability, gpu_name=gpu.name, machine=platform_tag())
        if precision is not None and precision != built:
            raise EngineMismatchError(f'the TensorRT engines in {self.model_dir} were built for {built}, {precision} '
                                      f'was asked for: a plan\'s precision is fixed when it is built. Rebuild them '
                                      f'with `{build_command(self.model_dir, precision)}`, or ask for {built}')
        self.precision = built
        self.device = f'cuda:{self._index} ({gpu.name})'
        self._trt = trt
        self._version = parse_version(trt.__version__)
        self._logger = tensorrt_logger(trt)
        self._engines: dict[str, Any] = {}
        self._contexts: dict[str, Any] = {}
        self._outputs: dict[str, DeviceTensor] = {}
        self._pool: dict[tuple[tuple[int, ...], str], list[DeviceArray]] = {}
        self._staging: dict[tuple[tuple[int, ...], str], PinnedArray] = {}
        self._host_out: dict[tuple[tuple[int, ...], str], PinnedArray] = {}
        self._runtime: Any = None
        self._activations: DeviceArray | None = None
        self._pending: set[tuple[tuple[int, ...], str]] = set()
        self._stream: Stream | None = Stream()
        try:
            with self._logger.capture() as errors:
                self._runtime = trt.Runtime(self._logger)
                _check(self._runtime, 'Runtime creation', errors)
            inputs = {stage: self._load(stage, path) for stage, path in paths.items()}
            self._create_contexts(paths, inputs)
        except BaseException:
            self.close()
            raise
        _LOG.info('TensorRT %s engines (%s) of %s loaded on %s', trt.__version__, built, self.model_dir, self.device)

    def _rebuild(self) -> str:
        return f'rebuild it with `{build_command(self.model_dir, self.precision)}`'

    def _load(self, stage: str, path: Path) -> list[tuple[str, tuple[int, ...], str]]:
        """Deserialize ``path`` into ``self._engines[stage]`` and check its tensors; returns its inputs."""
        try:
            plan = path.read_bytes()
        except OSError as exc:
            raise ModelError(f'{path} cannot be read ({exc}); {self._rebuild()}') from exc
        with self._logger.capture() as errors:  # this plan's errors only
            engine = self._runtime.deserialize_cuda_engine(plan)
        if engine is None:
            raise ModelError(f'{path} could not be deserialized (truncated or corrupt, or built by another '
                             f'TensorRT): {errors}; {self._rebuild()}')
        inputs, outputs = engine_io(engine, self._trt)
        check_graph_io(path, self._specs[stage], inputs, outputs,
                       f'The engine belongs to another model: {self._rebuild()}.')
        self._engines[stage] = engine
        return inputs

    def _create_contexts(self, paths: Mapping[str, Path],
                         inputs: Mapping[str, list[tuple[str, tuple[int, ...], str]]]) -> None:
        """One ``USER_MANAGED`` execution context per stage, all on one shared activation buffer.

        Valid because the stages never overlap: every context is enqueued on the backend's one stream,
        one after another, so each finishes with the buffer before the next starts.
        """
        sizes = {stage: device_memory_size(engine, self._version) for stage, engine in self._engines.items()}
        size = max(sizes.values(), default=0)
        self._activations = DeviceArray((size,), np.uint8)
        _LOG.info('TensorRT activation memory: one shared buffer of %.1f MiB for %d stages (%.1f MiB if each had '
                  'its own)', size / 2**20, len(sizes), sum(sizes.values()) / 2**20)
        strategy = self._trt.ExecutionContextAllocationStrategy.USER_MANAGED
        for stage, engine in self._engines.items():
            name, spec = paths[stage].name, self._specs[stage]
            with self._logger.capture() as errors:
                context = engine.create_execution_context(strategy)
                _check(context, f'create_execution_context for {name}', errors)
                set_device_memory(context, self._activations.ptr, size, self._version)
                if errors:  # set_device_memory returns nothing: TensorRT's complaint is in the log
                    raise BackendError(f'TensorRT refused the shared activation memory for {name}: {errors}')
                for tensor_name, shape, _ in inputs[stage]:
                    if any(d < 0 for d in shape):  # dynamic dimension: fix it to the contract's static shape
                        tensor = next(t for t in spec.inputs if t.name == tensor_name)
                        _check(context.set_input_shape(tensor_name, tensor.shape), f'set_input_shape({tensor_name!r})',
                               errors)
                for tensor in spec.outputs:
                    output = self._outputs.get(tensor.name)
                    if output is None:
                        output = self._outputs[tensor.name] = DeviceTensor(DeviceArray(tensor.shape, tensor.dtype))
                    _check(context.set_tensor_address(tensor.name, output.ptr), f'set_tensor_address({tensor.name!r})',
                           errors)
            self._contexts[stage] = context

    # -- Backend protocol ------------------------------------------------------------------------
    def _current_device(self) -> None:
        if self._index:  # the current device is per thread (the node runs stages on a worker thread)
            cuda_memory.set_device(self._index)

    @property
    def stream(self) -> Stream:
        if self._stream is None:
            raise BackendError('the tensorrt backend was closed')
        return self._stream

    def upload(self, array: np.ndarray) -> DeviceTensor:
        """Host array (float32, int32 or float16) -> a device buffer, copied through pinned memory."""
        array = np.asarray(array)
        if array.dtype not in _DTYPES:
            raise ValueError(f'cannot upload dtype {array.dtype}; expected one of {[str(d) for d in _DTYPES]}')
        key = (tuple(array.shape), array.dtype.str)
        stream = self.stream
        self._current_device()
        staging = self._staging.get(key)
        if staging is None:
            staging = self._staging[key] = PinnedArray(array.shape, array.dtype)
        elif key in self._pending:  # the last copy from this staging buffer may still be in flight
            stream.synchronize()
            self._pending.clear()
        np.copyto(staging.array, array)
        free = self._pool.get(key)
        device = free.pop() if free else DeviceArray(array.shape, array.dtype)
        device.copy_from_host(staging, stream)
        self._pending.add(key)
        value = DeviceTensor(device)
        weakref.finalize(value, self._pool.setdefault(key, []).append, device)
        return value

    def run(self, stage: str, inputs: Mapping[str, Any]) -> dict[str, DeviceTensor]:
        """Enqueue ``stage`` on the stream; returns its output buffers (valid until its next run)."""
        context = self._contexts.get(stage)
        if context is None:
            raise ValueError(f'stage {stage!r} is not loaded (loaded: {", ".join(self._contexts) or "none"})')
        spec = self._specs[stage]
        self._current_device()
        keep = []
        values = []
        for tensor in spec.inputs:
            if tensor.name not in inputs:
                raise ValueError(f'stage {stage!r} needs input {tensor.name!r}')
            value = inputs[tensor.name]
            if isinstance(value, np.ndarray):
                value = self.upload(value)
                keep.append(value)
            elif isinstance(value, DeviceArray):
                value = DeviceTensor(value)
            if not isinstance(value, DeviceTensor):
                raise TypeError(f'stage {stage!r} input {tensor.name!r}: expected a numpy array or a value of this '
                                f'backend, got {type(value).__name__}')
            if value.shape != tensor.shape or value.dtype != np.dtype(tensor.dtype):
                raise ValueError(f'stage {stage!r} input {tensor.name!r}: got {value.shape} {value.dtype}, '
                                 f'expected {tensor.shape} {tensor.dtype}')
            values.append((tensor.name, value))
        with self._logger.capture() as errors:
            for name, value in values:
                _check(context.set_tensor_address(name, value.ptr), f'set_tensor_address({name!r})', errors)
            _check(context.execute_async_v3(self.stream.handle), f'execute_async_v3 of stage {stage!r}', errors)
        return {name: self._outputs[name] for name in spec.output_names}

    def download(self, value: Any) -> np.ndarray:
        """Copy a device value to a new host array (waits for the stream); numpy arrays pass through."""
        if isinstance(value, np.ndarray):
            return value
        array = value.array if isinstance(value, DeviceTensor) else value
        if not isinstance(array, DeviceArray):
            raise TypeError(f'cannot download a {type(value).__name__}')
        self._current_device()
        key = (array.shape, array.dtype.str)
        staging = self._host_out.get(key)
        if staging is None:
            staging = self._host_out[key] = PinnedArray(array.shape, array.dtype)
        array.copy_to_host(staging, self.stream)
        self.stream.synchronize()
        self._pending.clear()
        return staging.array.copy()

    def close(self) -> None:
        """Release contexts, engines, buffers and the stream (contexts before their engines)."""
        if self._stream is not None:
            try:
                self._stream.synchronize()
            except BackendError as exc:
                _LOG.warning('while closing the tensorrt backend: %s', exc)
        self._contexts.clear()
        self._engines.clear()
        self._runtime = None  # after the engines it deserialized
        if self._activations is not None:  # after the contexts that use it
            activations, self._activations = self._activations, None
            activations.free()
        for output in self._outputs.values():
            output.array.free()
        self._outputs.clear()
        for buffers in self._pool.values():
            for buffer in buffers:
                buffer.free()
        self._pool.clear()
        for pinned in (*self._staging.values(), *self._host_out.values()):
            pinned.free()
        self._staging.clear()
        self._host_out.clear()
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.close()

    def __enter__(self) -> TensorRTBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
