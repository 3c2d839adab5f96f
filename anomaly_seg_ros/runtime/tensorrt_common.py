"""What the TensorRT engine builder and runtime backend share, testable without TensorRT.

- :func:`import_tensorrt`: the lazy import, with what to install where it fails.
- :func:`parse_version` and :func:`check_engine_metadata`: the ``tensorrt`` section of
  ``model.yaml`` (TensorRT version, GPU name, compute capability, platform, precision) against the
  machine, checked BEFORE any plan is deserialized, so a mismatch is an
  :class:`~..errors.EngineMismatchError` that says to rebuild and how, not a null engine.
- :func:`engine_io`: an engine's input/output tensors by name (``num_io_tensors``,
  ``get_tensor_name``, ``get_tensor_mode``, ``get_tensor_shape``, ``get_tensor_dtype``).
- :func:`tensorrt_logger`: the one ``ILogger`` of the process, forwarding to :mod:`logging`; its
  :meth:`capture` collects the errors TensorRT logs during one call, for the exception message.

Decisions are made from ``trt.__version__``, never from enum integer values (they changed between
10 and 11); enum members are looked up by name.
"""
from __future__ import annotations

import contextlib
import logging
import platform
import re
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import BackendError, EngineMismatchError, ModelError
from .stage_files import TensorInfo

__all__ = [
    'SEVERITIES',
    'TRT_DTYPES',
    'LogCapture',
    'build_command',
    'check_engine_metadata',
    'engine_io',
    'import_tensorrt',
    'parse_version',
    'platform_tag',
    'tensorrt_logger',
]

_LOG = logging.getLogger('anomaly_seg_ros.tensorrt')
# TensorRT DataType member name -> numpy dtype name.
TRT_DTYPES = {'FLOAT': 'float32', 'HALF': 'float16', 'INT32': 'int32', 'INT64': 'int64', 'INT8': 'int8',
              'UINT8': 'uint8', 'BOOL': 'bool', 'BF16': 'bfloat16'}
_INSTALL_HINT = ('TensorRT Python bindings are not installed: on Jetson (JetPack 6) `sudo apt install '
                 'python3-libnvinfer` (or use the system python), on a desktop `pip install tensorrt` '
                 "matching the CUDA version; or choose backend 'onnxruntime'")


def import_tensorrt() -> Any:
    """``import tensorrt`` or :class:`BackendError` saying what to install."""
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendError(_INSTALL_HINT) from exc
    return tensorrt


def parse_version(text: str) -> tuple[int, ...]:
    """'10.3.0.30' -> (10, 3, 0, 30); trailing tags ('10.13.0.post1', '11.0.0rc1') are ignored."""
    numbers: list[int] = []
    for part in str(text).strip().split('.'):
        match = re.match(r'\d+', part)
        if not match:
            break
        numbers.append(int(match.group()))
        if match.end() != len(part):
            break
    if not numbers:
        raise ValueError(f'not a version: {text!r}')
    return tuple(numbers)


def _same_release(recorded: str, running: str) -> bool:
    """Plans only load on the TensorRT release that built them: compare every component both name."""
    a, b = parse_version(recorded), parse_version(running)
    common = min(len(a), len(b), 4)
    return common >= 3 and a[:common] == b[:common]


def platform_tag() -> str:
    """'linux-x86_64', 'linux-aarch64', ...: a plan is tied to the platform that built it."""
    return f'{platform.system().lower()}-{platform.machine().lower()}'


def build_command(model_dir: str | Path, precision: str = 'fp32') -> str:
    """The build-only command that (re)builds the engines of an exported model directory."""
    flag = {'fp16': ' --fp16', 'int8': ' --int8'}.get(precision, '')
    return f'anomaly_seg export --models {model_dir} --out {model_dir} --tensorrt{flag}'


def check_engine_metadata(meta: Mapping[str, Any] | None, model_dir: str | Path, *, trt_version: str,
                          compute_capability: tuple[int, int], gpu_name: str, machine: str) -> None:
    """Compare the engines' recorded build machine with this one; raise before any deserialization.

    Raises:
        ModelError: no engines were ever built for ``model_dir`` (no ``tensorrt`` section).
        EngineMismatchError: another TensorRT release, compute capability or platform.
    """
    if not meta:
        raise ModelError(f'{Path(model_dir) / "model.yaml"} records no TensorRT engines; build them once on '
                         f'this machine with `{build_command(model_dir)}` (takes minutes), or use backend '
                         "'onnxruntime'")
    precision = str(meta.get('precision', 'fp32'))
    rebuild = f'rebuild the engines on this machine with `{build_command(model_dir, precision)}`'
    try:
        recorded_version = str(meta['version'])
        major, minor = (int(v) for v in str(meta['compute_capability']).split('.'))
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelError(f'{Path(model_dir) / "model.yaml"}: malformed tensorrt section {dict(meta)} ({exc}); '
                         f'{rebuild}') from exc
    problems = []
    if not _same_release(recorded_version, trt_version):
        problems.append(f'built with TensorRT {recorded_version}, this machine has TensorRT {trt_version}')
    if (major, minor) != tuple(compute_capability):
        problems.append(f'built for compute capability {major}.{minor} ({meta.get("gpu_name", "unknown GPU")}), '
                        f'this GPU ({gpu_name}) has {compute_capability[0]}.{compute_capability[1]}')
    recorded_platform = meta.get('platform')
    if recorded_platform and recorded_platform != machine:
        problems.append(f'built on {recorded_platform}, this machine is {machine}')
    if problems:
        raise EngineMismatchError(f'the TensorRT engines in {model_dir} cannot run here: {"; ".join(problems)}. '
                                  f'A plan only runs on the TensorRT release, GPU architecture and platform '
                                  f'that built it: {rebuild}')
    if meta.get('gpu_name') and meta['gpu_name'] != gpu_name:
        _LOG.warning('engines in %s were built on %s, running on %s (same compute capability): they run, '
                     'but rebuilding here may be faster', model_dir, meta['gpu_name'], gpu_name)


