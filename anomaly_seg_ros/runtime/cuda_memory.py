"""CUDA device memory, pinned host memory and streams through cuda-python (no TensorRT, no torch).

The TensorRT backend keeps every stage's tensors in :class:`DeviceArray` buffers and runs all
work on one non-default :class:`Stream`; only the camera frame goes up (through a pinned staging
buffer) and the requested outputs come down. NVIDIA's own samples do device memory the same way
since TensorRT 10.13 (cuda-python instead of pycuda).

cuda-python is imported lazily: ``from cuda.bindings import runtime`` (cuda-bindings 12.6+), and
only where that module is missing the old ``from cuda import cudart`` (removed in cuda-bindings 13).
Every runtime call returns ``(err, *values)``; :func:`_call` raises :class:`~..errors.BackendError`
with ``cudaGetErrorName`` on failure.
"""
from __future__ import annotations

import ctypes
import importlib.metadata
import weakref
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import BackendError

__all__ = [
    'DeviceArray',
    'DeviceInfo',
    'PinnedArray',
    'Stream',
    'device_count',
    'device_info',
    'load_cudart',
    'set_device',
]

_INSTALL_HINT = ("install cuda-python's runtime bindings for the driver's CUDA major version: "
                 "`pip install 'cuda-bindings>=12.6,<13'` (requirements/gpu-cuda12.txt; any driver from CUDA 12 on, "
                 "JetPack 6 included) or `pip install 'cuda-bindings>=13,<14'` (requirements/gpu-cuda13.txt; CUDA 13 "
                 'drivers only)')
# Errors of cudaGetDeviceCount that mean the bindings and the driver do not fit, not "no GPU".
_DRIVER_MISMATCH = ('cudaErrorInsufficientDriver', 'cudaErrorCallRequiresNewerDriver', 'cudaErrorSystemDriverMismatch',
                    'cudaErrorCompatNotSupportedOnDevice')
_cudart: ModuleType | None = None


def load_cudart() -> ModuleType:
    """The cuda-python runtime module; raises :class:`BackendError` saying what to install."""
    global _cudart
    if _cudart is None:
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            try:
                from cuda import cudart  # cuda-python < 12.6; removed in cuda-bindings 13
            except ImportError as exc:
                raise BackendError(f'CUDA runtime bindings are not installed; {_INSTALL_HINT}') from exc
        _cudart = cudart
    return _cudart


def _error_name(cudart: ModuleType, err: Any) -> str:
    try:
        name = cudart.cudaGetErrorName(err)[1]
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:  # noqa: BLE001 - reporting an error must not raise another
        return repr(err)


def _call(what: str, result: Any) -> Any:
    """Check a cuda-python ``(err, *values)`` result; returns the value(s) without the error."""
    cudart = load_cudart()
    if isinstance(result, tuple):
        err, values = result[0], result[1:]
    else:
        err, values = result, ()
    if int(getattr(err, 'value', err)) != 0:
        raise BackendError(f'CUDA call {what} failed: {_error_name(cudart, err)}')
    if not values:
        return None
    return values[0] if len(values) == 1 else values


@dataclass(frozen=True)
class DeviceInfo:
    """A GPU as TensorRT engines care about it: name and compute capability (major, minor)."""

    index: int
    name: str
    compute_capability: tuple[int, int]

    @property
    def compute_capability_str(self) -> str:
        return f'{self.compute_capability[0]}.{self.compute_capability[1]}'


def device_count() -> int:
    """Number of visible CUDA devices: 0 only where CUDA reports none (``cudaErrorNoDevice``).

    Any other error is a :class:`BackendError` that names it: a driver older than the bindings
    (cuda-bindings 13 on a CUDA 12 driver fails every call) must not read as "no GPU visible".
    """
    cudart = load_cudart()
    err, count = cudart.cudaGetDeviceCount()
    if int(getattr(err, 'value', err)) == 0:
        return int(count)
    name = _error_name(cudart, err)
    if name == 'cudaErrorNoDevice':
        return 0
    if name in _DRIVER_MISMATCH:
        raise BackendError(f'CUDA call cudaGetDeviceCount failed: {name}: the NVIDIA driver '
                           f'({_driver_version(cudart)}) does not support these CUDA runtime bindings '
                           f'({_bindings_version()}); {_INSTALL_HINT}')
    raise BackendError(f'CUDA call cudaGetDeviceCount failed: {name} (driver {_driver_version(cudart)}, '
                       f'{_bindings_version()})')


def _driver_version(cudart: ModuleType) -> str:
    """'CUDA 12.6' from cudaDriverGetVersion (12060), or 'version unknown'."""
    try:
        err, version = cudart.cudaDriverGetVersion()
        if int(getattr(err, 'value', err)) == 0 and int(version) > 0:
            return f'CUDA {int(version) // 1000}.{int(version) % 1000 // 10}'
    except Exception:  # noqa: BLE001 - only used in an error message
        pass
    return 'version unknown'


def _bindings_version() -> str:
    try:
        return f'cuda-bindings {importlib.metadata.version("cuda-bindings")}'
    except importlib.metadata.PackageNotFoundError:
        return 'cuda-bindings version unknown'


