"""Bad model directories stop the node and every command that loads a model with one clear line.

Missing directory, metadata or stage file; empty, truncated or corrupt ONNX; metadata of an
incompatible version or unreadable; a stage file exported for another resolution or label set than
``model.yaml`` says. For each: exit status 2, one error line that names the file and says what to
do, no traceback. The node, ``anomaly_seg eval``, ``anomaly_seg bench`` and ``anomaly_seg demo`` run
as their own processes (several at a time; the demo, which starts the node and relays its line, for
four of the cases).
"""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from bad_models import BadModel, make_bad_models

from anomaly_seg_ros.errors import ModelError
from anomaly_seg_ros.pipeline import AnomalyPipeline

pytestmark = pytest.mark.ros

CLI = [sys.executable, '-m', 'anomaly_seg_ros.cli']
PARALLEL = 4
DEMO_CASES = ('missing_directory', 'missing_file', 'truncated_file', 'stage_classes_mismatch')


@pytest.fixture(scope='module')
def bad_models(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> list[BadModel]:
    return make_bad_models(tiny_model, tmp_path_factory.mktemp('bad_models'))


def _check_one_clear_line(text: str, case: BadModel, marker: str) -> None:
    assert 'Traceback' not in text, f'{case.name}:\n{text}'
    lines = [line for line in text.splitlines() if marker in line]
    assert len(lines) == 1, f'{case.name}: expected one {marker!r} line:\n{text}'
    for phrase in case.phrases:
        assert phrase in lines[0], f'{case.name}: {phrase!r} not in:\n{lines[0]}'


def test_the_pipeline_raises_a_model_error_for_every_bad_model(bad_models):
    for case in bad_models:
        with pytest.raises(ModelError) as info:
            AnomalyPipeline.from_model_dir(case.path, backend='onnxruntime', device='cpu')
        for phrase in case.phrases:
            assert phrase in str(info.value), (case.name, str(info.value))


NODES_AT_ONCE = 4  # a dozen node processes importing rclpy and onnxruntime at once swamp a 2-core machine


def test_the_node_process_stops_with_one_fatal_line_naming_the_file(bad_models, ros_domain_id, start_node):
    for first in range(0, len(bad_models), NODES_AT_ONCE):
        batch = bad_models[first:first + NODES_AT_ONCE]
        nodes = [(case, start_node('-p', f'model_dir:={case.path}', '-p', 'backend:=onnxruntime')) for case in batch]
        for case, node in nodes:
            try:
                status = node.process.wait(120)
            except subprocess.TimeoutExpired:
                pytest.fail(f'{case.name}: the node did not stop within 120 s:\n{node.log()}')
            assert status == 2, f'{case.name}:\n{node.log()}'
        for case, node in nodes:
            log = node.log()
            _check_one_clear_line(log, case, 'FATAL')
            assert 'cannot start' in log, log


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=180, env=env, stdin=subprocess.DEVNULL)


def _commands(case: BadModel, tmp_path: Path) -> dict[str, list[str]]:
    frames = tmp_path / 'frames'
    return {
        'eval': [*CLI, 'eval', '--dataset', 'folder', '--root', str(frames), '--models', str(case.path),
                 '--out', str(tmp_path / f'eval_{case.name}'), '--no-progress'],
        'bench': [*CLI, 'bench', '--models', str(case.path), '--backend', 'onnxruntime', '--frames', '1',
                  '--warmup', '0', '--input-size', '64x32', '--quiet'],
        'demo': [*CLI, 'demo', '--models', str(case.path), '--frames', '1', '--no-video', '--no-progress',
                 '--out', str(tmp_path / f'demo_{case.name}'), '--startup-timeout', '60'],
    }


def test_eval_bench_and_demo_stop_with_one_error_line_naming_the_file(bad_models, tmp_path, ros_domain_id):
    (tmp_path / 'frames').mkdir()
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    jobs = [(case, name, command) for case in bad_models for name, command in _commands(case, tmp_path).items()
            if name != 'demo' or case.name in DEMO_CASES]  # the demo relays the node's line (tested above)
    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(lambda job: _run(job[2], env), jobs))
    for (case, name, _), result in zip(jobs, results):
        text = result.stdout + result.stderr
        assert result.returncode == 2, f'{name} {case.name}: exit {result.returncode}\n{text}'
        _check_one_clear_line(result.stderr, case, f'anomaly_seg {name}: error:')
        assert 'Traceback' not in text, f'{name} {case.name}:\n{text}'
    print(f'\n{len(bad_models)} bad models: pipeline, node and {len(jobs)} command runs (eval, bench, demo)')
