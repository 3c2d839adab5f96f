"""What a benchmark ran on: CPU, cores, memory, GPU, library versions, load; and memory probes.

:func:`cpu_description` is the one-line name of the CPU that every quoted figure carries (``anomaly_seg
bench``, the demo's summary, ``export --int8``'s stage choice): model, cores and the widest vector
extension read from ``/proc/cpuinfo`` (x86: AMX, AVX-512 VNNI, AVX-512, AVX2 (+ AVX-VNNI), AVX, SSE4.2;
aarch64: SVE2, SVE, NEON), e.g. ``AMD EPYC, 2 vCPUs, AVX-512 VNNI``. The same model runs at very different
speeds across these (a Zen 3 with AVX2 only ran the demo model 3.6x slower than an AVX-512 EPYC).

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
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = [
    'cpu_description',
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


_SPACES = re.compile(r'\s+')
_NOISE = re.compile(r'\((R|TM|r|tm)\)|\bCPU\b|@\s*[\d.]+\s*GHz|\b\d+-Core\b|\bProcessor\b')
# aarch64 /proc/cpuinfo names no model: implementer and part ids (a few common ones; others stay numeric).
_ARM_IMPLEMENTERS = {'0x41': 'ARM', '0x42': 'Broadcom', '0x48': 'HiSilicon', '0x4e': 'NVIDIA', '0x51': 'Qualcomm',
                     '0x61': 'Apple', '0xc0': 'Ampere'}
_ARM_PARTS = {('0x41', '0xd08'): 'Cortex-A72', ('0x41', '0xd0b'): 'Cortex-A76', ('0x41', '0xd0c'): 'Neoverse N1',
              ('0x41', '0xd40'): 'Neoverse V1', ('0x41', '0xd42'): 'Cortex-A78AE', ('0x41', '0xd49'): 'Neoverse N2',
              ('0x41', '0xd4f'): 'Neoverse V2', ('0x4e', '0x004'): 'Carmel'}


def _vector_extension(flags: set[str], arch: str) -> str:
    """The widest vector extension among ``flags`` (x86 ``flags`` / aarch64 ``Features``); 'unknown' if none."""
    if any(f.startswith('amx') for f in flags):
        return 'AMX'
    if 'avx512_vnni' in flags or 'avx512vnni' in flags:
        return 'AVX-512 VNNI'
    if 'avx512f' in flags:
        return 'AVX-512'
    if 'avx2' in flags:
        return 'AVX2 + AVX-VNNI' if 'avx_vnni' in flags else 'AVX2'
    if 'avx' in flags:
        return 'AVX'
    if 'sse4_2' in flags:
        return 'SSE4.2'
    if 'sve2' in flags:
        return 'SVE2'
    if 'sve' in flags:
        return 'SVE'
    if 'asimd' in flags or (not flags and arch in ('aarch64', 'arm64')):  # every aarch64 CPU has NEON
        return 'NEON'
    return 'unknown'


def cpu_description(cpuinfo: str | None = None, arch: str | None = None, usable_cores: int | None = None) -> str:
    """This CPU in one line: model, cores, widest vector extension, e.g. ``'AMD EPYC, 2 vCPUs, AVX-512 VNNI'``.

    Args:
        cpuinfo: the text of ``/proc/cpuinfo`` (default: read it; where it cannot be read, e.g. on macOS,
            the model comes from :mod:`platform`, the cores from ``os.cpu_count()``).
        arch: the machine architecture (default ``platform.machine()``), used where the text has no flags.
        usable_cores: CPUs this process may run on (default, when reading this machine's file: its affinity);
            named when fewer than the text lists (a container limited to part of the machine).
    Cores are the logical CPUs the text lists: ``vCPUs`` under a hypervisor (its ``hypervisor`` flag),
    ``P cores, L threads`` with SMT, else ``N cores``. Never raises.
    """
    live = cpuinfo is None
    if live:
        try:
            cpuinfo = Path('/proc/cpuinfo').read_text()
        except OSError:
            cpuinfo = ''
        if usable_cores is None:
            try:
                usable_cores = len(os.sched_getaffinity(0))
            except (AttributeError, OSError):
                usable_cores = None
    arch = arch or platform.machine()
    model = implementer = part = ''
    flags: set[str] = set()
    logical, physical, package = 0, set(), '0'
    for line in (cpuinfo or '').splitlines():
        key, _, value = line.partition(':')
        key, value = key.strip().lower(), value.strip()
        if key == 'processor' and value.isdigit():
            logical += 1
        elif key in ('model name', 'cpu model') and not model:
            model = value
        elif key in ('flags', 'features') and not flags:
            flags = set(value.lower().split())
        elif key == 'physical id':
            package = value
        elif key == 'core id':
            physical.add((package, value))
        elif key == 'cpu implementer' and not implementer:
            implementer = value.lower()
        elif key == 'cpu part' and not part:
            part = value.lower()
    model = _SPACES.sub(' ', _NOISE.sub(' ', model)).strip(' ,')
    if not model and implementer:
        name = _ARM_PARTS.get((implementer, part))
        vendor = _ARM_IMPLEMENTERS.get(implementer, f'implementer {implementer}')
        model = f'{vendor} {name}' if name else f'{vendor} CPU part {part or "?"}'
    if not model:
        model = (platform.processor() if live else '') or arch or 'unknown CPU'
    if not logical:
        logical = (os.cpu_count() or 0) if live else 0
    if not logical:
        cores = 'cores unknown'
    elif 'hypervisor' in flags:
        cores = f'{logical} vCPU' + ('s' if logical != 1 else '')
    elif physical and len(physical) < logical:
        cores = f'{len(physical)} cores, {logical} threads'
    else:
        cores = f'{logical} core' + ('s' if logical != 1 else '')
    if usable_cores and logical and usable_cores < logical:
        cores += f' ({usable_cores} usable)'
    return f'{model}, {cores}, {_vector_extension(flags, arch)}'


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
    """CPU model, its one-line description (:func:`cpu_description`), logical/physical/usable cores, memory,
    GPUs, OS, and the load average now."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        'cpu': _cpu_model(),
        'cpu_description': cpu_description(),
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
