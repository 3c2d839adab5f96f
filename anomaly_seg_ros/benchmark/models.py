"""Model directories to benchmark: the shipped models, or random-weight ones made once and cached.

``--paper-scale`` times the paper-size networks (ICNet ResNet-50 at 1024x2048, SPADE ngf 64, VGG19
and the dissimilarity network at 256x512, 19 Cityscapes classes) with random weights: every shape
and FLOP is real, the outputs are meaningless, and no trained weights are needed. Where the shipped
``models/demo`` is not installed (training still running), the light CPU configuration with random
weights stands in for it. Both are built with :func:`~..stage_modules.init_random_model_dir`, exported
with :func:`~..export.export_model` (ONNX, optionally FP16, parity-checked on one frame) and kept in
a cache directory, so only the first run pays the export (minutes at paper scale); TensorRT engines
are built there on first use on a GPU machine.

torch and onnx are imported only when a directory has to be made.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

from .. import __version__
from ..errors import ModelError
from ..model_config import ModelConfig, load_model_config
from ..resources import default_model_dir
from ..runtime.stage_files import onnx_files_present, stage_file
from ..stages import STAGE_ORDER

__all__ = ['default_cache_dir', 'random_model_dir', 'resolve_model_dir']

_LOG = logging.getLogger(__name__)
_MARKER = '.bench_complete'


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/anomaly_seg_ros/bench`` (``~/.cache/...`` when unset)."""
    base = os.environ.get('XDG_CACHE_HOME') or str(Path.home() / '.cache')
    return Path(base) / 'anomaly_seg_ros' / 'bench'


def _graph_sources() -> str:
    """Digest of the code that shapes the exported graphs: a change there makes cached models stale."""
    package = Path(__file__).resolve().parents[1]
    files = [package / name for name in ('export/onnx_export.py', 'export/fp16.py', 'stage_modules.py',
                                          'uncertainty.py')]
    files += sorted((package / 'networks').glob('*.py'))
    digest = hashlib.sha256()
    for path in files:
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _key(config: ModelConfig, fp16: bool, seed: int) -> str:
    text = json.dumps({'config': config.to_dict(), 'fp16': fp16, 'seed': seed, 'version': __version__,
                       'sources': _graph_sources()}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def random_model_dir(kind: str, cache_dir: Path, *, fp16: bool = False, seed: int = 0,
                     config: ModelConfig | None = None) -> Path:
    """``<cache_dir>/<kind>_random[_fp16]``: random weights of the ``'paper'`` or ``'light'`` configuration, exported.

    Reused while its configuration, seed, this package's version and the source of the graph code
    (export, stage modules, uncertainty maps, networks) are unchanged (a marker file records a digest
    of them); otherwise rebuilt. ``config`` replaces the configuration (tests use a tiny one).
    An export whose parity check fails is kept with a warning: its timings are still valid.
    """
    from ..stage_modules import init_random_model_dir, light_model_config, paper_model_config

    if config is None:
        if kind not in ('paper', 'light'):
            raise ValueError(f"kind must be 'paper' or 'light', got {kind!r}")
        config = paper_model_config() if kind == 'paper' else light_model_config()
    out = Path(cache_dir) / f'{kind}_random{"_fp16" if fp16 else ""}'  # FP16: the FP32 graphs too
    key = _key(config, fp16, seed)
    marker = out / _MARKER
    if marker.is_file() and marker.read_text().strip() == key:
        return out
    if out.exists():
        shutil.rmtree(out)
    source = Path(cache_dir) / f'{out.name}.pt'
    if source.exists():
        shutil.rmtree(source)
    _LOG.warning('making the %s-scale random-weight model in %s (once; reused by later runs)', kind, out)
    init_random_model_dir(source, config, seed=seed)
    _export(source, out, fp16)
    shutil.rmtree(source, ignore_errors=True)
    marker.write_text(key + '\n')
    return out


def _export(source: Path, out: Path, fp16: bool) -> None:
    from ..export import ParityError, export_model
    from .frames import bench_frames

    config = load_model_config(source)
    height, width = config.stage('segmentation').input_size
    try:
        export_model(source, out, fp16=fp16, frames=bench_frames(width, height, count=1))
    except ParityError as exc:  # random weights at paper depth: timings are what matters here
        _LOG.warning('%s', exc)


def _ensure_engines(model_dir: Path, precision: str, device: str | None) -> None:
    from ..export import build_engines

    config = load_model_config(model_dir)
    meta = config.tensorrt or {}
    engines = all(stage_file(model_dir, config, stage, 'tensorrt').is_file() for stage in STAGE_ORDER)
    if engines and meta.get('precision') == precision:
        return
    _LOG.warning('building TensorRT %s engines in %s (minutes, once per machine)', precision, model_dir)
    build_engines(model_dir, precision=precision, device=device or 'cuda')


def resolve_model_dir(models: Path | None, *, paper_scale: bool, cache_dir: Path, backends: list[str],
                      precision: str = 'fp32', device: str | None = None) -> tuple[Path, str]:
    """The directory to benchmark and how it was chosen.

    ``models`` given: used as is (a missing file is the backend's error, naming what to run).
    ``paper_scale``: the cached paper-size random model. Otherwise the shipped default model, or
    the cached light random model where none is installed. For the cached ones, FP16 graphs are
    exported when ``precision='fp16'`` and TensorRT engines built when ``'tensorrt'`` is asked for.
    """
    fp16 = precision == 'fp16'
    if models is not None:
        return Path(models), 'given'
    if paper_scale:
        path, how = random_model_dir('paper', cache_dir, fp16=fp16), 'paper scale, random weights'
    else:
        try:
            path = default_model_dir()
            how = f'shipped model {path.name}'
            config = load_model_config(path)
            if any(b != 'torch' for b in backends) and not onnx_files_present(path, config, fp16=fp16):
                raise ModelError(f'{path} has no exported ONNX files')
        except ModelError as exc:
            _LOG.warning('%s; benchmarking the light configuration with random weights instead', exc)
            path, how = random_model_dir('light', cache_dir, fp16=fp16), 'light configuration, random weights'
    if 'tensorrt' in backends and not how.startswith('shipped model'):
        _ensure_engines(path, precision, device)
    return path, how
