"""Device strings ('cpu', 'cuda', 'cuda:N'), parsed once for the ONNX Runtime and TensorRT backends."""
from __future__ import annotations

import pytest

from anomaly_seg_ros.errors import BackendError
from anomaly_seg_ros.runtime.base import parse_device
from anomaly_seg_ros.runtime.onnxruntime_backend import _resolve_device
from anomaly_seg_ros.runtime.tensorrt_backend import parse_cuda_device


@pytest.mark.parametrize(('text', 'parsed'), [
    ('cpu', ('cpu', 0)), (' CPU ', ('cpu', 0)), ('cuda', ('cuda', 0)), ('cuda:0', ('cuda', 0)), ('CUDA:3', ('cuda', 3)),
    ('cuda:', None), ('cuda:x', None), ('cuda:1:2', None), ('cpu:0', None), ('gpu', None), ('', None),
])
def test_device_strings_parse_to_kind_and_index(text, parsed):
    assert parse_device(text) == parsed


def test_each_backend_says_what_it_makes_of_a_device():
    assert _resolve_device(None, ['CPUExecutionProvider']) == ('cpu', 0)
    assert _resolve_device(None, ['CUDAExecutionProvider']) == ('cuda', 0)
    assert _resolve_device('cuda:2', ['CUDAExecutionProvider']) == ('cuda', 2)
    with pytest.raises(BackendError, match='not cpu, cuda or cuda:N'):
        _resolve_device('cuda:x', ['CUDAExecutionProvider'])
    with pytest.raises(BackendError, match='no CUDA provider'):
        _resolve_device('cuda', ['CPUExecutionProvider'])
    assert parse_cuda_device(' CUDA:1 ') == 1
    for device in ('cpu', 'cuda:x', 'gpu'):
        with pytest.raises(BackendError, match='runs on a GPU only'):
            parse_cuda_device(device)
