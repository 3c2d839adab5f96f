"""cuda-python device buffers, pinned buffers and streams.

The GPU tests need CUDA, cuda-bindings and PyTorch (as the independent reference for the device
memory), not TensorRT; they skip elsewhere with the reason. Error handling is tested everywhere with a
fake runtime module.
"""
from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import numpy as np
import pytest

from anomaly_seg_ros.errors import BackendError
from anomaly_seg_ros.runtime import cuda_memory


def _gpu_skip_reason() -> str | None:
    if importlib.util.find_spec('cuda') is None:
        return 'cuda-bindings (cuda-python) not installed'
    if importlib.util.find_spec('torch') is None:
        return 'PyTorch not installed (the reference for device memory)'
    import torch

    if not torch.cuda.is_available():
        return 'no CUDA GPU visible'
    try:
        if cuda_memory.device_count() < 1:
            return 'cuda-python sees no GPU'
    except BackendError as exc:
        return str(exc)
    return None


_REASON = _gpu_skip_reason()


def gpu(test):
    """Marks a test as needing the GPU machine (CUDA + cuda-bindings + torch), skipped with the reason."""
    skip = pytest.mark.skipif(_REASON is not None, reason=f'needs a CUDA GPU with cuda-bindings and torch: {_REASON}')
    return pytest.mark.gpu(skip(test))


class _FakeError:
    def __init__(self, value: int) -> None:
        self.value = value


def test_cuda_errors_raise_backend_error_with_the_cuda_error_name(monkeypatch):
    fake = SimpleNamespace(cudaGetErrorName=lambda err: (_FakeError(0), b'cudaErrorMemoryAllocation'))
    monkeypatch.setattr(cuda_memory, '_cudart', fake)
    with pytest.raises(BackendError, match=r'CUDA call cudaMalloc failed: cudaErrorMemoryAllocation'):
        cuda_memory._call('cudaMalloc', (_FakeError(2), 0))
    assert cuda_memory._call('cudaMalloc', (_FakeError(0), 1234)) == 1234
    assert cuda_memory._call('cudaStreamSynchronize', (_FakeError(0),)) is None


_ERROR_NAMES = {0: 'cudaSuccess', 35: 'cudaErrorInsufficientDriver', 100: 'cudaErrorNoDevice', 999: 'cudaErrorUnknown'}


def _fake_cudart(count_error: int, count: int = 0) -> SimpleNamespace:
    return SimpleNamespace(
        cudaGetDeviceCount=lambda: (_FakeError(count_error), count),
        cudaGetErrorName=lambda err: (_FakeError(0), _ERROR_NAMES[err.value].encode()),
        cudaDriverGetVersion=lambda: (_FakeError(0), 12060),
        cudaSetDevice=lambda index: (_FakeError(0),))


@pytest.mark.parametrize('error, count, expected', [(0, 2, 2), (100, 0, 0)])
def test_device_count_is_zero_only_where_cuda_finds_no_device(monkeypatch, error, count, expected):
    monkeypatch.setattr(cuda_memory, '_cudart', _fake_cudart(error, count))
    assert cuda_memory.device_count() == expected


def test_bindings_newer_than_the_driver_are_named_not_taken_for_no_gpu(monkeypatch):
    monkeypatch.setattr(cuda_memory, '_cudart', _fake_cudart(35))
    with pytest.raises(BackendError, match=r'cudaErrorInsufficientDriver: the NVIDIA driver \(CUDA 12\.6\) does not '
                                           r"support these CUDA runtime bindings.*'cuda-bindings>=12\.6,<13'") as info:
        cuda_memory.set_device(0)
    assert 'CUDA_VISIBLE_DEVICES' not in str(info.value)
    monkeypatch.setattr(cuda_memory, '_cudart', _fake_cudart(999))
    with pytest.raises(BackendError, match=r'cudaGetDeviceCount failed: cudaErrorUnknown \(driver CUDA 12\.6'):
        cuda_memory.device_count()


def test_missing_cuda_bindings_say_what_to_install(monkeypatch):
    if importlib.util.find_spec('cuda') is not None:
        pytest.skip('cuda-python is installed here')
    monkeypatch.setattr(cuda_memory, '_cudart', None)
    with pytest.raises(BackendError, match=r"pip install 'cuda-bindings"):
        cuda_memory.load_cudart()


@gpu
def test_device_info_names_the_gpu_and_its_compute_capability():
    import torch

    info = cuda_memory.device_info(0)
    assert info.compute_capability == torch.cuda.get_device_capability(0)
    assert info.name == torch.cuda.get_device_name(0)


@gpu
def test_host_device_round_trip_through_pinned_memory_on_a_non_default_stream():
    with cuda_memory.Stream() as stream:
        assert stream.handle != 0
        data = np.random.default_rng(0).random((1, 3, 37, 53), dtype=np.float32)
        pinned = cuda_memory.PinnedArray(data.shape, data.dtype)
        pinned.array[...] = data
        device = cuda_memory.DeviceArray(data.shape, data.dtype)
        device.copy_from_host(pinned, stream)
        back = cuda_memory.PinnedArray(data.shape, data.dtype)
        device.copy_to_host(back, stream)
        stream.synchronize()
        np.testing.assert_array_equal(back.array, data)
        device.free()
        assert not device.alive
        device.free()  # idempotent


@gpu
def test_device_memory_matches_what_torch_sees():
    import torch

    with cuda_memory.Stream() as stream:
        values = torch.arange(24, dtype=torch.int32, device='cuda').reshape(2, 3, 4)
        torch.cuda.synchronize()
        device = cuda_memory.DeviceArray((2, 3, 4), np.int32)
        device.copy_from_device(values.data_ptr(), stream)  # device-to-device from torch's buffer
        host = np.empty((2, 3, 4), np.int32)
        device.copy_to_host(host, stream)
        stream.synchronize()
        np.testing.assert_array_equal(host, values.cpu().numpy())
        # ...and the other way: torch reads what we wrote.
        target = torch.zeros(2, 3, 4, dtype=torch.int32, device='cuda')
        torch.cuda.synchronize()
        cudart = cuda_memory.load_cudart()
        cuda_memory._call('cudaMemcpy', cudart.cudaMemcpy(target.data_ptr(), device.ptr, device.nbytes,
                                                          cudart.cudaMemcpyKind.cudaMemcpyDeviceToDevice))
        assert torch.equal(target, values)


@gpu
def test_shape_mismatch_and_impossible_allocation_are_reported():
    with cuda_memory.Stream() as stream:
        device = cuda_memory.DeviceArray((4,), np.float32)
        with pytest.raises(ValueError, match='does not match'):
            device.copy_from_host(np.zeros(5, np.float32), stream)
    with pytest.raises(BackendError, match='cudaMalloc failed: cudaError'):
        cuda_memory.DeviceArray((1 << 50,), np.float32)


@gpu
def test_invalid_device_index_is_refused():
    with pytest.raises(BackendError, match='does not exist'):
        cuda_memory.set_device(cuda_memory.device_count())
