"""Multi-process training: torchrun + DistributedDataParallel on these CPUs (gloo, 2 processes).

The ``runs`` fixture trains the tiny stages once in one process with batch 2 and once in two processes
with batch 1 each (``distributed_worker.py`` under ``python -m torch.distributed.run --standalone``); the
tests compare the two.

Tolerances. In float64, one DDP step gives the one-process gradient of the doubled batch to rounding
(1e-10 relative): SyncBatchNorm on, cross-entropy normalized over the global batch's labelled pixels.
The trainers run in float32, where the two runs round differently (at ICNet's first step here the
one-process gradient is 4e-4 off the float64 one, mostly its CPU BatchNorm over batch-2 statistics; the
two-process one 1e-5), and the optimizers amplify that (Adam scales every gradient element to a step of
about lr whatever its size, so elements whose exact gradient is zero, e.g. conv biases ahead of a
BatchNorm, step by +-lr in either run). The weights after the steps are therefore compared relative to
the update, ||w_2 - w_1|| / ||w_1 - w_0||, and how far apart the two runs round depends on the CPU's
kernels (oneDNN's: limiting only ATen's vector paths changes none of the figures below). Measured
on one AMD EPYC (Zen 5, 2 cores) with oneDNN/ATen limited to each instruction set (ONEDNN_MAX_CPU_ISA,
ATEN_CPU_CAPABILITY), segmentation / synthesis / dissimilarity:

    AVX-512 (the CPU's own)   0.12 %   2.6 %   0.27 %
    AVX2 (as on Zen 3)        0.08 %   2.6 %   6.6 %    (the same 6.6 % on a real Zen 3)
    SSE4.1                    0.003 %  4.1 %   5.0 %

while a run that sees other samples per step (one process, batch 1) is 97 % to 250 % off (dissimilarity
on AVX2: 110 %). The tolerances sit 2.4x to 16x above the largest of those and 5x below that: 2 %
(segmentation), 10 % (the SPADE generator and its BatchNorms), 20 % (dissimilarity). The float64 test
above is the proof that the gradients are the same; this one checks that the trainers (sharding, steps,
SyncBatchNorm, optimizer state) put them together alike. `.ci/run` repeats it on the AVX2 paths. A
checkpoint continued with another number of processes is compared with the same checkpoint continued as
it was written (same start: 3e-6 apart).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from anomaly_seg_ros.cli import main
from anomaly_seg_ros.model_config import load_model_config
from anomaly_seg_ros.training import (
    Checkpoint,
    GeneratedSet,
    calibrate_perceptual,
    load_train_config,
    train_dissimilarity,
    train_segmentation,
    train_synthesis,
)
from anomaly_seg_ros.training.config import _merge
from anomaly_seg_ros.training.distributed import (
    ENV_VARIABLES,
    Dist,
    DistributedError,
    LaunchEnv,
    launch_environment,
)
from anomaly_seg_ros.training.loop import EpochData, data_workers
from anomaly_seg_ros.training.precision import PrecisionError

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name('distributed_worker.py')
TRAINED = ('segmentation', 'synthesis', 'dissimilarity')
_TINY = {
    'input_sizes': {'segmentation': [64, 128], 'synthesis': [32, 64], 'perceptual': [32, 64],
                    'dissimilarity': [32, 64]},
    'architectures': {'synthesis': {'ngf': 4}},
    'calibration': {'frames': 4},
    'segmentation': {'epochs': 1},
    'synthesis': {'epochs': 1, 'discriminator': {'ndf': 8, 'n_layers': 3}},
    'dissimilarity': {'epochs': 1},
}
pytestmark = pytest.mark.numerics  # .ci/run repeats it on the AVX2 paths
UPDATE_TOLERANCE = {'segmentation': 0.02, 'synthesis': 0.10, 'dissimilarity': 0.20}  # figures: module doc


def _quiet(line: str) -> None:
    pass


def _per_process_batch(size: int) -> dict:
    return {name: {'batch_size': size} for name in TRAINED}


def _copy_model(source: Path, target: Path, with_training: bool = False) -> Path:
    shutil.copytree(source, target, ignore=None if with_training else shutil.ignore_patterns('training'))
    return target


@pytest.fixture(scope='module')
def runs(tmp_path_factory, tiny_dataset):
    base = tmp_path_factory.mktemp('distributed')
    sets = _merge(_TINY, {'data': {'dataset': 'synthetic', 'root': str(tiny_dataset), 'train_limit': 4,
                                   'val_limit': 2}, 'sync_batchnorm': True})
    one = load_train_config('light', sets=_merge(sets, _per_process_batch(2)))
    m1 = base / 'one'
    for train in (train_segmentation, train_synthesis):
        train(one, m1, show_progress=False, log=_quiet)
    d2 = _copy_model(m1, base / 'two_dissimilarity')         # the 2-process calibration, data and dissimilarity
    r2 = _copy_model(m1, base / 'resumed_by_two', True)      # 1-process checkpoint, resumed by 2 processes
    reference = _copy_model(m1, base / 'resumed_by_one', True)
    calibrate_perceptual(one, m1, show_progress=False, log=_quiet)
    train_dissimilarity(one, m1, show_progress=False, log=_quiet)

    # w_0: trainers with 0 epochs write the untrained networks (dissimilarity first, while the cached data's
    # networks are still those of `one`).
    initial = _copy_model(m1, base / 'initial')
    untrained = load_train_config('light', sets=_merge(sets, {
        **{name: {'epochs': 0, 'batch_size': 2} for name in TRAINED},
        'dissimilarity': {'epochs': 0, 'batch_size': 2, 'cache_dir': str(m1 / 'training' / 'generated')}}))
    for train in (train_dissimilarity, train_segmentation, train_synthesis):
        train(untrained, initial, work_dir=base / 'initial_work', show_progress=False, log=_quiet)

    cli_config = base / 'tiny.yaml'
    cli_config.write_text(yaml.safe_dump(_TINY))
    spec = {
        'sets': _merge(sets, _per_process_batch(1)),
        'result': str(base / 'gradients.json'),
        'grad_checks': [{'stage': 'segmentation', 'model': str(m1)}, {'stage': 'dissimilarity', 'model': str(m1)}],
        'steps': [
            {'stage': 'segmentation', 'out': str(base / 'two')}, {'stage': 'synthesis', 'out': str(base / 'two')},
            {'stage': 'calibrate', 'out': str(d2)}, {'stage': 'dissimilarity', 'out': str(d2)},
            {'stage': 'segmentation', 'out': str(r2), 'resume': True, 'sets': {'segmentation': {'epochs': 2}}},
            {'copy': [str(base / 'two'), str(base / 'two_continued')]},
            {'stage': 'segmentation', 'out': str(base / 'two_continued'), 'resume': True,
             'sets': {'segmentation': {'epochs': 2}}},
        ],
        'cli': ['train', 'segmentation', '--dataset', 'synthetic', '--root', str(tiny_dataset), '--out',
                str(base / 'cli'), '--config', str(cli_config), '--quiet', '--sync-batchnorm', '--batch-size', '1',
                '--train-limit', '4', '--val-limit', '2'],
    }
    (base / 'spec.json').write_text(json.dumps(spec))
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARIABLES}
    env.update(OMP_NUM_THREADS='1', PYTHONPATH=os.pathsep.join([str(REPO), env.get('PYTHONPATH', '')]))
    done = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                           str(WORKER), str(base / 'spec.json')], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900)   # a hang guard: about 1 min idle here, 6 errors at 300 s on a starved CPU
    if done.returncode != 0:
        pytest.fail(f'the 2-process run failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}')

    # 2 -> 1: the 2-process segmentation checkpoint continued by one process; 1 -> 1: the reference of 1 -> 2.
    r1 = _copy_model(base / 'two', base / 'resumed_from_two', True)
    resume_log: list[str] = []
    two_epochs = load_train_config('light', sets=_merge(sets, _merge(_per_process_batch(2),
                                                                      {'segmentation': {'epochs': 2}})))
    resumed = train_segmentation(two_epochs, r1, resume=True, show_progress=False, log=resume_log.append)
    train_segmentation(two_epochs, reference, resume=True, show_progress=False, log=_quiet)
    return SimpleNamespace(base=base, one=m1, two=base / 'two', d2=d2, initial=initial, r1=r1, r2=r2,
                           reference=reference, two_continued=base / 'two_continued', cli=base / 'cli',
                           stdout=done.stdout, resumed=resumed, resume_log=resume_log,
                           gradients=json.loads((base / 'gradients.json').read_text()))


def _vector(state: dict) -> torch.Tensor:
    """Trainable weights of a state dict as one float64 vector (without BatchNorm statistics and the
    spectral norm's power-iteration vectors, which are not weights)."""
    return torch.cat([v.double().flatten() for k, v in sorted(state.items())
                      if v.is_floating_point() and 'running_' not in k and not k.endswith(('._u', '._v'))])


def _trained(model_dir: Path, stage: str, key: str = 'network', work: str = 'training') -> dict:
    return Checkpoint(model_dir / work / stage).load()[key]


def _untrained(runs, stage: str) -> dict:
    return torch.load(runs.initial / f'{stage}.pt', weights_only=True)['state_dict']


def _update_error(runs, stage: str, one: dict, two: dict) -> float:
    w0, w1, w2 = _vector(_untrained(runs, stage)), _vector(one), _vector(two)
    return float((w2 - w1).norm() / (w1 - w0).norm())


@pytest.mark.slow
def test_one_ddp_step_in_float64_gives_the_one_process_gradient_of_the_doubled_batch(runs):
    # Rank 0's half has ignored pixels and rank 1's not: the global normalizer makes that irrelevant.
    for stage in ('segmentation', 'dissimilarity'):
        assert runs.gradients[stage]['grad_rel'] < 1e-10, stage
    # SyncBatchNorm's running statistics are those of the whole batch.
    assert runs.gradients['segmentation']['buffer_abs'] < 1e-10


@pytest.mark.slow
def test_two_processes_with_batch_one_train_every_stage_to_the_weights_of_one_process_with_batch_two(runs):
    for stage, two_dir in (('segmentation', runs.two), ('synthesis', runs.two), ('dissimilarity', runs.d2)):
        key = 'generator' if stage == 'synthesis' else 'network'
        one, two = Checkpoint(runs.one / 'training' / stage).load(), Checkpoint(two_dir / 'training' / stage).load()
        assert (one['epoch'], one['step']) == (two['epoch'], two['step']) == (1, 4 if stage == 'dissimilarity' else 2)
        assert two['processes'] == 2 and one['processes'] == 1
        error = _update_error(runs, stage, one[key], two[key])
        assert error < UPDATE_TOLERANCE[stage], (stage, error)
    # The discriminator has no untrained file to measure its update against: relative to its weights.
    d1, d2 = (_vector(_trained(d, 'synthesis', 'discriminator')) for d in (runs.one, runs.two))
    assert float((d2 - d1).norm() / d1.norm()) < 1e-4


@pytest.mark.slow
def test_sharded_calibration_and_data_generator_give_the_one_process_scale_and_samples(runs):
    assert load_model_config(runs.d2).perceptual_scale == pytest.approx(load_model_config(runs.one).perceptual_scale,
                                                                        rel=1e-5)
    one_sets = sorted(p.name for p in (runs.one / 'training' / 'generated').iterdir())
    two_sets = sorted(p.name for p in (runs.d2 / 'training' / 'generated').iterdir())
    assert one_sets == two_sets and len(two_sets) == 4   # same keys; no .partial or rank folder left over
    for name in two_sets:
        a = GeneratedSet.open(runs.one / 'training' / 'generated' / name)
        b = GeneratedSet.open(runs.d2 / 'training' / 'generated' / name)
        assert a.names == b.names and len(b) > 0
        for array in ('semantic', 'labels'):
            np.testing.assert_array_equal(a.arrays[array], b.arrays[array])
        for array, tolerance in (('image', 1), ('synthesis', 1), ('uncertainty', 2e-3)):   # uint8 steps, float16
            np.testing.assert_allclose(a.arrays[array].astype(np.float64), b.arrays[array].astype(np.float64),
                                       atol=tolerance, rtol=0)


@pytest.mark.slow
def test_only_rank_zero_prints_logs_and_writes_checkpoints_and_the_model_directory(runs):
    for stage in ('synthesis', 'dissimilarity'):
        steps = 4 if stage == 'dissimilarity' else 2
        assert runs.stdout.count(f'rank 0: {stage} 1 epochs {steps} steps') == 1   # both ranks trained ...
        assert runs.stdout.count(f'rank 1: {stage} 1 epochs {steps} steps') == 1
        assert runs.stdout.count(f'{stage} epoch 1/1:') == 1                        # ... one of them printed
    assert runs.stdout.count('data generator: train source A') == 1
    for stage in ('segmentation', 'synthesis'):
        work = runs.two / 'training' / stage
        assert len((work / 'metrics.csv').read_text().splitlines()) == 2       # header + one epoch
        assert len([p for p in (work / 'tensorboard').rglob('events.out.tfevents.*')]) == 1
    assert len(list((runs.two / 'training' / 'synthesis' / 'samples').iterdir())) == 1
    stages = load_model_config(runs.two).provenance['stages']
    assert stages['segmentation']['processes'] == {'count': 2, 'backend': 'gloo', 'sync_batchnorm': True}
    assert 'processes' not in load_model_config(runs.one).provenance['stages']['segmentation']


@pytest.mark.slow
def test_the_cli_under_torchrun_trains_with_its_flags_and_prints_the_summary_once(runs):
    assert runs.stdout.count('segmentation: 1 epochs (2 steps)') == 1
    record = load_model_config(runs.cli).provenance['stages']['segmentation']
    assert record['processes'] == {'count': 2, 'backend': 'gloo', 'sync_batchnorm': True}
    assert record['steps'] == 2 and (runs.cli / 'segmentation.pt').is_file()


@pytest.mark.slow
def test_checkpoints_resume_with_another_number_of_processes(runs):
    assert runs.resume_log[0].startswith('segmentation: resuming')
    assert 'epoch 1, step 2 (written by 2 process(es), continued by 1)' in runs.resume_log[0]
    assert (runs.resumed.epochs, runs.resumed.steps) == (2, 4)
    # 2 -> 1 and 1 -> 2 processes, each against its checkpoint continued by as many processes as wrote it.
    for resumed, same in ((runs.r1, runs.two_continued), (runs.r2, runs.reference)):
        state, expected = (Checkpoint(d / 'training' / 'segmentation').load() for d in (resumed, same))
        assert (state['epoch'], state['step']) == (expected['epoch'], expected['step']) == (2, 4)
        assert _update_error(runs, 'segmentation', expected['network'], state['network']) < 1e-4
    assert Checkpoint(runs.r2 / 'training' / 'segmentation').load()['processes'] == 2


def test_each_rank_takes_its_slice_of_the_global_batches_of_the_one_process_order():
    data = EpochData(11, lambda index, rng: index, seed=3)
    single = data.batches(epoch=2, batch_size=4)
    ranks = [data.batches(2, 2, dist=Dist(rank=r, world_size=2)) for r in range(2)]
    assert [a + b for a, b in zip(*ranks)] == single and len(single) == 2
    assert data.steps(2, world_size=2) == data.steps(4) == 2
    loaded = [batch.tolist() for batch in data.loader(2, 2, dist=Dist(rank=1, world_size=2))]
    assert loaded == ranks[1]
    # Shares of a frame range (data generator, calibration) concatenate back to the range in order.
    assert [i for r in range(3) for i in Dist(rank=r, world_size=3).shard(10)] == list(range(10))
    with pytest.raises(DistributedError, match='cannot feed 4 processes'):
        Dist(rank=0, world_size=4).shard_batch([1, 2, 3])


def test_data_loader_workers_are_off_on_the_cpu_and_at_most_four_per_process_on_cuda():
    assert data_workers(None, Dist()) == 0
    assert data_workers(3, Dist()) == 3
    cuda = torch.device('cuda', 0)
    cores = len(os.sched_getaffinity(0))
    assert data_workers(None, Dist(device=cuda, local_world_size=cores)) == 0
    assert 0 <= data_workers(None, Dist(device=cuda)) <= 4


def test_launch_environment_reads_the_torchrun_variables_and_refuses_inconsistent_ones():
    env = {'RANK': '1', 'WORLD_SIZE': '2', 'LOCAL_RANK': '1', 'LOCAL_WORLD_SIZE': '2', 'MASTER_ADDR': 'node0',
           'MASTER_PORT': '29500'}
    assert launch_environment(env) == LaunchEnv(1, 2, 1, 2)
    assert launch_environment({}) is None
    with pytest.raises(DistributedError, match='RANK=2 with WORLD_SIZE=2'):
        launch_environment({**env, 'RANK': '2'})
    with pytest.raises(DistributedError, match="WORLD_SIZE='two' is not an integer"):
        launch_environment({**env, 'WORLD_SIZE': 'two'})


def test_a_half_set_launch_environment_stops_the_cli_naming_what_is_missing(monkeypatch, capsys, tiny_dataset,
                                                                             tmp_path):
    for name in ENV_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '2')
    code = main(['train', 'segmentation', '--dataset', 'synthetic', '--root', str(tiny_dataset), '--out',
                 str(tmp_path / 'model'), '--quiet'])
    assert code == 2
    err = capsys.readouterr().err
    assert 'RANK, WORLD_SIZE set but LOCAL_RANK, MASTER_ADDR, MASTER_PORT missing' in err and 'torchrun' in err
    assert not (tmp_path / 'model').exists()


