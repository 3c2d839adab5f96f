"""requirements/gpu-cuda12.txt and gpu-cuda13.txt resolve where GPU machines are (Python 3.10 and 3.12, x86_64 and
aarch64) to wheels built for their own CUDA major only, and leave onnxruntime-gpu to NVIDIA's JetPack build on aarch64.
Uses pip's resolver against the package index, no install. pip evaluates environment markers for the interpreter
running it whatever --platform and --python-version say, so the markers are evaluated here for the target first."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from anomaly_seg_ros.runtime import cuda_memory

from .conftest import pip_resolve

ROOT = Path(__file__).resolve().parents[1]
FILES = {12: ROOT / 'requirements' / 'gpu-cuda12.txt', 13: ROOT / 'requirements' / 'gpu-cuda13.txt'}
# The first onnxruntime-gpu built for CUDA 13 on PyPI (1.26.0 was the last for CUDA 12).
ORT_FIRST_CUDA13 = '1.27.0'


def _requirements(cuda: int) -> dict[str, Requirement]:
    lines = (line.split('#', 1)[0].strip() for line in FILES[cuda].read_text().splitlines())
    return {req.name: req for req in map(Requirement, filter(None, lines))}


def _for_target(cuda: int, python: str, machine: str) -> list[str]:
    """The file's requirements whose markers hold on Linux ``machine`` with Python ``python``, markers removed."""
    environment = {**default_environment(), 'platform_machine': machine, 'python_version': python,
                   'python_full_version': f'{python}.0', 'sys_platform': 'linux', 'platform_system': 'Linux'}
    kept = []
    for req in _requirements(cuda).values():
        if req.marker is None or req.marker.evaluate(environment):
            req.marker = None
            kept.append(str(req))
    return kept


def _resolve(cuda: int, python: str, machine: str, tmp_path: Path) -> dict[str, dict]:
    """name -> the resolved distribution's metadata (version, requires_dist)."""
    metadata = pip_resolve(_for_target(cuda, python, machine), python, machine, tmp_path,
                           f'the requirements of {FILES[cuda].name}')
    return {item['name'].lower(): item for item in metadata}


def _cuda_libraries(metadata: dict) -> list[str]:
    """The NVIDIA CUDA runtime wheels a distribution asks for (through its extras)."""
    return [d for d in metadata.get('requires_dist') or [] if d.startswith('nvidia-cuda-runtime')]


def test_each_gpu_file_admits_only_its_own_cuda_major():
    bindings = {cuda: _requirements(cuda)['cuda-bindings'].specifier for cuda in FILES}
    assert '12.6.0' in bindings[12] and '12.9.10' in bindings[12]
    assert '13.0.0' not in bindings[12] and '11.8.7' not in bindings[12]
    assert '13.0.0' in bindings[13] and '12.9.10' not in bindings[13] and '14.0.0' not in bindings[13]
    ort = {cuda: _requirements(cuda)['onnxruntime-gpu'] for cuda in FILES}
    assert '1.26.0' in ort[12].specifier and ORT_FIRST_CUDA13 not in ort[12].specifier
    assert ORT_FIRST_CUDA13 in ort[13].specifier and '1.26.0' not in ort[13].specifier
    for req in ort.values():  # no aarch64 wheel on the index: Jetson's comes from NVIDIA
        assert not req.marker.evaluate({'platform_machine': 'aarch64', 'python_version': '3.12'})
        assert req.marker.evaluate({'platform_machine': 'x86_64', 'python_version': '3.12'})


def test_the_install_hint_names_the_files_cuda_bindings_ranges():
    hinted = [SpecifierSet(s) for s in re.findall(r"'cuda-bindings([^']+)'", cuda_memory._INSTALL_HINT)]
    assert hinted == [_requirements(cuda)['cuda-bindings'].specifier for cuda in FILES]
    assert all(path.name in cuda_memory._INSTALL_HINT for path in FILES.values())


@pytest.mark.parametrize('machine', ['x86_64', 'aarch64'])
@pytest.mark.parametrize('python', ['3.10', '3.12'])
def test_cuda12_requirements_resolve_to_cuda12_wheels_only(python, machine, tmp_path):
    installed = _resolve(12, python, machine, tmp_path)
    assert installed['cuda-bindings']['version'].split('.')[0] == '12'
    assert not [name for name in installed if re.search(r'cu1[3-9]\b', name)]
    if machine == 'aarch64':
        assert 'onnxruntime-gpu' not in installed  # JetPack's comes from NVIDIA's index
    else:
        libraries = _cuda_libraries(installed['onnxruntime-gpu'])
        assert libraries and all('cu12' in d for d in libraries), libraries


@pytest.mark.parametrize('python, machine', [('3.12', 'x86_64'), ('3.12', 'aarch64'), ('3.10', 'x86_64')])
def test_cuda13_requirements_resolve_to_cuda13_wheels_only(python, machine, tmp_path):
    installed = _resolve(13, python, machine, tmp_path)
    assert installed['cuda-bindings']['version'].split('.')[0] == '13'
    assert not [name for name in installed if re.search(r'cu1[0-2]\b', name)]
    if machine == 'x86_64' and python != '3.10':
        libraries = _cuda_libraries(installed['onnxruntime-gpu'])
        assert libraries and all(re.search(r'(cu13|~=13)', d) for d in libraries), libraries
    else:  # no aarch64 wheel; the CUDA 13 builds need Python 3.11
        assert 'onnxruntime-gpu' not in installed
