"""Stand-ins for the ``tensorrt`` module and the cuda-python buffers, for testing the logic around them
on machines without TensorRT or a GPU.

The fake keeps TensorRT's Python API shape (names, bool/None returns, enum members with ``.name``) for
the version given; members that a version removed are absent (11.x: no ``BuilderFlag.FP16``, no
``EXPLICIT_BATCH``, no ``device_memory_size``; 10.0: no ``device_memory_size_v2`` nor
``set_device_memory``), so code that touches them fails as it would on the real library. Like
TensorRT, it sends every message to the first logger it was given. A "plan" is JSON describing the
engine's I/O tensors and activation memory size; the fake execution context fills outputs with
constants and checks that a ``USER_MANAGED`` context was given enough live memory.
"""
from __future__ import annotations

import itertools
import json
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx

from anomaly_seg_ros.runtime.cuda_memory import DeviceInfo


class Member:
    """An enum member: hashable, ``.name``, ``int()`` gives its value."""

    def __init__(self, name: str, value: int) -> None:
        self.name, self.value = name, value

    def __int__(self) -> int:
        return self.value

    def __repr__(self) -> str:
        return f'<{self.name}: {self.value}>'


def _enum(*names: str, start: int = 0) -> SimpleNamespace:
    return SimpleNamespace(**{name: Member(name, start + i) for i, name in enumerate(names)})


_NP_TO_TRT = {'float32': 'FLOAT', 'int32': 'INT32', 'float16': 'HALF'}
_ONNX_TO_NP = {onnx.TensorProto.FLOAT: 'float32', onnx.TensorProto.INT32: 'int32', onnx.TensorProto.FLOAT16: 'float16'}