def test_mixed_precision_is_refused_on_the_cpu_before_anything_is_written(tmp_path, tiny_config):
    for precision in ('bf16', 'fp16'):
        with pytest.raises(PrecisionError, match='use --precision fp32'):
            train_segmentation(tiny_config(precision=precision, device='cpu'), tmp_path / 'model',
                               show_progress=False, log=_quiet)
    assert not (tmp_path / 'model').exists()


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU (autocast bf16/fp16, GradScaler, '
                                                          'channels-last)')
@pytest.mark.parametrize('precision', ['bf16', 'fp16'])
def test_mixed_precision_trains_every_stage_on_cuda_with_float32_weights(tmp_path, tiny_config, precision):
    if precision == 'bf16' and not torch.cuda.is_bf16_supported():
        pytest.skip('this GPU has no bfloat16')
    config = tiny_config(epochs=1, precision=precision, device='cuda')
    out = tmp_path / 'model'
    for train in (train_segmentation, train_synthesis):
        train(config, out, show_progress=False, log=_quiet)
    calibrate_perceptual(config, out, show_progress=False, log=_quiet)
    train_dissimilarity(config, out, show_progress=False, log=_quiet)
    for stage in TRAINED:
        state = Checkpoint(out / 'training' / stage).load()
        losses = [v for k, v in state['history'][-1].items() if 'loss' in k or k in ('g_gan', 'g_feat', 'd_hinge')]
        assert losses and all(np.isfinite(losses))
        assert ('scaler' in state) == (precision == 'fp16')
        weights = torch.load(out / f'{stage}.pt', weights_only=True)['state_dict']
        assert all(v.dtype == torch.float32 for v in weights.values() if v.is_floating_point())
        assert load_model_config(out).provenance['stages'][stage]['precision'] == precision
