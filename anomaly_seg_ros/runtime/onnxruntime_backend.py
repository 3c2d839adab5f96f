"""ONNX Runtime backend: one InferenceSession per stage graph (``<stage>.onnx``).

CPU execution provider by default; the CUDA provider where onnxruntime-gpu is installed and a GPU
is visible (``device=None`` picks it, ``device='cuda[:N]'`` requires it). With CUDA, values stay on
the GPU between stages: :meth:`upload` returns a device ``OrtValue``, :meth:`run` binds inputs and
outputs with IOBinding, and only :meth:`download` copies to the host.

Every file is opened and checked against :func:`..stages.stage_specs` when the backend is created,
so a missing, truncated or mismatched graph fails at start-up with a :class:`~..errors.ModelError`
naming the file, never in the middle of a frame.
"""
from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendError, ModelError
from ..model_config import ModelConfig
from ..stages import STAGE_ORDER, StageSpec, stage_specs
from .base import parse_device
from .stage_files import EXPORT_COMMAND, ONNX_INT8, check_graph_io, check_graph_metadata, onnx_format, stage_file

__all__ = ['OnnxRuntimeBackend']

_LOG = logging.getLogger(__name__)
_ORT_DTYPES = {'tensor(float)': 'float32', 'tensor(int32)': 'int32', 'tensor(float16)': 'float16',
               'tensor(int64)': 'int64', 'tensor(double)': 'float64', 'tensor(bool)': 'bool'}
_GPU_HINT = ('install onnxruntime-gpu instead of onnxruntime (`pip uninstall -y onnxruntime`, then '
             '`pip install -r requirements/gpu-cuda12.txt` or gpu-cuda13.txt for the driver\'s CUDA major version, '
             'with that CUDA\'s runtime and cuDNN 9; on Jetson NVIDIA\'s JetPack build, see the README), '
             'or use device cpu')


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendError('onnxruntime is not installed; `pip install onnxruntime` (CPU) or '
                           '`pip install onnxruntime-gpu` (CUDA), see requirements/') from exc
    return onnxruntime


def _resolve_device(device: str | None, available: Collection[str]) -> tuple[str, int]:
    """('cpu', 0) or ('cuda', N) for ``device``; ``None`` picks CUDA where the provider exists."""
    has_cuda = 'CUDAExecutionProvider' in available
    if device is None:
        return ('cuda', 0) if has_cuda else ('cpu', 0)
    parsed = parse_device(device)
    if parsed is None:
        raise BackendError(f'device {device!r} is not cpu, cuda or cuda:N')
    if parsed[0] == 'cuda' and not has_cuda:
        raise BackendError(f'device {device!r} asked for, but this onnxruntime has no CUDA provider '
                           f'(available: {", ".join(available)}); {_GPU_HINT}')
    return parsed