def make_fake_trt(version: str = '10.3.0', *, fail_build: bool = False, fail_execute: bool = False,
                  fail_address: bool = False, parse_errors: list[tuple[str, str, str]] | None = None) -> Any:
    """A fake ``tensorrt`` module of ``version``; ``calls`` records what the code under test did."""
    major, minor = (int(v) for v in version.split('.')[:2])
    trt = SimpleNamespace(__version__=version)
    calls: dict[str, list] = {'deserialize': [], 'network_flags': [], 'builder_flags': [], 'parsed': [],
                              'set_address': [], 'execute': [], 'pinned': [], 'workspace': [], 'timing_cache': [],
                              'cleared_flags': [], 'loggers': [], 'contexts': [], 'device_memory': [],
                              'network': []}
    trt.calls = calls
    process = {'logger': None}  # TensorRT keeps the first logger it is given and logs everything there

    def log(severity_name: str, msg: str) -> None:
        process['logger'].log(getattr(ILogger.Severity, severity_name), msg)

    def register(logger: Any) -> None:
        calls['loggers'].append(logger)
        if process['logger'] is None:
            process['logger'] = logger

    trt.DataType = _enum('FLOAT', 'HALF', 'INT8', 'INT32', 'BOOL')
    trt.float32, trt.float16, trt.int32 = trt.DataType.FLOAT, trt.DataType.HALF, trt.DataType.INT32
    trt.TensorIOMode = _enum('NONE', 'INPUT', 'OUTPUT')
    trt.MemoryPoolType = _enum('WORKSPACE')
    trt.LayerType = _enum('CONVOLUTION', 'NORMALIZATION', 'REDUCE', 'SOFTMAX', 'TOPK', 'ELEMENTWISE')
    # Values differ between versions, as in the real library: code must never rely on them.
    if major >= 11:
        trt.NetworkDefinitionCreationFlag = _enum('PREFER_AOT_PYTHON_PLUGINS', 'STRONGLY_TYPED', start=3)
        trt.BuilderFlag = _enum('DEBUG', 'GPU_FALLBACK', 'REFIT', 'TF32', 'VERSION_COMPATIBLE')
        trt.ExecutionContextAllocationStrategy = _enum('USER_MANAGED', 'STATIC', 'ON_PROFILE_CHANGE')
    else:
        trt.NetworkDefinitionCreationFlag = _enum('EXPLICIT_BATCH', 'EXPLICIT_PRECISION', 'STRONGLY_TYPED')
        trt.BuilderFlag = _enum('FP16', 'INT8', 'DEBUG', 'GPU_FALLBACK', 'REFIT', 'TF32',
                                'OBEY_PRECISION_CONSTRAINTS', 'VERSION_COMPATIBLE')
        trt.ExecutionContextAllocationStrategy = _enum('STATIC', 'ON_PROFILE_CHANGE', 'USER_MANAGED')
    v2_memory_api = (major, minor) >= (10, 1)  # device_memory_size_v2, set_device_memory(ptr, size)

    class ILogger:
        Severity = _enum('INTERNAL_ERROR', 'ERROR', 'WARNING', 'INFO', 'VERBOSE')

        def __init__(self) -> None:
            pass

    trt.ILogger = ILogger

    class Engine:
        def __init__(self, tensors: list[dict], device_memory: int) -> None:
            self.tensors = {t['name']: t for t in tensors}
            self.order = [t['name'] for t in tensors]
            self.memory = device_memory

        if v2_memory_api:
            device_memory_size_v2 = property(lambda self: self.memory)
        if major < 11:  # deprecated from 10.1, removed in 11
            device_memory_size = property(lambda self: self.memory)

        @property
        def num_io_tensors(self) -> int:
            return len(self.order)

        def get_tensor_name(self, index: int) -> str:
            return self.order[index]

        def get_tensor_mode(self, name: str) -> Member:
            return getattr(trt.TensorIOMode, self.tensors[name]['mode'])

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            return tuple(self.tensors[name]['shape'])

        def get_tensor_dtype(self, name: str) -> Member:
            return getattr(trt.DataType, _NP_TO_TRT[self.tensors[name]['dtype']])

        def create_execution_context(self, strategy: Member | None = None) -> Context:
            strategy = strategy or trt.ExecutionContextAllocationStrategy.STATIC
            calls['contexts'].append(strategy.name)
            return Context(self, strategy)

    class Context:
        def __init__(self, engine: Engine, strategy: Member) -> None:
            self.engine, self.addresses = engine, {}
            self.user_managed = strategy is trt.ExecutionContextAllocationStrategy.USER_MANAGED
            self.memory: tuple[int, int | None] | None = None

        if v2_memory_api:
            def set_device_memory(self, ptr: int, size: int) -> None:
                calls['device_memory'].append((ptr, size))
                if size < self.engine.memory:
                    log('ERROR', f'fake: device memory of {size} bytes is less than the {self.engine.memory} needed')
                self.memory = (ptr, size)

        if major < 11:
            def _set_memory_pointer(self, ptr: int) -> None:
                calls['device_memory'].append((ptr, None))
                self.memory = (ptr, None)

            device_memory = property(None, _set_memory_pointer)

        def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
            return True

        def set_tensor_address(self, name: str, ptr: int) -> bool:
            calls['set_address'].append((name, ptr))
            if fail_address or name not in self.engine.tensors:
                return False
            self.addresses[name] = ptr
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            calls['execute'].append((self.engine.order, stream_handle))
            if fail_execute:
                log('ERROR', 'fake: an illegal memory access was encountered')
                return False
            if self.user_managed:  # TensorRT would use (and overrun) whatever memory it was given
                assert self.memory is not None, 'USER_MANAGED context run without device memory'
                buffer = FakeDeviceArray.registry[self.memory[0]]  # KeyError: freed or never allocated
                assert buffer.data.nbytes >= self.engine.memory, 'activation memory too small'
            for name, tensor in self.engine.tensors.items():
                array = FakeDeviceArray.registry[self.addresses[name]]  # every tensor must be bound
                assert array.shape == tuple(tensor['shape']) and str(array.dtype) == tensor['dtype'], name
                if tensor['mode'] == 'OUTPUT':
                    array.data[...] = 1 if tensor['dtype'] == 'int32' else 0.5
            return True

    class Runtime:
        def __init__(self, logger: ILogger) -> None:
            register(logger)

        def deserialize_cuda_engine(self, plan: bytes) -> Engine | None:
            calls['deserialize'].append(len(plan))
            try:
                data = json.loads(plan.decode())
                return Engine(data['tensors'], int(data.get('device_memory', 0)))
            except (ValueError, KeyError, UnicodeDecodeError):
                log('ERROR', 'fake: the plan is corrupt')
                return None

    trt.Runtime = Runtime

    class Tensor:
        def __init__(self, name: str, shape: list[int], dtype: str) -> None:
            self.name, self.shape, self.np_dtype = name, shape, dtype
            self.dtype = getattr(trt.DataType, _NP_TO_TRT[dtype])

    class Layer:
        def __init__(self, layer_type: Member, dtype: str = 'float32') -> None:
            self.type, self.precision, self.output_types = layer_type, None, {}
            self.num_inputs = self.num_outputs = 1
            self.input, self.output = Tensor('in', [1], dtype), Tensor('out', [1], dtype)

        def get_input(self, index: int) -> Tensor:
            return self.input

        def get_output(self, index: int) -> Tensor:
            return self.output

        def set_output_type(self, index: int, dtype: Member) -> None:
            self.output_types[index] = dtype

    class Network:
        def __init__(self, flags: int) -> None:
            self.flags, self.inputs, self.outputs = flags, [], []
            # Integer reduce/top-k (index arithmetic) beside the float layers the FP16 build pins to FP32.
            self.layers = [Layer(trt.LayerType.CONVOLUTION), Layer(trt.LayerType.NORMALIZATION),
                           Layer(trt.LayerType.REDUCE), Layer(trt.LayerType.SOFTMAX),
                           Layer(trt.LayerType.REDUCE, 'int32'), Layer(trt.LayerType.TOPK, 'int32')]
            calls['network'].append(self)

        num_inputs = property(lambda self: len(self.inputs))
        num_layers = property(lambda self: len(self.layers))

        def get_input(self, index: int) -> Tensor:
            return self.inputs[index]

        def get_layer(self, index: int) -> Layer:
            return self.layers[index]

    class OnnxParser:
        def __init__(self, network: Network, logger: ILogger) -> None:
            calls['loggers'].append(logger)
            self.network = network
            self.errors = [SimpleNamespace(desc=lambda d=d: d, node_name=lambda n=n: n, node_operator=lambda o=o: o)
                           for n, o, d in (parse_errors or [])]

        num_errors = property(lambda self: len(self.errors))

        def get_error(self, index: int) -> Any:
            return self.errors[index]

        def parse_from_file(self, path: str) -> bool:
            calls['parsed'].append(path)
            if self.errors:
                return False
            graph = onnx.load(path, load_external_data=False).graph
            for kind, values in (('inputs', graph.input), ('outputs', graph.output)):
                for value in values:
                    tensor_type = value.type.tensor_type
                    getattr(self.network, kind).append(Tensor(
                        value.name, [d.dim_value for d in tensor_type.shape.dim], _ONNX_TO_NP[tensor_type.elem_type]))
            return True

    trt.OnnxParser = OnnxParser

    class TimingCache:
        def __init__(self, data: bytes) -> None:
            self.data = bytes(data)

        def serialize(self) -> bytes:
            return self.data + b'+'

    class BuilderConfig:
        def __init__(self) -> None:
            self.cache = None

        def set_memory_pool_limit(self, pool: Member, size: int) -> None:
            calls['workspace'].append((pool.name, size))

        def set_flag(self, flag: Member) -> None:
            calls['builder_flags'].append(flag.name)

        def clear_flag(self, flag: Member) -> None:
            calls['cleared_flags'].append(flag.name)

        def create_timing_cache(self, data: bytes) -> TimingCache:
            calls['timing_cache'].append(bytes(data))
            return TimingCache(data)

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            self.cache = cache
            return True

        def get_timing_cache(self) -> TimingCache:
            return self.cache

    class Builder:
        def __init__(self, logger: ILogger) -> None:
            register(logger)

        def create_network(self, flags: int) -> Network:
            calls['network_flags'].append(flags)
            return Network(flags)

        def create_builder_config(self) -> BuilderConfig:
            return BuilderConfig()

        def build_serialized_network(self, network: Network, config: BuilderConfig) -> bytes | None:
            calls['pinned'].append(sum(layer.precision is trt.float32 for layer in network.layers))
            for tactic in range(3):  # a real build logs thousands of these
                log('VERBOSE', f'fake: timing tactic {tactic}')
            log('INFO', 'fake: engine generation completed')
            if fail_build:
                log('ERROR', 'fake: out of workspace')
                return None
            tensors = [{'name': t.name, 'shape': t.shape, 'dtype': t.np_dtype, 'mode': mode}
                       for mode, group in (('INPUT', network.inputs), ('OUTPUT', network.outputs)) for t in group]
            return json.dumps({'tensors': tensors, 'device_memory': 4096 * len(tensors)}).encode()

    trt.Builder = Builder
    return trt


