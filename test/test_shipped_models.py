"""The model directories the project ships: within the size a checkout may carry, loadable in every precision
their model.yaml names, and honest about how they were made."""
from __future__ import annotations

import numpy as np
import pytest

from anomaly_seg_ros.model_config import load_model_config
from anomaly_seg_ros.pipeline import AnomalyPipeline
from anomaly_seg_ros.resources import default_model_dir

MAX_SHIPPED_BYTES = 25_000_000


@pytest.fixture(scope='module')
def default_model():
    return default_model_dir()


def test_the_default_model_fits_the_shipped_size(default_model):
    total = sum(p.stat().st_size for p in default_model.iterdir() if p.is_file())
    assert total <= MAX_SHIPPED_BYTES, f'{default_model} takes {total:,} bytes'


def test_the_default_model_learned_from_pasted_objects_with_void_ignored(default_model):
    provenance = load_model_config(default_model).provenance
    generator = provenance['config']['dissimilarity']['generator']
    assert set(generator['sources']) == {'A', 'C'} and generator['void'] == 'ignore'
    record = provenance['stages']['dissimilarity']
    assert 'horse' not in record['objects']['train']['categories']  # a held-out category
    assert provenance['data']['ensemble_validation']['dataset'] == 'folder'
    manifest = (default_model / 'MANIFEST.md').read_text()
    assert 'CC BY 4.0' in manifest and 'held out for validation only' in manifest


@pytest.mark.parametrize('precision', ['fp32', 'int8'])
def test_the_default_model_runs_on_onnxruntime_in_each_precision(default_model, precision):
    model = load_model_config(default_model)
    if precision == 'int8':
        int8 = [s for s in model.stages if 'onnx_int8' in model.stage(s).files]
        assert int8, 'the default model ships INT8 graphs (export --int8)'
        chosen = model.provenance['int8']['stages']
        assert int8 == [stage for stage, precision in chosen.items() if precision == 'int8']
        for stage in int8:
            assert (default_model / model.stage(stage).files['onnx_int8']).is_file()
    frame = np.random.default_rng(0).integers(0, 255, (180, 320, 3), dtype=np.uint8)
    with AnomalyPipeline.from_model_dir(default_model, backend='onnxruntime', precision=precision) as pipeline:
        result = pipeline.process(frame, outputs=['semantic', 'anomaly'])
    assert result.anomaly.shape == (180, 320)
    assert np.isfinite(result.anomaly).all() and 0 <= result.anomaly.min() <= result.anomaly.max() <= 1