class OnnxRuntimeBackend:
    """Runs the stage graphs of ``model_dir`` with ONNX Runtime.

    Args:
        model_dir: directory with ``model.yaml`` and ``<stage>.onnx`` files.
        config: its metadata (:func:`..model_config.load_model_config`).
        device: ``None`` (CUDA where available, else CPU), ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.
        precision: ``'fp32'`` (the ``onnx`` files), ``'fp16'`` (the ``onnx_fp16`` files made by
            ``anomaly_seg export --fp16``: FP16 inside, same float32/int32 inputs and outputs) or ``'int8'``
            (the Q/DQ ``onnx_int8`` files of ``anomaly_seg export --int8``; stages it kept in float run FP32).
        threads: intra-op threads on CPU; ``None`` lets ONNX Runtime use every physical core.
        spin: let idle worker threads spin-wait (lower latency on an otherwise idle CPU only).
        stages: stages to open (default all four).
    Raises:
        ModelError: a file is missing, truncated, corrupt or does not match the metadata.
        BackendError: onnxruntime or the requested device is unavailable.
    """

    name = 'onnxruntime'

    def __init__(self, model_dir: str | Path, config: ModelConfig, device: str | None = None, *,
                 precision: str = 'fp32', threads: int | None = None, spin: bool = False,
                 stages: Collection[str] = STAGE_ORDER) -> None:
        if precision not in ('fp32', 'fp16', 'int8'):
            raise ValueError(f"precision must be 'fp32', 'fp16' or 'int8', got {precision!r}")
        if precision == 'int8' and not any(ONNX_INT8 in config.stage(s).files for s in STAGE_ORDER):
            raise ModelError(f'{model_dir} has no INT8 graphs (model.yaml lists no onnx_int8 file); make them with '
                             f'`anomaly_seg export --models {model_dir} --out {model_dir} --int8 --calibration '
                             'DATASET:ROOT:train --validation DATASET:ROOT:val`')
        ort = _import_ort()
        self._ort = ort
        self.model_dir = Path(model_dir)
        self.config = config
        self.precision = precision
        self._spin = bool(spin)
        kind, index = _resolve_device(device, ort.get_available_providers())
        self._device_kind, self._device_index = kind, index
        self._specs: dict[str, StageSpec] = stage_specs(config)
        self._sessions: dict[str, Any] = {}
        self._paths: dict[str, Path] = {}
        for stage in stages:
            if stage not in self._specs:
                raise ValueError(f'unknown stage {stage!r}; stages: {", ".join(STAGE_ORDER)}')
            path = stage_file(self.model_dir, config, stage, onnx_format(config, stage, precision))
            self._sessions[stage] = self._open(path, self._specs[stage], threads, device is not None)
            self._paths[stage] = path
        # With CUDA, keep values on the device and bind them; on CPU numpy arrays are the values.
        self._bind = self._device_kind == 'cuda'
        self.device = 'cpu' if kind == 'cpu' else f'cuda:{index}'

    # -- opening ---------------------------------------------------------------------------------
    def _providers(self) -> list[Any]:
        if self._device_kind == 'cuda':
            cuda_options = {'device_id': self._device_index, 'cudnn_conv_algo_search': 'EXHAUSTIVE',
                            'do_copy_in_default_stream': True}
            return [('CUDAExecutionProvider', cuda_options), 'CPUExecutionProvider']
        return ['CPUExecutionProvider']

    def _session_options(self, threads: int | None) -> Any:
        options = self._ort.SessionOptions()
        options.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = self._ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = int(threads) if threads else 0
        options.inter_op_num_threads = 1
        options.enable_mem_pattern = True  # static shapes: plan memory once
        options.enable_cpu_mem_arena = True
        options.log_severity_level = 3
        # Spin-waiting worker threads shave a little latency on an idle CPU, but on a robot the CPU is
        # shared with other nodes and spinning then costs far more (measured on 2 shared cores: 189 ms
        # a frame with spinning vs 102 ms without, light model): off unless asked for.
        options.add_session_config_entry('session.intra_op.allow_spinning', '1' if self._spin else '0')
        return options

    def _open(self, path: Path, spec: StageSpec, threads: int | None, device_explicit: bool) -> Any:
        flag = {'fp16': ' --fp16', 'int8': ' --int8 ...'}.get(self.precision, '')
        fix = f're-export it with `{EXPORT_COMMAND.format(model_dir=self.model_dir)}{flag}`'
        if not path.is_file():
            raise ModelError(f'{path} is missing: the onnxruntime backend needs it for stage {spec.name!r} '
                             f'({self.precision}); {fix}')
        if path.stat().st_size == 0:
            raise ModelError(f'{path} is empty (an interrupted export or copy?); {fix}')
        try:
            session = self._ort.InferenceSession(str(path), sess_options=self._session_options(threads),
                                                 providers=self._providers())
        except Exception as exc:  # onnxruntime raises its own (pybind) exception types
            reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise ModelError(f'{path} cannot be loaded by onnxruntime (truncated or corrupt file, or an '
                             f'unsupported graph): {reason}; {fix}') from exc
        if self._device_kind == 'cuda' and 'CUDAExecutionProvider' not in session.get_providers():
            if device_explicit:
                raise BackendError(f'onnxruntime could not start its CUDA provider for {path} (CUDA/cuDNN '
                                   f'libraries missing or no GPU visible); {_GPU_HINT}')
            _LOG.warning('onnxruntime CUDA provider unavailable for %s; falling back to CPU', path)
            self._device_kind, self._device_index = 'cpu', 0
        check_graph_io(path, spec,
                       [(i.name, i.shape, _ORT_DTYPES.get(i.type, i.type)) for i in session.get_inputs()],
                       [(o.name, o.shape, _ORT_DTYPES.get(o.type, o.type)) for o in session.get_outputs()],
                       f'The file belongs to another model or an older export: {fix}.')
        check_graph_metadata(path, self.config, session.get_modelmeta().custom_metadata_map,
                             f'Use the files made for this model, or {fix}.')
        return session

    # -- Backend protocol ------------------------------------------------------------------------
    @property
    def providers(self) -> dict[str, list[str]]:
        """Execution providers each stage's session actually uses."""
        return {stage: list(session.get_providers()) for stage, session in self._sessions.items()}

    def upload(self, array: np.ndarray) -> Any:
        """Host array -> numpy (CPU) or an ``OrtValue`` on the GPU (CUDA) holding a copy."""
        array = np.ascontiguousarray(array)
        if not self._bind:
            return array
        # A value with its own memory on the bound device, filled by a copy (ortvalue_from_numpy would only
        # borrow the array's memory on the CPU, where the tests run this path).
        value = self._ort.OrtValue.ortvalue_from_shape_and_type(array.shape, array.dtype, self._device_kind,
                                                                self._device_index)
        value.update_inplace(array)
        return value

    def run(self, stage: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Run ``stage``; inputs by tensor name (numpy arrays or ``OrtValue``), outputs likewise."""
        session = self._session(stage)
        spec = self._specs[stage]
        missing = [name for name in spec.input_names if name not in inputs]
        if missing:
            raise ValueError(f'stage {stage!r} needs inputs {missing}')
        for tensor in spec.inputs:
            value = inputs[tensor.name]
            if isinstance(value, np.ndarray) and (value.shape != tensor.shape or value.dtype != tensor.dtype):
                raise ValueError(f'stage {stage!r} input {tensor.name!r}: got {value.shape} {value.dtype}, '
                                 f'expected {tensor.shape} {tensor.dtype}')
        try:
            if not self._bind:
                feeds = {name: self.download(inputs[name]) for name in spec.input_names}
                values = session.run(list(spec.output_names), feeds)
                return dict(zip(spec.output_names, values))
            binding = session.io_binding()
            host_inputs = []  # bound host arrays must outlive the run
            for name in spec.input_names:
                value = inputs[name]
                if isinstance(value, self._ort.OrtValue):
                    binding.bind_ortvalue_input(name, value)
                else:
                    host_inputs.append(np.ascontiguousarray(value))
                    binding.bind_cpu_input(name, host_inputs[-1])
            for name in spec.output_names:
                binding.bind_output(name, self._device_kind, self._device_index)
            session.run_with_iobinding(binding)
            return dict(zip(spec.output_names, binding.get_outputs()))
        except Exception as exc:  # onnxruntime's pybind exceptions
            raise BackendError(f'onnxruntime failed running stage {stage!r} ({self._paths[stage]}): {exc}') from exc

    def download(self, value: Any) -> np.ndarray:
        """numpy arrays pass through; an ``OrtValue`` (device or host) is copied to a numpy array."""
        if isinstance(value, np.ndarray):
            return value
        if isinstance(value, self._ort.OrtValue):
            return value.numpy()
        return np.asarray(value)

    def close(self) -> None:
        self._sessions.clear()

    def _session(self, stage: str) -> Any:
        try:
            return self._sessions[stage]
        except KeyError:
            opened = ', '.join(self._sessions) or 'none (closed)'
            raise ValueError(f'stage {stage!r} is not open in this backend (open: {opened})') from None

    def __enter__(self) -> OnnxRuntimeBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