def engine_plan(spec: Any, *, rename: dict[str, str] | None = None, device_memory: int = 8192) -> bytes:
    """A fake plan with the I/O tensors of a :class:`StageSpec` (``rename`` to make a mismatch) that needs
    ``device_memory`` bytes of activation memory."""
    rename = rename or {}
    tensors = [{'name': rename.get(t.name, t.name), 'shape': list(t.shape), 'dtype': t.dtype, 'mode': mode}
               for mode, group in (('INPUT', spec.inputs), ('OUTPUT', spec.outputs)) for t in group]
    return json.dumps({'tensors': tensors, 'device_memory': device_memory}).encode()


class FakeDeviceArray:
    """A "device" buffer in host memory, found by its fake pointer."""

    registry: dict[int, FakeDeviceArray] = {}
    _ptrs = itertools.count(0x7F0000001000, 0x1000)
    allocations = 0

    def __init__(self, shape: tuple[int, ...], dtype: Any) -> None:
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.data = np.zeros(self.shape, self.dtype)
        self.ptr = next(self._ptrs)
        self.registry[self.ptr] = self
        type(self).allocations += 1

    def copy_from_host(self, host: Any, stream: Any) -> None:
        assert stream.handle, 'copies run on the non-default stream'
        self.data[...] = host.array

    def copy_to_host(self, host: Any, stream: Any) -> None:
        host.array[...] = self.data

    def free(self) -> None:
        self.registry.pop(self.ptr, None)