def device_info(index: int = 0) -> DeviceInfo:
    """Name and compute capability of CUDA device ``index``."""
    cudart = load_cudart()
    props = _call('cudaGetDeviceProperties', cudart.cudaGetDeviceProperties(index))
    name = props.name
    if isinstance(name, bytes):
        name = name.split(b'\0', 1)[0].decode(errors='replace')
    return DeviceInfo(index, str(name).strip(), (int(props.major), int(props.minor)))


def set_device(index: int) -> None:
    """Make device ``index`` current for this thread."""
    count = device_count()
    if index < 0 or index >= count:
        raise BackendError(f'CUDA device {index} does not exist ({count} visible); check CUDA_VISIBLE_DEVICES '
                           'and the device parameter (cuda or cuda:N)')
    _call('cudaSetDevice', load_cudart().cudaSetDevice(index))


class Stream:
    """A non-blocking CUDA stream (never synchronizes with the legacy default stream)."""

    def __init__(self) -> None:
        cudart = load_cudart()
        self._stream: Any = _call('cudaStreamCreateWithFlags',
                                  cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking))

    @property
    def handle(self) -> int:
        """The ``cudaStream_t`` as an integer, as TensorRT's ``execute_async_v3`` takes it."""
        if self._stream is None:
            raise BackendError('CUDA stream used after close()')
        return int(self._stream)

    @property
    def native(self) -> Any:
        """The cuda-python ``cudaStream_t`` object."""
        if self._stream is None:
            raise BackendError('CUDA stream used after close()')
        return self._stream

    def synchronize(self) -> None:
        _call('cudaStreamSynchronize', load_cudart().cudaStreamSynchronize(self.native))

    def close(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            _call('cudaStreamDestroy', load_cudart().cudaStreamDestroy(stream))

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _free_device(ptr: int) -> None:
    if _cudart is not None:
        _cudart.cudaFree(ptr)


def _free_host(ptr: int) -> None:
    if _cudart is not None:
        _cudart.cudaFreeHost(ptr)


class DeviceArray:
    """A C-contiguous array in device memory: ``shape``, numpy ``dtype``, ``ptr`` (int).

    Freed by :meth:`free` or when garbage-collected. Copies are asynchronous on ``stream``; the
    host side of an async copy must be pinned memory (:class:`PinnedArray`) and stay alive until the
    stream is synchronized.
    """

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype | str) -> None:
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        cudart = load_cudart()
        self.ptr: int = int(_call('cudaMalloc', cudart.cudaMalloc(max(self.nbytes, 1))))
        self._finalizer = weakref.finalize(self, _free_device, self.ptr)

    def copy_from_host(self, host: PinnedArray | np.ndarray, stream: Stream) -> None:
        array = host.array if isinstance(host, PinnedArray) else host
        self._check_same(array.shape, array.dtype, 'host')
        if not array.flags.c_contiguous:
            raise ValueError('host array must be C-contiguous')
        cudart = load_cudart()
        _call('cudaMemcpyAsync(HostToDevice)', cudart.cudaMemcpyAsync(
            self.ptr, array.ctypes.data, self.nbytes, cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, stream.native))

    def copy_to_host(self, host: PinnedArray | np.ndarray, stream: Stream) -> None:
        array = host.array if isinstance(host, PinnedArray) else host
        self._check_same(array.shape, array.dtype, 'host')
        if not array.flags.c_contiguous or not array.flags.writeable:
            raise ValueError('host array must be C-contiguous and writeable')
        cudart = load_cudart()
        _call('cudaMemcpyAsync(DeviceToHost)', cudart.cudaMemcpyAsync(
            array.ctypes.data, self.ptr, self.nbytes, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream.native))

    def copy_from_device(self, source: DeviceArray | int, stream: Stream) -> None:
        """Device-to-device copy from another :class:`DeviceArray` (same shape and dtype) or a raw pointer."""
        if isinstance(source, DeviceArray):
            self._check_same(source.shape, source.dtype, 'source')
            source = source.ptr
        cudart = load_cudart()
        _call('cudaMemcpyAsync(DeviceToDevice)', cudart.cudaMemcpyAsync(
            self.ptr, int(source), self.nbytes, cudart.cudaMemcpyKind.cudaMemcpyDeviceToDevice, stream.native))

    def _check_same(self, shape: tuple[int, ...], dtype: np.dtype, what: str) -> None:
        if tuple(shape) != self.shape or np.dtype(dtype) != self.dtype:
            raise ValueError(f'{what} array {tuple(shape)} {np.dtype(dtype)} does not match the device array '
                             f'{self.shape} {self.dtype}')

    @property
    def alive(self) -> bool:
        return self._finalizer.alive

    def free(self) -> None:
        self._finalizer()

    def __repr__(self) -> str:
        return f'DeviceArray(shape={self.shape}, dtype={self.dtype}, ptr=0x{self.ptr:x})'


class PinnedArray:
    """A numpy array in page-locked host memory (``cudaMallocHost``): the staging side of async copies."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype | str) -> None:
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        count = int(np.prod(self.shape, dtype=np.int64))
        nbytes = max(count * self.dtype.itemsize, 1)
        ptr = int(_call('cudaMallocHost', load_cudart().cudaMallocHost(nbytes)))
        self._finalizer = weakref.finalize(self, _free_host, ptr)
        raw = np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_uint8)), (nbytes,))
        self.array: np.ndarray = raw[: count * self.dtype.itemsize].view(self.dtype).reshape(self.shape)

    def free(self) -> None:
        self._finalizer()
