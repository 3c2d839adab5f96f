"""The node in this process with a fake pipeline: outputs, laziness, bad frames, parameters."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fake_pipeline import make_fake_pipeline, rgb_frame
from probe import compressed_msg, image_msg, stamp_ns

from anomaly_seg_ros.ros.node_process import DDS_PROFILE_VARIABLES
from anomaly_seg_ros.ros.outputs import OUTPUT_TOPICS
from anomaly_seg_ros.ros.parameters import ParameterError

pytestmark = pytest.mark.ros

ENCODINGS = {topic: spec.encoding for topic, spec in OUTPUT_TOPICS.items()}
REPO_ROOT = Path(__file__).resolve().parents[2]


def _send_frames(probe, done, timeout=10.0, encoding='rgb8', size=(48, 80)):
    sent = []

    def make():
        msg = image_msg(rgb_frame(*size, seed=len(sent)), probe.now_ns(), 'cam_front', encoding)
        sent.append(msg)
        return msg

    assert probe.send_until(make, done, timeout), 'the node published nothing in time'
    return {stamp_ns(msg) for msg in sent}


def test_outputs_carry_the_input_header_size_and_documented_encoding(make_node, probe):
    make_node()
    probe.subscribe(OUTPUT_TOPICS)
    sent = _send_frames(probe, lambda: all(probe.messages(t) for t in OUTPUT_TOPICS), encoding='bgr8')
    for topic, encoding in ENCODINGS.items():
        for msg in probe.messages(topic):
            assert stamp_ns(msg) in sent, topic
            assert msg.header.frame_id == 'cam_front', topic
            assert (msg.width, msg.height, msg.encoding) == (80, 48, encoding), topic


def test_only_the_stages_for_subscribed_topics_run(make_node, probe):
    pipeline = make_fake_pipeline()
    node = make_node(pipeline)
    after_warm_up = dict(pipeline.backend.runs)
    probe.subscribe(['semantic_color'])
    _send_frames(probe, lambda: len(probe.messages('semantic_color')) >= 3)
    runs = pipeline.backend.runs
    assert runs['segmentation'] > after_warm_up['segmentation']
    for stage in ('synthesis', 'perceptual', 'dissimilarity'):
        assert runs[stage] == after_warm_up[stage], stage
    assert set(node.statistics.published) == {'semantic_color'}
    assert set(node.statistics.stage_runs) == {'segmentation'}


def test_nothing_is_computed_without_subscribers(make_node, probe):
    pipeline = make_fake_pipeline()
    node = make_node(pipeline)
    after_warm_up = dict(pipeline.backend.runs)
    _send_frames(probe, lambda: node.statistics.totals()['idle'] >= 3)
    assert dict(pipeline.backend.runs) == after_warm_up
    assert node.statistics.totals()['processed'] == 0


class _Logger:
    def __init__(self):
        self.lines = []

    def __getattr__(self, level):
        return lambda text: self.lines.append((level, text))


def test_malformed_frames_are_skipped_logged_throttled_and_the_next_good_frame_is_processed(make_node, probe,
                                                                                             monkeypatch):
    node = make_node()
    logger = _Logger()
    monkeypatch.setattr(node, 'get_logger', lambda: logger)
    probe.subscribe(['semantic'])
    probe.wait_for_node_subscription()
    publisher = probe.publisher()
    good = image_msg(rgb_frame(), probe.now_ns())
    unknown = image_msg(rgb_frame(), probe.now_ns())
    unknown.encoding = 'nv24'
    short = image_msg(rgb_frame(), probe.now_ns())
    short.data = short.data[: len(short.data) // 2]
    empty = image_msg(rgb_frame(), probe.now_ns())
    empty.height = empty.width = empty.step = 0
    empty.data = []
    padded_step_too_small = image_msg(rgb_frame(), probe.now_ns())
    padded_step_too_small.step = 10
    bad = [unknown, short, empty, padded_step_too_small] * 2
    for count, msg in enumerate(bad, start=1):
        publisher.publish(msg)
        assert probe.spin_until(lambda c=count: node.statistics.totals()['malformed'] >= c, 5), count
    warnings = [text for level, text in logger.lines if level == 'warning']
    assert len(warnings) == 1, warnings  # throttled: one line for the burst
    assert "unsupported encoding 'nv24'" in warnings[0]
    _send_frames(probe, lambda: bool(probe.messages('semantic')))
    assert stamp_ns(probe.messages('semantic')[0]) != stamp_ns(good)  # a frame sent after the bad ones
    assert node.statistics.totals()['malformed'] == len(bad)


def test_non_finite_outputs_are_counted_and_never_published(make_node, probe):
    node = make_node(make_fake_pipeline(nonfinite=True))
    probe.subscribe(['anomaly', 'overlay'])
    _send_frames(probe, lambda: node.statistics.totals()['nonfinite'] >= 3)
    assert not probe.messages('anomaly') and not probe.messages('overlay')
    report = node.statistics.report()
    assert 'non-finite' in report.message and "'anomaly' has 1 non-finite" in report.values['last_nonfinite']


def test_invalid_update_is_rejected_with_a_reason_and_the_old_value_stays(make_node):
    from rclpy.parameter import Parameter

    node = make_node()
    results = node.set_parameters([Parameter('colormap', value='rainbow'),
                                   Parameter('heatmap_range', value=[0.5, 0.1]),
                                   Parameter('backend', value='torch'),
                                   Parameter('ensemble_weights', value=[-1.0, 1.0, 0.0, 0.0])])
    assert [r.successful for r in results] == [False] * 4
    assert "'rainbow' is not one of" in results[0].reason
    assert 'low < high' in results[1].reason
    assert 'read-only' in results[2].reason
    assert 'non-negative' in results[3].reason
    assert node.get_parameter('colormap').value == 'turbo'
    assert list(node.get_parameter('heatmap_range').value) == [0.0, 1.0]
    assert node.get_parameter('backend').value == 'onnxruntime'


def test_colormap_and_ensemble_weights_change_at_run_time(make_node, probe):
    from rclpy.parameter import Parameter

    pipeline = make_fake_pipeline()
    node = make_node(pipeline)
    np.testing.assert_allclose(pipeline.backend.last_weights, [0.75, 0.25, 0, 0])  # the model's weights
    probe.subscribe(['anomaly_color'])
    results = node.set_parameters([Parameter('colormap', value='gray'),
                                   Parameter('ensemble_weights', value=[0, 2, 0, 2])])  # integers are fine
    assert all(r.successful for r in results), [r.reason for r in results]
    _send_frames(probe, lambda: bool(probe.messages('anomaly_color')))
    np.testing.assert_allclose(pipeline.backend.last_weights, [0, 0.5, 0, 0.5])  # normalized on the host
    msg = probe.messages('anomaly_color')[-1]
    color = np.frombuffer(msg.data, dtype=np.uint8).reshape(msg.height, msg.width, 3)
    assert np.array_equal(color[:, :, 0], color[:, :, 2])  # gray
    assert node.set_parameters([Parameter('ensemble_weights', value=[0.0] * 4)])[0].successful
    _send_frames(probe, lambda: len(probe.messages('anomaly_color')) >= 3)
    np.testing.assert_allclose(pipeline.backend.last_weights, [0.75, 0.25, 0, 0])  # back to the model's


def test_network_output_size_publishes_each_stage_resolution(make_node, probe):
    make_node(output_size='network')
    probe.subscribe(['semantic', 'anomaly', 'overlay'])
    _send_frames(probe, lambda: all(probe.messages(t) for t in ('semantic', 'anomaly', 'overlay')))
    sizes = {t: (probe.messages(t)[0].width, probe.messages(t)[0].height) for t in ('semantic', 'anomaly', 'overlay')}
    assert sizes == {'semantic': (128, 64), 'anomaly': (64, 32), 'overlay': (64, 32)}


def test_compressed_transport_subscribes_to_image_compressed(make_node, probe):
    make_node(input_transport='compressed')
    probe.subscribe(['overlay'])
    stamp = probe.now_ns()
    assert probe.send_until(lambda: compressed_msg(rgb_frame(), stamp, 'cam'), lambda: bool(probe.messages('overlay')),
                            10, topic='/image/compressed')
    msg = probe.messages('overlay')[0]
    assert (stamp_ns(msg), msg.header.frame_id, msg.width, msg.height) == (stamp, 'cam', 80, 48)


def test_compressed_transport_follows_a_remapped_image_topic_as_image_transport_names_it(make_node, probe):
    make_node(input_transport='compressed', remaps=['image:=/cam/image_raw'])
    probe.subscribe(['overlay'])
    stamp = probe.now_ns()
    assert probe.send_until(lambda: compressed_msg(rgb_frame(), stamp, 'cam'), lambda: bool(probe.messages('overlay')),
                            10, topic='/cam/image_raw/compressed')


def test_frames_above_max_frame_pixels_are_skipped_with_a_reason_and_smaller_ones_processed(make_node, probe,
                                                                                           monkeypatch):
    node = make_node(max_frame_pixels=48 * 80)
    logger = _Logger()
    monkeypatch.setattr(node, 'get_logger', lambda: logger)
    probe.subscribe(['semantic'])
    probe.wait_for_node_subscription()
    probe.publisher().publish(image_msg(rgb_frame(49, 80), probe.now_ns()))
    assert probe.spin_until(lambda: node.statistics.totals()['malformed'] >= 1, 5)
    assert any('above max_frame_pixels' in text for _, text in logger.lines), logger.lines
    _send_frames(probe, lambda: bool(probe.messages('semantic')))  # 48x80 fits


def test_only_the_listed_outputs_are_advertised(make_node, probe):
    node = make_node(outputs=['anomaly', 'overlay'])
    assert node.advertised_outputs == ('anomaly', 'overlay')
    topics = {name for name, _ in node.get_topic_names_and_types()}
    assert '/anomaly_seg/overlay' in topics and '/anomaly_seg/semantic' not in topics


def test_invalid_start_up_values_raise_a_parameter_error(make_node):
    with pytest.raises(ParameterError, match="'colormap'"):
        make_node(colormap='rainbow')
    with pytest.raises(ParameterError, match="'qos.input_depth'"):
        make_node(qos__input_depth='deep')


def test_diagnostics_report_counts_backend_and_no_torch(make_node, probe):
    make_node(diagnostics_period=0.2)
    probe.subscribe(['semantic'])
    _send_frames(probe, lambda: len(probe.messages('semantic')) >= 2)
    values = probe.wait_for_diagnostics(lambda v: int(v.get('frames_processed', 0)) >= 2)
    assert values['backend'] == 'fake' and values['label_set'] == 'synthetic (10 classes)'
    assert values['input_size.segmentation'] == '128x64'
    assert int(values['stage_runs.segmentation']) >= 2 and 'stage_runs.synthesis' not in values
    assert 'stage_ms.segmentation' in values and 'stage_ms.convert' in values
    assert values['output_messages'] == 'serialized'  # rclpy reads the node's own Image bytes back


def test_the_callback_never_waits_for_inference_and_counts_replaced_frames_as_dropped(make_node, probe):
    import threading

    pipeline = make_fake_pipeline()
    node = make_node(pipeline)
    hold = threading.Event()
    run = pipeline.backend.run
    pipeline.backend.run = lambda stage, inputs: (hold.wait(10), run(stage, inputs))[1]  # stages wait for `hold`
    probe.subscribe(['anomaly'])
    probe.wait_for_node_subscription()
    assert probe.spin_until(lambda: node._outputs.active() == ['anomaly'], 5)
    msgs = [image_msg(rgb_frame(seed=i), probe.now_ns() + i) for i in range(101)]
    node._on_image(msgs[0])  # the worker takes it and is busy until `hold` is set
    assert probe.spin_until(lambda: node._worker.busy, 5)
    callbacks = threading.Thread(target=lambda: [node._on_image(msg) for msg in msgs[1:]])
    try:
        callbacks.start()
        callbacks.join(5)
        assert not callbacks.is_alive() and node._worker.busy  # all 100 returned while frame 0 was still held
        totals = node.statistics.totals()
        assert (totals['received'], totals['dropped']) == (101, 99)
    finally:
        hold.set()
    assert probe.spin_until(lambda: len(probe.messages('anomaly')) == 2, 5)
    assert [stamp_ns(m) for m in probe.messages('anomaly')] == [stamp_ns(msgs[0]), stamp_ns(msgs[-1])]  # newest


def _node_with_held_publishing(make_node, probe, pipeline, **parameters):
    """A node with ``~/anomaly`` subscribed whose publishing waits for ``release`` (an Event);
    ``publishing_started`` is set when a frame reaches it. Returns (node, release, publishing_started)."""
    import threading

    node = make_node(pipeline, **parameters)
    probe.subscribe(['anomaly'])
    probe.wait_for_node_subscription()
    assert probe.spin_until(lambda: node._outputs.active() == ['anomaly'], 5)
    release, publishing_started = threading.Event(), threading.Event()
    publish = node._outputs.publish

    def held_publish(*args, **kwargs):
        publishing_started.set()
        assert release.wait(10)
        return publish(*args, **kwargs)

    node._outputs.publish = held_publish
    return node, release, publishing_started


@pytest.mark.parametrize(('publishing', 'parallel'), [('parallel', True), ('inline', False), ('auto', False)])
def test_parallel_publishing_infers_the_next_frame_while_the_last_one_is_published(make_node, probe, publishing,
                                                                                    parallel):
    pipeline = make_fake_pipeline()  # on the CPU: 'auto' publishes inline
    node, release, publishing_started = _node_with_held_publishing(make_node, probe, pipeline, publishing=publishing,
                                                                   diagnostics_period=0.2)
    msgs = [image_msg(rgb_frame(seed=i), probe.now_ns() + i) for i in range(2)]
    node._on_image(msgs[0])
    assert publishing_started.wait(5)
    runs = pipeline.backend.runs['segmentation']
    node._on_image(msgs[1])
    # parallel: the next frame runs soon; inline: it must not run while the first is being published
    ran_next = probe.spin_until(lambda: pipeline.backend.runs['segmentation'] > runs, 5.0 if parallel else 0.5)
    assert ran_next == parallel
    release.set()
    assert probe.spin_until(lambda: len(probe.messages('anomaly')) == 2, 5)
    assert [stamp_ns(m) for m in probe.messages('anomaly')] == [stamp_ns(m) for m in msgs]  # in order, none lost
    assert probe.spin_until(lambda: node.frames_finished == 2, 5)  # counted just after the message went out
    assert node.statistics.totals()['processed'] == 2
    values = probe.wait_for_diagnostics(lambda v: v.get('frames_processed') == '2')
    assert values['publishing'] == ('parallel' if parallel else 'inline')
    assert 'stage_ms.publish' in values and 'stage_ms.publish_wait' in values


def test_close_stops_both_threads_within_one_timeout_while_a_frame_is_still_being_published(make_node, probe):
    import time

    pipeline = make_fake_pipeline()
    node, release, publishing_started = _node_with_held_publishing(make_node, probe, pipeline, publishing='parallel')
    node._on_image(image_msg(rgb_frame(seed=0), probe.now_ns()))
    assert publishing_started.wait(5)
    runs = pipeline.backend.runs['segmentation']
    node._on_image(image_msg(rgb_frame(seed=1), probe.now_ns() + 1))  # inferred, then waits to be handed over
    assert probe.spin_until(lambda: pipeline.backend.runs['segmentation'] > runs, 5)
    start = time.monotonic()
    assert node.close(timeout=1.0) is False  # the first frame is still being published
    assert time.monotonic() - start < 1.8  # one timeout plus a margin for a slow CPU; one per thread would be 2 s
    assert not node._worker._thread.is_alive()
    release.set()
    assert node.close(timeout=2.0) is True


def test_unknown_parameters_are_reported_not_silently_ignored(make_node, monkeypatch):
    from rclpy.node import Node

    logger = _Logger()
    monkeypatch.setattr(Node, 'get_logger', lambda self: logger)
    make_node(colour_map='turbo')
    assert any(level == 'warning' and "unknown parameters ['colour_map']" in text for level, text in logger.lines)


def _fast_dds_only() -> None:
    from rclpy.utilities import get_rmw_implementation_identifier

    if not get_rmw_implementation_identifier().startswith('rmw_fastrtps'):
        pytest.skip('the DDS profile advice is for Fast DDS')


def test_without_a_fast_dds_profile_the_node_says_which_variable_to_set(make_node, monkeypatch):
    _fast_dds_only()
    for name in (*DDS_PROFILE_VARIABLES, 'ROS_DISTRO'):
        monkeypatch.delenv(name, raising=False)
    from rclpy.node import Node

    logger = _Logger()
    monkeypatch.setattr(Node, 'get_logger', lambda self: logger)
    make_node()
    warnings = [text for level, text in logger.lines if level == 'warning' and 'without a profile' in text]
    assert len(warnings) == 1 and 'FASTDDS_DEFAULT_PROFILES_FILE=' in warnings[0], logger.lines
    assert 'config/fastdds_large_images.xml RMW_FASTRTPS_USE_QOS_FROM_XML=1' in warnings[0]


def test_the_dds_profile_in_use_is_in_the_diagnostics_and_silences_the_advice(make_node, probe, monkeypatch):
    _fast_dds_only()
    profile = str(REPO_ROOT / 'config' / 'fastdds_large_images.xml')  # valid, should Fast DDS read it here
    monkeypatch.setenv('FASTRTPS_DEFAULT_PROFILES_FILE', profile)
    monkeypatch.setenv('RMW_FASTRTPS_USE_QOS_FROM_XML', '1')
    from rclpy.node import Node

    logger = _Logger()
    monkeypatch.setattr(Node, 'get_logger', lambda self: logger)
    make_node(diagnostics_period=0.2)
    assert not [text for level, text in logger.lines if level == 'warning' and 'profile' in text], logger.lines
    assert probe.wait_for_diagnostics(lambda values: 'dds_profile' in values)['dds_profile'] == profile


def test_the_shipped_profile_without_qos_from_xml_is_warned_about(make_node, monkeypatch):
    _fast_dds_only()
    monkeypatch.setenv('FASTRTPS_DEFAULT_PROFILES_FILE', str(REPO_ROOT / 'config' / 'fastdds_large_images.xml'))
    monkeypatch.delenv('RMW_FASTRTPS_USE_QOS_FROM_XML', raising=False)
    from rclpy.node import Node

    logger = _Logger()
    monkeypatch.setattr(Node, 'get_logger', lambda self: logger)
    make_node()
    (warning,) = [text for level, text in logger.lines if level == 'warning' and 'history memory' in text]
    assert 'RMW_FASTRTPS_USE_QOS_FROM_XML=1' in warning


def test_the_precision_parameter_reaches_the_backend_and_the_diagnostics(ros_context, executor, probe):
    from rclpy.parameter import Parameter

    from anomaly_seg_ros.ros.node import AnomalySegNode

    asked = {}
    pipeline = make_fake_pipeline()

    def factory(model_dir, **kwargs):
        asked.update(kwargs)
        return pipeline

    overrides = [Parameter('model_dir', value='/fake'), Parameter('precision', value='int8'),
                 Parameter('diagnostics_period', value=0.2)]
    node = AnomalySegNode(pipeline_factory=factory, context=ros_context, parameter_overrides=overrides)
    executor.add_node(node)
    try:
        assert asked['precision'] == 'int8'
        facts = probe.wait_for_diagnostics(lambda values: 'precision' in values)
        assert facts['precision'] == 'int8'  # the fake backend has no precision of its own: the parameter's
    finally:
        node.close()
        executor.remove_node(node)
        node.destroy_node()