class FakePinnedArray:
    def __init__(self, shape: tuple[int, ...], dtype: Any) -> None:
        self.array = np.zeros(shape, dtype)

    def free(self) -> None:
        pass


class FakeStream:
    handle = 0x5EED

    def __init__(self) -> None:
        self.synchronized = 0

    def synchronize(self) -> None:
        self.synchronized += 1

    def close(self) -> None:
        pass


def patch_cuda(monkeypatch: Any, compute_capability: tuple[int, int] = (8, 7), name: str = 'Orin') -> None:
    """Replace cuda-python in the TensorRT modules by the fakes above (one GPU)."""
    from anomaly_seg_ros.runtime import cuda_memory, tensorrt_backend

    monkeypatch.setattr(cuda_memory, 'set_device', lambda index: None)
    monkeypatch.setattr(cuda_memory, 'device_info', lambda index=0: DeviceInfo(index, name, compute_capability))
    monkeypatch.setattr(tensorrt_backend, 'DeviceArray', FakeDeviceArray)
    monkeypatch.setattr(tensorrt_backend, 'PinnedArray', FakePinnedArray)
    monkeypatch.setattr(tensorrt_backend, 'Stream', FakeStream)


def patch_trt(monkeypatch: Any, trt: Any) -> None:
    from anomaly_seg_ros.export import tensorrt_build
    from anomaly_seg_ros.runtime import tensorrt_backend

    monkeypatch.setattr(tensorrt_backend, 'import_tensorrt', lambda: trt)
    monkeypatch.setattr(tensorrt_build, 'import_tensorrt', lambda: trt)
