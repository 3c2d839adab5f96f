"""AnomalyPipeline's host side, on a numpy backend that follows the stage contract."""
from __future__ import annotations

from collections import Counter

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.labels import SYNTHETIC
from anomaly_seg_ros.model_config import ModelConfig, StageConfig
from anomaly_seg_ros.pipeline import OUTPUT_NAMES, AnomalyPipeline, NonFiniteOutputError
from anomaly_seg_ros.stages import stage_specs

SIZES = {'segmentation': (32, 64), 'synthesis': (16, 32), 'perceptual': (16, 32), 'dissimilarity': (8, 16)}


def _config(weights=(0.75, 0.25, 0.0, 0.0)) -> ModelConfig:
    return ModelConfig(label_set=SYNTHETIC, stages={s: StageConfig(input_size=hw) for s, hw in SIZES.items()},
                       ensemble_weights=weights)


def _resize(chw: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.stack([cv2.resize(c, size[::-1], interpolation=cv2.INTER_LINEAR) for c in chw])


class NumpyBackend:
    """Stand-in stages: semantic = red channel > 0.5, entropy = green, distance = blue, ..."""

    name = 'numpy'
    device = 'cpu'

    def __init__(self, config: ModelConfig, nan_in: str | None = None) -> None:
        self.specs = stage_specs(config)
        self.runs: Counter[str] = Counter()
        self.uploads = 0
        self.nan_in = nan_in

    def upload(self, array):
        self.uploads += 1
        return np.array(array)

    def download(self, value):
        return np.asarray(value)

    def close(self):
        pass

    def run(self, stage, inputs):
        self.runs[stage] += 1
        spec = self.specs[stage]
        assert set(inputs) >= set(spec.input_names), f'{stage} misses inputs'
        for tensor in spec.inputs:
            assert inputs[tensor.name].shape == tensor.shape, (stage, tensor.name)
            assert inputs[tensor.name].dtype == np.dtype(tensor.dtype), (stage, tensor.name)
        image = inputs['image'][0]
        if stage == 'segmentation':
            out = {'semantic': (image[0:1] > 0.5).astype(np.int32),
                   'entropy': image[None, 1:2].copy(), 'softmax_distance': image[None, 2:3].copy()}
        elif stage == 'synthesis':
            sem = inputs['semantic'][0].astype(np.float32)
            out = {'synthesis': _resize(np.stack([sem] * 3), SIZES['synthesis'])[None]}
        elif stage == 'perceptual':
            out = {'perceptual_difference': np.full((1, 1, *SIZES['perceptual']), 0.5, np.float32)}
        else:
            entropy = _resize(inputs['entropy'][0], SIZES['dissimilarity'])[None]
            weights = inputs['ensemble_weights'] / inputs['ensemble_weights'].sum()
            dissimilarity = np.full_like(entropy, 0.2)
            out = {'dissimilarity': dissimilarity, 'anomaly': weights[0] * dissimilarity + weights[1] * entropy}
        if self.nan_in in out:
            out[self.nan_in] = np.full_like(out[self.nan_in], np.nan)
        for tensor in spec.outputs:
            assert out[tensor.name].shape == tensor.shape, (stage, tensor.name, out[tensor.name].shape)
        return out


def _frame(height=48, width=80) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_all_outputs_come_back_at_the_frame_size_with_documented_types():
    pipeline = AnomalyPipeline(_config(), NumpyBackend(_config()))
    result = pipeline.process(_frame(47, 81))
    assert result.semantic.shape == (47, 81) and result.semantic.dtype == np.uint8
    assert result.synthesis.shape == (47, 81, 3) and result.synthesis.dtype == np.uint8
    for name in ('entropy', 'softmax_distance', 'perceptual_difference', 'dissimilarity', 'anomaly'):
        values = result.get(name)
        assert values.shape == (47, 81) and values.dtype == np.float32, name
        assert 0.0 <= values.min() and values.max() <= 1.0, name
    assert {'prepare', 'segmentation', 'synthesis', 'perceptual', 'dissimilarity', 'fetch', 'total'} \
        <= set(result.timings_ms)


def test_semantic_only_runs_segmentation_and_leaves_other_outputs_empty():
    backend = NumpyBackend(_config())
    result = AnomalyPipeline(_config(), backend).process(_frame(), outputs={'semantic'})
    assert backend.runs == Counter({'segmentation': 1})
    assert result.semantic is not None
    assert all(result.get(name) is None for name in OUTPUT_NAMES if name != 'semantic')


def test_synthesis_request_stops_before_the_perceptual_stage():
    backend = NumpyBackend(_config())
    AnomalyPipeline(_config(), backend).process(_frame(), outputs={'synthesis', 'entropy'})
    assert set(backend.runs) == {'segmentation', 'synthesis'}


def test_network_output_size_keeps_each_stage_resolution():
    result = AnomalyPipeline(_config(), NumpyBackend(_config())).process(_frame(), output_size='network')
    assert result.semantic.shape == SIZES['segmentation']
    assert result.synthesis.shape == (*SIZES['synthesis'], 3)
    assert result.perceptual_difference.shape == SIZES['perceptual']
    assert result.anomaly.shape == SIZES['dissimilarity']


def test_explicit_output_size_is_honoured():
    result = AnomalyPipeline(_config(), NumpyBackend(_config())).process(_frame(), output_size=(10, 20))
    assert result.anomaly.shape == (10, 20) and result.semantic.shape == (10, 20)


def test_semantic_map_is_resized_without_inventing_labels():
    frame = np.zeros((40, 40, 3), np.uint8)
    frame[:, 20:, 0] = 255
    result = AnomalyPipeline(_config(), NumpyBackend(_config())).process(frame, outputs={'semantic'})
    assert set(np.unique(result.semantic)) == {0, 1}


def test_ensemble_weights_reach_the_graph_and_are_uploaded_once_per_change():
    backend = NumpyBackend(_config())
    pipeline = AnomalyPipeline(_config(), backend)
    frame = _frame()
    base = backend.uploads
    first = pipeline.process(frame, outputs={'anomaly'})
    pipeline.process(frame, outputs={'anomaly'})
    assert backend.uploads - base == 3  # weights once, the frame twice
    pipeline.ensemble_weights = (1.0, 0.0, 0.0, 0.0)
    only_dissimilarity = pipeline.process(frame, outputs={'anomaly'})
    np.testing.assert_allclose(only_dissimilarity.anomaly, 0.2, atol=1e-6)
    assert not np.allclose(first.anomaly, only_dissimilarity.anomaly)


@pytest.mark.parametrize('weights', [(3e38, 3e38, 0, 0), (1e-300, 0, 0, 0), (1e-45, 1e-45, 1e-45, 1e-45)])
def test_ensemble_weights_at_any_scale_reach_the_float32_graph_normalized(weights):
    pipeline = AnomalyPipeline(_config(), NumpyBackend(_config()))
    pipeline.ensemble_weights = weights
    expected = np.asarray(weights, np.float64) / np.sum(np.asarray(weights, np.float64) / max(weights)) / max(weights)
    np.testing.assert_allclose(pipeline.ensemble_weights, expected, rtol=1e-6)
    anomaly = pipeline.process(_frame(), outputs={'anomaly'}).anomaly
    assert np.all(np.isfinite(anomaly)) and anomaly.max() > 0  # never silently all zero


@pytest.mark.parametrize('weights', [(1, 2, 3), (-1, 1, 1, 1), (0, 0, 0, 0), (np.nan, 1, 1, 1)])
def test_invalid_ensemble_weights_are_rejected_and_the_old_ones_kept(weights):
    pipeline = AnomalyPipeline(_config(), NumpyBackend(_config()))
    with pytest.raises(ValueError, match='ensemble weights'):
        pipeline.ensemble_weights = weights
    assert pipeline.ensemble_weights == (0.75, 0.25, 0.0, 0.0)


def test_non_finite_stage_output_raises_instead_of_returning_garbage():
    pipeline = AnomalyPipeline(_config(), NumpyBackend(_config(), nan_in='anomaly'))
    with pytest.raises(NonFiniteOutputError, match="'anomaly' has 128 non-finite"):
        pipeline.process(_frame(), outputs={'anomaly'})


@pytest.mark.parametrize('bad', [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32),
                                 np.zeros((0, 4, 3), np.uint8)])
def test_frames_that_are_not_rgb_uint8_are_refused(bad):
    with pytest.raises(ValueError):
        AnomalyPipeline(_config(), NumpyBackend(_config())).process(bad)


def test_unknown_output_names_are_refused():
    with pytest.raises(ValueError, match='unknown outputs'):
        AnomalyPipeline(_config(), NumpyBackend(_config())).process(_frame(), outputs={'heatmap'})
