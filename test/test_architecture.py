"""The layering rules of docs/DEVELOPING.md, checked on the source tree."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / 'anomaly_seg_ros'
ROS_MODULES = {'rclpy', 'sensor_msgs', 'std_msgs', 'diagnostic_msgs', 'builtin_interfaces', 'rcl_interfaces'}
# Modules the node imports at run time with the onnxruntime/tensorrt backends: torch must stay out.
RUNTIME_MODULES = [
    'anomaly_seg_ros.pipeline',
    'anomaly_seg_ros.imaging',
    'anomaly_seg_ros.visualization',
    'anomaly_seg_ros.runtime.host_memory',
    'anomaly_seg_ros.runtime',
    'anomaly_seg_ros.runtime.onnxruntime_backend',
    'anomaly_seg_ros.runtime.tensorrt_backend',
    'anomaly_seg_ros.ros.node',
    'anomaly_seg_ros.cli',
    # the robot's engine build (export --tensorrt): TensorRT and cuda-python, no torch installed there
    'anomaly_seg_ros.export',
    'anomaly_seg_ros.export.tensorrt_build',
]
# What works without ROS installed: the demo's frame sources and pictures.
ROS_FREE_MODULES = ['anomaly_seg_ros.demo', 'anomaly_seg_ros.demo.sources', 'anomaly_seg_ros.demo.output']


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split('.')[0])
    return roots


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob('*.py'))


def test_only_the_ros_layer_and_bag_tools_import_ros_packages():
    offenders = []
    for path in _sources():
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(('ros/', 'bags/', 'demo/')) \
                or relative in ('benchmark/node.py', 'benchmark/soak.py'):
            continue
        found = _imported_roots(path) & ROS_MODULES
        if found:
            offenders.append(f'{relative}: {sorted(found)}')
    assert not offenders, 'ROS imports outside ros/, bags/, demo/ and the node benchmarks: ' + '; '.join(offenders)


def test_pure_pytorch_networks_import_neither_ros_nor_the_runtime_layers():
    for path in sorted((PACKAGE / 'networks').rglob('*.py')):
        roots = _imported_roots(path)
        assert not roots & ROS_MODULES, path
        source = path.read_text()
        for forbidden in ('pipeline', 'runtime', '.ros', 'onnxruntime', 'tensorrt'):
            assert f'import {forbidden}' not in source and f'from ..{forbidden.strip(".")}' not in source, \
                f'{path.name} imports {forbidden}'


def test_runtime_path_never_imports_torch():
    code = ('import sys, importlib\n'
            f'for name in {RUNTIME_MODULES!r}:\n'
            '    importlib.import_module(name)\n'
            "print('torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'False', 'a runtime module imported torch'


def test_the_demo_sources_and_pictures_import_no_ros():
    code = ('import sys, importlib\n'
            f'for name in {ROS_FREE_MODULES!r}:\n'
            '    importlib.import_module(name)\n'
            f'print(sorted(set(sys.modules) & {ROS_MODULES!r}))\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '[]', f'ROS packages imported: {result.stdout.strip()}'


@pytest.mark.parametrize('package', ['anomaly_seg_ros.export', 'anomaly_seg_ros.demo'])
def test_lazy_packages_give_every_name_of_their_all_from_its_home_module(package):
    import importlib

    module = importlib.import_module(package)
    homes = module._HOMES
    assert sorted(module.__all__) == sorted(name for names in homes.values() for name in names)
    for home, names in homes.items():
        submodule = importlib.import_module(f'{package}.{home}')
        missing = set(names) - set(submodule.__all__)
        assert not missing, f'{package}.{home} does not export {sorted(missing)}'
        for name in names:
            assert getattr(module, name) is getattr(submodule, name)


@pytest.mark.parametrize('path', _sources(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_every_module_uses_postponed_annotations(path):
    source = path.read_text()
    tree = ast.parse(source)
    if not any(isinstance(node, (ast.Import, ast.ImportFrom)) for node in ast.walk(tree)):
        return  # nothing annotated can refer forward in a module that imports nothing
    assert 'from __future__ import annotations' in source, f'{path} lacks from __future__ import annotations'


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _module_level_imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports when it is imported (TYPE_CHECKING blocks included,
    imports inside functions not: those run later, on first use)."""
    name = _module_name(path)
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    found = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.rsplit('.', node.level - 1)[0] if node.level > 1 else package
                    base = f'{base}.{node.module}' if node.module else base
                else:
                    base = node.module or ''
                found.add(base)
                found.update(f'{base}.{alias.name}' for alias in node.names)
            elif isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                visit(node.orelse)
                for handler in getattr(node, 'handlers', []):
                    visit(handler.body)
            elif isinstance(node, ast.With):
                visit(node.body)

    visit(ast.parse(path.read_text(), filename=str(path)).body)
    return {target for target in found if target in modules and target != name}


def test_no_import_cycle_between_the_package_modules():
    """Imports go one way: no module imports (at import time) one that imports it back, directly or not."""
    sources = {_module_name(path): path for path in _sources()}
    graph = {name: _module_level_imports(path, set(sources)) for name, path in sources.items()}
    cycles, state = [], {}

    def walk(name: str, stack: list[str]) -> None:
        state[name] = 'open'
        for target in sorted(graph[name]):
            if state.get(target) == 'open':
                cycles.append(' -> '.join(stack[stack.index(target):] + [name, target]))
            elif target not in state:
                walk(target, stack + [name])
        state[name] = 'done'

    for name in sorted(graph):
        if name not in state:
            walk(name, [])
    assert not cycles, 'import cycles: ' + '; '.join(cycles)
