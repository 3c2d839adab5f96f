"""Outputs are never NaN or Inf and stay in their documented ranges; a stage that produces non-finite
values is reported and its frame is not published.

Ranges (pipeline.PipelineResult, ros/outputs.py): the five float maps float32 in [0, 1]; semantic
uint8 train ids < num_classes; synthesis and the colorized topics HxWx3 uint8, semantic topic mono8.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from injection import InjectingBackend, is_black
from probe import image_msg, stamp_ns

from anomaly_seg_ros.pipeline import FLOAT_OUTPUTS, AnomalyPipeline, NonFiniteOutputError
from anomaly_seg_ros.ros.conversions import image_msg_to_array
from anomaly_seg_ros.ros.outputs import OUTPUT_TOPICS, HeatmapStyle, render
from anomaly_seg_ros.visualization import COLORMAPS

FRAME_EXAMPLES = 200
POISONED = [('segmentation', 'entropy'), ('segmentation', 'softmax_distance'), ('synthesis', 'synthesis'),
            ('perceptual', 'perceptual_difference'), ('dissimilarity', 'dissimilarity'), ('dissimilarity', 'anomaly')]


@pytest.fixture(scope='module')
def pipeline(tiny_model: Path) -> Any:
    with AnomalyPipeline.from_model_dir(tiny_model, backend='onnxruntime', device='cpu') as opened:
        yield opened


@st.composite
def frames(draw: st.DrawFn) -> np.ndarray:
    height = draw(st.one_of(st.sampled_from([1, 2, 64]), st.integers(1, 160)))
    width = draw(st.one_of(st.sampled_from([1, 3, 128]), st.integers(1, 240)))
    kind = draw(st.sampled_from(['noise', 'black', 'white', 'stripes', 'saturated']))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == 'noise':
        return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    if kind == 'black':
        return np.zeros((height, width, 3), np.uint8)
    if kind == 'white':
        return np.full((height, width, 3), 255, np.uint8)
    if kind == 'stripes':
        frame = np.zeros((height, width, 3), np.uint8)
        frame[:, ::2] = 255
        return frame
    frame = np.zeros((height, width, 3), np.uint8)
    frame[..., int(rng.integers(0, 3))] = 255
    return frame


output_sizes = st.one_of(st.none(), st.just('network'), st.tuples(st.integers(1, 90), st.integers(1, 120)))


def check_ranges(result: Any, num_classes: int) -> None:
    for name in FLOAT_OUTPUTS:
        values = result.get(name)
        assert values.dtype == np.float32 and values.ndim == 2, name
        assert np.all(np.isfinite(values)), name
        assert values.min() >= 0.0 and values.max() <= 1.0, (name, values.min(), values.max())
    assert result.semantic.dtype == np.uint8 and result.semantic.ndim == 2
    assert result.semantic.max() < num_classes
    assert result.synthesis.dtype == np.uint8 and result.synthesis.ndim == 3 and result.synthesis.shape[2] == 3


@settings(max_examples=FRAME_EXAMPLES, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames(), output_size=output_sizes, colormap=st.sampled_from(sorted(COLORMAPS)),
       low=st.floats(-1.0, 0.9), span=st.floats(1e-3, 2.0), alpha=st.floats(0.0, 1.0))
def test_every_output_and_topic_of_the_tiny_model_stays_in_its_documented_range(pipeline, frame, output_size,
                                                                                  colormap, low, span, alpha):
    result = pipeline.process(frame, None, output_size)
    check_ranges(result, pipeline.label_set.num_classes)
    if output_size is None:
        assert result.anomaly.shape == frame.shape[:2] and result.synthesis.shape == frame.shape
    elif output_size != 'network':
        assert result.anomaly.shape == tuple(output_size)
    style = HeatmapStyle(colormap, (low, low + span), alpha)
    for topic, spec in OUTPUT_TOPICS.items():
        array = render(topic, result, frame, pipeline.label_set, style)
        if spec.encoding == 'rgb8':
            assert array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3, topic
        elif spec.encoding == 'mono8':
            assert array.dtype == np.uint8 and array.max() < pipeline.label_set.num_classes, topic
        else:
            assert array.dtype == np.float32 and np.all(np.isfinite(array)), topic
            assert array.min() >= 0.0 and array.max() <= 1.0, topic


@pytest.mark.parametrize('value', [float('nan'), float('inf'), -float('inf')], ids=['nan', 'inf', '-inf'])
@pytest.mark.parametrize('poison', POISONED, ids=[f'{s}.{t}' for s, t in POISONED])
def test_non_finite_values_of_any_stage_never_reach_a_result(pipeline, poison, value):
    broken = AnomalyPipeline(pipeline.config, InjectingBackend(pipeline.backend, poison, value))
    frame = np.random.default_rng(0).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    with pytest.raises(NonFiniteOutputError) as info:
        broken.process(frame)  # every output requested
    assert 'non-finite' in str(info.value) and info.value.count > 0
    assert info.value.output == poison[1]  # outputs are checked in stage order: the broken one is named
    # asking only for the final output: damage upstream shows up there, not silently
    with pytest.raises(NonFiniteOutputError):
        broken.process(frame, ['dissimilarity' if poison[1] == 'dissimilarity' else 'anomaly'])


# --- the node ---------------------------------------------------------------------------------------
@pytest.mark.ros
def test_a_frame_with_non_finite_outputs_is_reported_and_not_published_and_the_next_one_is(tiny_model, make_node,
                                                                                           probe):
    real = AnomalyPipeline.from_model_dir(tiny_model, backend='onnxruntime', device='cpu')
    backend = InjectingBackend(real.backend, ('perceptual', 'perceptual_difference'), when=is_black)
    node = make_node(AnomalyPipeline(real.config, backend), diagnostics_period=0.2)  # closed with the node
    probe.subscribe(OUTPUT_TOPICS)
    probe.wait_for_node_subscription()
    assert probe.spin_until(lambda: len(node._outputs.active()) == len(OUTPUT_TOPICS), 10)
    publisher = probe.publisher()
    rng = np.random.default_rng(1)
    good = [image_msg(rng.integers(1, 256, (48, 80, 3), dtype=np.uint8), probe.now_ns() + i) for i in range(2)]
    black = image_msg(np.zeros((48, 80, 3), np.uint8), probe.now_ns() + 10)
    sent = [good[0], black, good[1]]
    for count, msg in enumerate(sent, start=1):
        publisher.publish(msg)  # one at a time: a newer frame would replace an unconverted one
        assert probe.spin_until(lambda c=count: node.frames_finished >= c, 20), count
    assert probe.spin_until(lambda: all(stamp_ns(good[1]) in probe.stamps(t) for t in OUTPUT_TOPICS), 10)
    for topic in OUTPUT_TOPICS:
        assert stamp_ns(black) not in probe.stamps(topic), topic
        assert {stamp_ns(good[0]), stamp_ns(good[1])} <= probe.stamps(topic), topic
        for msg in probe.messages(topic):
            values = image_msg_to_array(msg)
            if msg.encoding == '32FC1':
                assert np.all(np.isfinite(values)) and 0.0 <= values.min() and values.max() <= 1.0, topic
    totals = node.statistics.totals()
    assert (totals['processed'], totals['nonfinite'], totals['failed']) == (2, 1, 0), totals
    values = probe.wait_for_diagnostics(lambda v: v.get('frames_nonfinite') == '1', 5)
    assert values['frames_nonfinite'] == '1'
    assert "'perceptual_difference' has" in values['last_nonfinite'] and 'non-finite' in values['last_nonfinite']
