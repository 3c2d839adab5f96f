"""Training throughput of one stage with 1, 2, ... processes (torchrun + DistributedDataParallel).

    python -m anomaly_seg_ros.benchmark.training_scaling [--processes 1 2] [--stage segmentation]
        [--batch 4] [--steps 12] [--repeat 3] [--device cpu|cuda] [--precision fp32|bf16|fp16]
        [--out scaling.json]

For each process count the real trainer runs under ``python -m torch.distributed.run --standalone`` for
three short epochs (``--steps`` steps each, ``--batch`` samples per process, light preset sizes) on a
synthetic dataset generated at the segmentation input size; the figure is samples per second of the last
epoch (frames decoded and cached by then): steps * processes * batch / the epoch's wall time, measured by
rank 0 between the epoch lines the trainer prints (so a one-frame validation and the checkpoint write are
inside it, for every process count alike). ``--repeat`` runs the process counts in turn that many times
and reports the median, since other work on the machine (the load average is recorded) slows single runs.

On a CPU the processes share the machine's cores: one process gets them all as torch threads, N
processes cores // N each, so the figure shows how well DDP (gloo) splits the same cores, not a
speed-up from more hardware; on a 2-core machine two processes can at best match one. On GPUs each
process drives its own GPU and the figure scales with their number until data loading or the
all-reduce limits it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ['main', 'measure']

_ENV = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT', 'GROUP_RANK',
        'ROLE_RANK', 'TORCHELASTIC_RUN_ID')
_EPOCHS = 3


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)


def _worker(spec_path: str) -> int:
    """One process of a measurement: train the stage, time the epochs (rank 0 writes them)."""
    from ..training import load_train_config, train_segmentation, train_synthesis
    from ..training.distributed import init_distributed, shutdown_distributed
    spec = json.loads(Path(spec_path).read_text())
    config = load_train_config('light', sets=spec['sets'])
    dist = init_distributed(config.device)
    stamps: list[float] = []

    def log(line: str) -> None:
        if f'{spec["stage"]} epoch ' in line:
            stamps.append(time.perf_counter())

    dist.barrier()
    start = time.perf_counter()
    trainer = {'segmentation': train_segmentation, 'synthesis': train_synthesis}[spec['stage']]
    trainer(config, spec['out'], show_progress=False, log=log)
    if dist.is_main:
        Path(spec['result']).write_text(json.dumps({'start': start, 'epochs': stamps}))
    shutdown_distributed()
    return 0


def measure(processes: int, stage: str, batch: int, steps: int, root: Path, work: Path, device: str = 'cpu',
            precision: str = 'fp32', threads: int | None = None) -> dict[str, Any]:
    """Train ``stage`` with ``processes`` processes of ``batch`` samples; samples per second of the last epoch."""
    work.mkdir(parents=True, exist_ok=True)
    result = work / f'result_{processes}.json'
    section = {'epochs': _EPOCHS, 'batch_size': batch, 'steps_per_epoch': steps}
    sets = {'device': device, 'precision': precision, 'seed': 0, stage: section,
            'data': {'dataset': 'synthetic', 'root': str(root), 'val_limit': 1}}
    spec = {'stage': stage, 'out': str(work / f'model_{processes}'), 'result': str(result), 'sets': sets}
    spec_path = work / f'spec_{processes}.json'
    spec_path.write_text(json.dumps(spec))
    threads = threads or max(1, _cores() // processes)
    env = {k: v for k, v in os.environ.items() if k not in _ENV}
    env.update(OMP_NUM_THREADS=str(threads), PYTHONPATH=os.pathsep.join(
        [str(Path(__file__).resolve().parents[2]), env.get('PYTHONPATH', '')]))
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', str(processes),
               '-m', 'anomaly_seg_ros.benchmark.training_scaling', '--worker', str(spec_path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f'{processes} process(es) failed ({done.returncode}):\n{done.stderr[-4000:]}')
    stamps = json.loads(result.read_text())['epochs']
    if len(stamps) != _EPOCHS:
        raise RuntimeError(f'expected {_EPOCHS} epoch lines, got {len(stamps)}')
    seconds = stamps[-1] - stamps[-2]
    samples = steps * processes * batch
    return {'processes': processes, 'threads_per_process': threads, 'batch_per_process': batch,
            'global_batch': processes * batch, 'steps': steps, 'epoch_s': round(seconds, 3),
            'samples_per_s': round(samples / seconds, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m anomaly_seg_ros.benchmark.training_scaling',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    parser.add_argument('--processes', type=int, nargs='+', default=[1, 2], metavar='N')
    parser.add_argument('--stage', default='segmentation', choices=('segmentation', 'synthesis'))
    parser.add_argument('--batch', type=int, default=4, help='samples per process and step (default %(default)s)')
    parser.add_argument('--steps', type=int, default=12, help='steps per epoch (default %(default)s)')
    parser.add_argument('--repeat', type=int, default=3, help='runs per process count (default %(default)s)')
    parser.add_argument('--device', default='cpu', help="'cpu' (gloo) or 'cuda' (NCCL, one GPU per process)")
    parser.add_argument('--precision', default='fp32', choices=('fp32', 'bf16', 'fp16'))
    parser.add_argument('--threads', type=int, help='torch threads per process (default: usable cores // N)')
    parser.add_argument('--root', type=Path, help='synthetic dataset to use (default: generated in a temp folder)')
    parser.add_argument('--out', type=Path, help='write the figures as JSON here')
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args.worker)
    from ..data.synthetic import write_dataset
    from ..stage_modules import light_model_config
    from .machine import load_average, machine_info
    with tempfile.TemporaryDirectory(prefix='training_scaling_') as tmp:
        root = args.root
        if root is None:
            height, width = light_model_config().stage('segmentation').input_size
            root = Path(tmp) / 'data'
            frames = args.steps * args.batch * max(args.processes)
            write_dataset(root, {'train': frames, 'val': 1}, size=(width, height), seed=0, progress=False)
        runs: dict[int, list[dict[str, Any]]] = {n: [] for n in args.processes}
        loads = [load_average()]
        for repeat in range(args.repeat):
            for n in args.processes:
                row = measure(n, args.stage, args.batch, args.steps, root, Path(tmp) / f'work_{n}_{repeat}',
                              args.device, args.precision, args.threads)
                runs[n].append(row)
                loads.append(load_average())
                print(f'{n} process(es) x {row["threads_per_process"]} thread(s), batch {args.batch} per process: '
                      f'{row["samples_per_s"]:.2f} samples/s ({row["epoch_s"]:.2f} s for {args.steps} steps)',
                      flush=True)
    rows = []
    for n, measured in runs.items():
        rows.append({**measured[0], 'epoch_s': None, 'samples_per_s': statistics.median(
            r['samples_per_s'] for r in measured), 'samples_per_s_runs': [r['samples_per_s'] for r in measured]})
        print(f'median, {n} process(es): {rows[-1]["samples_per_s"]:.2f} samples/s')
    report = {'stage': args.stage, 'device': args.device, 'precision': args.precision, 'rows': rows,
              'machine': machine_info(), 'load_averages': loads}
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
