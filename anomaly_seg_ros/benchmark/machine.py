"""What a benchmark ran on: CPU, cores, memory, GPU, library versions, load; and memory probes.

Nothing here imports torch, TensorRT or CUDA libraries: versions are read from the installed
distributions (:mod:`importlib.metadata`), torch's only when something already imported it, and the GPU
is described through ``nvidia-smi`` where present. Peak resident memory is read from
``/proc/self/status`` (VmHWM), which :func:`reset_peak_rss` resets (Linux ``clear_refs``), so each
backend's peak can be taken over its own frames.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = [
    'gpu_memory_used_mb',
    'load_average',
    'machine_info',
    'peak_rss_mb',
    'process_rss_mb',
    'reset_peak_rss',
    'rss_mb',
    'versions',
]

_DISTRIBUTIONS = {
    'numpy': 'numpy',
    'opencv': 'opencv-python-headless',
    'onnxruntime': 'onnxruntime',
    'onnxruntime-gpu': 'onnxruntime-gpu',
    'onnx': 'onnx',
    'tensorrt': 'tensorrt',
    'cuda-bindings': 'cuda-bindings',
}


def _cpu_model() -> str:
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.lower().startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _physical_cores() -> int | None:
    """Distinct (physical id, core id) pairs of /proc/cpuinfo; None where it cannot be read."""
    try:
        text = Path('/proc/cpuinfo').read_text()
    except OSError:
        return None
    cores, physical = set(), '0'
    for line in text.splitlines():
        key, _, value = line.partition(':')
        key = key.strip()
        if key == 'physical id':
            physical = value.strip()
        elif key == 'core id':
            cores.add((physical, value.strip()))
    return len(cores) or None


def _memory_gb() -> float | None:
    try:
        for line in Path('/proc/meminfo').read_text().splitlines():
            if line.startswith('MemTotal:'):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _gpus() -> list[dict[str, str]]:
    """Name, memory and driver of each NVIDIA GPU from nvidia-smi ([] without one)."""
    smi = shutil.which('nvidia-smi')
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, '--query-gpu=name,memory.total,driver_version', '--format=csv,noheader'],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(',')]
        if len(parts) == 3:
            gpus.append({'name': parts[0], 'memory': parts[1], 'driver': parts[2]})
    return gpus


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (other processes competing for the CPU show here)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    """CPU model, logical/physical/usable cores, memory, GPUs, OS, and the load average now."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        'cpu': _cpu_model(),
        'logical_cores': os.cpu_count(),
        'physical_cores': _physical_cores(),
        'usable_cores': usable,
        'memory_gb': _memory_gb(),
        'gpus': _gpus(),
        'os': f'{platform.system()} {platform.release()}',
        'hostname': platform.node(),
        'load_average': load_average(),
    }


def versions() -> dict[str, str]:
    """Python and the installed versions of the libraries that decide speed (absent ones left out).

    torch is reported when it is imported in this process (the torch backend or a model export ran);
    a benchmark of the ONNX Runtime path alone never imports it.
    """
    found = {'python': platform.python_version()}
    for key, distribution in _DISTRIBUTIONS.items():
        try:
            found[key] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    torch = sys.modules.get('torch')
    if torch is not None:
        found['torch'] = str(torch.__version__)
        found['torch_threads'] = str(torch.get_num_threads())
    ort = sys.modules.get('onnxruntime')
    if ort is not None:
        found['onnxruntime_providers'] = ','.join(ort.get_available_providers())
    return found


def _status_kb(field: str, pid: int | str = 'self') -> int | None:
    try:
        for line in Path(f'/proc/{pid}/status').read_text().splitlines():
            if line.startswith(field + ':'):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_mb() -> float:
    """Resident memory of this process now, MiB."""
    kb = _status_kb('VmRSS')
    return round(kb / 1024, 1) if kb is not None else 0.0


def process_rss_mb(pid: int) -> float | None:
    """Resident memory of process ``pid`` now, MiB; ``None`` when it cannot be read (gone, not Linux)."""
    kb = _status_kb('VmRSS', pid)
    return kb / 1024 if kb is not None else None


def peak_rss_mb() -> float:
    """Peak resident memory of this process since start or the last :func:`reset_peak_rss`, MiB."""
    kb = _status_kb('VmHWM')
    if kb is None:  # not Linux: the peak since start (ru_maxrss is KiB on Linux, bytes on macOS)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(peak / (2**20 if sys.platform == 'darwin' else 1024), 1)
    return round(kb / 1024, 1)


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux 4.0+); False where that is not possible."""
    try:
        Path('/proc/self/clear_refs').write_text('5')
        return True
    except OSError:
        return False


def gpu_memory_used_mb(device_index: int = 0) -> float | None:
    """Memory in use on the GPU (all processes: cudaMemGetInfo total - free), MiB; None without CUDA.

    torch's caching allocator is asked first where torch is imported and holds CUDA memory
    (``max_memory_reserved``: this process's peak); otherwise cuda-python's runtime.
    """
    torch = sys.modules.get('torch')
    if torch is not None:
        try:
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                return round(torch.cuda.max_memory_reserved(device_index) / 2**20, 1)
        except Exception:  # noqa: BLE001 - a probe must not end a benchmark
            pass
    try:
        from ..runtime.cuda_memory import load_cudart
        cudart = load_cudart()
        err, free, total = cudart.cudaMemGetInfo()
        if int(getattr(err, 'value', err)) != 0:
            return None
        return round((total - free) / 2**20, 1)
    except Exception:  # noqa: BLE001 - no cuda-python, no driver, no GPU
        return None