def _dtype_name(dtype: Any) -> str:
    name = getattr(dtype, 'name', None) or str(dtype).rsplit('.', 1)[-1]
    return TRT_DTYPES.get(name, name.lower())


def engine_io(engine: Any, trt: Any) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """(inputs, outputs) of a deserialized engine as (name, shape, dtype name), by tensor name."""
    inputs: list[TensorInfo] = []
    outputs: list[TensorInfo] = []
    for index in range(int(engine.num_io_tensors)):
        name = engine.get_tensor_name(index)
        info = (name, tuple(int(d) for d in engine.get_tensor_shape(name)), _dtype_name(engine.get_tensor_dtype(name)))
        mode = engine.get_tensor_mode(name)
        if mode == trt.TensorIOMode.INPUT:
            inputs.append(info)
        elif mode == trt.TensorIOMode.OUTPUT:
            outputs.append(info)
    return inputs, outputs


# ILogger.Severity member names, most severe first; a minimum severity lets through itself and those before it.
SEVERITIES = ('INTERNAL_ERROR', 'ERROR', 'WARNING', 'INFO', 'VERBOSE')
_PY_LEVELS = {'INTERNAL_ERROR': logging.ERROR, 'ERROR': logging.ERROR, 'WARNING': logging.WARNING,
              'INFO': logging.INFO, 'VERBOSE': logging.DEBUG}


class LogCapture:
    """The error messages (ERROR, INTERNAL_ERROR) TensorRT logged while a :meth:`capture` was open."""

    def __init__(self, keep: int = 20) -> None:
        self.messages: list[str] = []
        self._keep = keep

    def add(self, message: str) -> None:
        if len(self.messages) < self._keep:  # the first errors are the causes, later ones their echoes
            self.messages.append(message)

    def __bool__(self) -> bool:
        return bool(self.messages)

    def __str__(self) -> str:
        return ' | '.join(self.messages) or 'no message from TensorRT'


_shared_lock = threading.Lock()
_shared: tuple[Any, Any] | None = None  # (the tensorrt module, its logger)


def tensorrt_logger(trt: Any) -> Any:
    """The process-wide ``trt.ILogger`` (created on first use) that every Builder, Runtime and parser gets.

    TensorRT keeps one logger per process, the first one it was given, and calls it from every
    builder and runtime: a second logger's messages would be lost, and a freed one still called. This
    one is never freed. It forwards to the ``anomaly_seg_ros.tensorrt`` :mod:`logging` logger
    messages at or above its minimum severity (:meth:`set_min_severity`, ``'WARNING'`` by default;
    ``'VERBOSE'`` when asked) and records errors into every open :meth:`capture`.
    """
    global _shared
    with _shared_lock:
        if _shared is None or _shared[0] is not trt:  # another module object: only the tests' fake tensorrt
            _shared = (trt, _logger_class(trt)())
        return _shared[1]


def _logger_class(trt: Any) -> type:
    members = {name: getattr(trt.ILogger.Severity, name) for name in SEVERITIES}
    errors = frozenset((members['INTERNAL_ERROR'], members['ERROR']))
    py_levels = {members[name]: level for name, level in _PY_LEVELS.items()}

    class TensorRTLogger(trt.ILogger):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self._lock = threading.Lock()
            self._captures: list[LogCapture] = []
            self._passing: frozenset[Any] = frozenset()
            self.min_severity_name = ''
            self.set_min_severity('WARNING')

        def set_min_severity(self, name: str) -> None:
            """Forward messages of severity ``name`` (one of :data:`SEVERITIES`) and above; drop the rest."""
            if name not in SEVERITIES:
                raise ValueError(f'unknown TensorRT severity {name!r}; one of {", ".join(SEVERITIES)}')
            self._passing = frozenset(members[n] for n in SEVERITIES[:SEVERITIES.index(name) + 1])
            self.min_severity_name = name

        @contextlib.contextmanager
        def verbosity(self, name: str) -> Iterator[None]:
            """:meth:`set_min_severity` for the duration of a ``with`` block (process-wide meanwhile)."""
            previous = self.min_severity_name
            self.set_min_severity(name)
            try:
                yield
            finally:
                self.set_min_severity(previous)

        @contextlib.contextmanager
        def capture(self) -> Iterator[LogCapture]:
            """Collect the errors logged until the block ends (from any thread: TensorRT may log from its own)."""
            capture = LogCapture()
            with self._lock:
                self._captures.append(capture)
            try:
                yield capture
            finally:
                with self._lock:
                    self._captures.remove(capture)

        def log(self, level: Any, msg: str) -> None:
            # TensorRT calls this, holding the GIL, for every message it makes, VERBOSE included (thousands
            # per build): return before any work for those below the minimum severity.
            if level not in self._passing:
                return
            if level in errors:
                with self._lock:
                    for capture in self._captures:
                        capture.add(msg)
            _LOG.log(py_levels.get(level, logging.DEBUG), 'TensorRT: %s', msg)

    return TensorRTLogger
