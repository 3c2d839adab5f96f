"""The ``anomaly_seg`` node: camera frames in, anomaly maps out (executable ``anomaly_seg_node``).

Subscribes to ``image`` (sensor_msgs/Image) or ``image/compressed`` (parameter input_transport),
publishes the topics of :data:`.outputs.OUTPUT_TOPICS` under ``~/`` with the input header, and
``/diagnostics``. The callback only hands the message to a :class:`.worker.LatestFrameWorker`;
the worker thread converts it and runs the pipeline for the outputs someone subscribes to, and a
:class:`.worker.HandOffThread` renders and publishes them: while the worker runs the next frame
(``publishing: parallel``) or before it takes one (``inline``). Parameters: :mod:`.parameters`.
Expected start-up failures (bad parameters, model directory, backend) end the process with one
fatal log line and exit status 2.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import rclpy
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rclpy.utilities import get_rmw_implementation_identifier
from sensor_msgs.msg import CompressedImage, Image

from ..errors import AnomalySegError, ImageConversionError
from ..pipeline import OUTPUT_NAMES, AnomalyPipeline, NonFiniteOutputError, PipelineResult
from ..resources import default_model_dir
from ..runtime.host_memory import HeapTrimmer
from ..stages import STAGE_ORDER
from . import parameters
from .conversions import compressed_msg_to_rgb, image_msg_to_rgb
from .diagnostics import NodeStatistics, diagnostic_array
from .node_process import (
    PROFILE_FILE_NAME,
    QOS_FROM_XML_VARIABLES,
    dds_profile_environment,
    dds_profile_in_use,
    dds_summary,
)
from .outputs import HeatmapStyle, OutputSet, required_outputs, serialized_images_round_trip
from .throttle import LogThrottle
from .worker import HandOffThread, LatestFrameWorker

__all__ = ['AnomalySegNode', 'main']

NODE_NAME = 'anomaly_seg'
STOP_TIMEOUT_S = 1.0
TEARDOWN_TIMEOUT_S = 0.5  # after the worker's STOP_TIMEOUT_S: the process ends within 2 s of a signal
PipelineFactory = Callable[..., Any]


class _Frame(NamedTuple):
    msg: Any
    received: float  # time.monotonic() when the callback ran


class _FrameOutputs(NamedTuple):
    """What the publishing thread needs of one frame."""

    frame: _Frame
    topics: list[str]
    result: PipelineResult
    rgb: np.ndarray
    style: HeatmapStyle
    timings_ms: dict[str, float]  # the worker's; the publishing thread adds its own


def _qos(reliability: str, depth: int) -> QoSProfile:
    policy = ReliabilityPolicy.BEST_EFFORT if reliability == 'best_effort' else ReliabilityPolicy.RELIABLE
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=policy)


class AnomalySegNode(Node):
    """Pixel-wise anomaly segmentation of a camera stream.

    Args:
        pipeline_factory: ``factory(model_dir, backend=..., device=...)`` returning an object with
            the :class:`~..pipeline.AnomalyPipeline` API; tests pass a fake.
        node_name: default node name (``-r __node:=`` overrides it).
        **node_kwargs: passed to ``rclpy.node.Node`` (e.g. ``parameter_overrides``, ``context``).
    Raises:
        AnomalySegError: invalid parameters (:class:`.parameters.ParameterError`), model or backend.
    """

    def __init__(self, pipeline_factory: PipelineFactory | None = None, node_name: str = NODE_NAME,
                 **node_kwargs: Any) -> None:
        super().__init__(node_name, **node_kwargs)
        self._raw = parameters.declare(self)
        self._settings = settings = parameters.validate(self._raw)
        model_dir = Path(settings.model_dir) if settings.model_dir else default_model_dir()
        factory = pipeline_factory or AnomalyPipeline.from_model_dir
        self._pipeline = factory(model_dir, backend=settings.backend, device=settings.device or None,
                                 precision=settings.precision)
        try:
            self._model_dir = model_dir
            self._label_set = self._pipeline.config.label_set
            self._applied_weights: tuple[float, ...] | None = None
            self._sync_weights()
            self._warm_up()
        except BaseException:
            self._pipeline.close()
            raise
        self._stats = NodeStatistics()
        self._throttle = LogThrottle(period_s=5.0)
        self._traceback_logged = False
        self._heap = HeapTrimmer()
        self._outputs = OutputSet(settings.outputs, self._make_publisher, Image,
                                  serialized=serialized_images_round_trip(_deserialize_image))
        self._worker: LatestFrameWorker[_Frame] = LatestFrameWorker(self._process, self._on_worker_error)
        self._publisher: HandOffThread[_FrameOutputs] = HandOffThread(self._publish_outputs,
                                                                      self._on_worker_error)
        on_gpu = str(getattr(getattr(self._pipeline, 'backend', None), 'device', '')).startswith('cuda')
        self._parallel_publishing = settings.publishing == 'parallel' or (settings.publishing == 'auto' and on_gpu)
        input_qos = _qos(settings.input_reliability, settings.input_depth)
        compressed = settings.input_transport == 'compressed'
        input_type, self._input_name = (CompressedImage, self._compressed_topic()) if compressed else (Image, 'image')
        self._subscription = self.create_subscription(input_type, self._input_name, self._on_image, input_qos)
        self._diagnostics_pub = self.create_publisher(_diagnostic_array_type(), '/diagnostics', 10)
        self._diagnostics_timer = self.create_timer(settings.diagnostics_period, self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._publisher.start()
        self._worker.start()
        self.get_logger().info(self._startup_summary())
        warning = _dds_profile_warning()
        if warning:
            self.get_logger().warning(warning)
        unknown = sorted(name for name in getattr(self, '_parameter_overrides', {}) if not self.has_parameter(name))
        if unknown:  # rclpy ignores them silently; a typo in a params file should not go unnoticed
            self.get_logger().warning(f'ignoring unknown parameters {unknown}; this node has: '
                                      f'{", ".join(parameters.DEFAULTS)}')

    # --- set-up helpers ---------------------------------------------------------------------
    def _compressed_topic(self) -> str:
        """image_transport's name for the compressed stream: the resolved (remapped) ``image`` topic plus
        ``/compressed``, so ``-r image:=/cam/image_raw`` reads ``/cam/image_raw/compressed``."""
        resolve = getattr(self, 'resolve_topic_name', None)
        if resolve is None:  # rclpy without name resolution: remap image/compressed itself
            return 'image/compressed'
        return f'{resolve("image")}/compressed'

    def _make_publisher(self, topic: str) -> Any:
        settings = self._settings
        return self.create_publisher(Image, topic, _qos(settings.output_reliability, settings.output_depth))

    def _warm_up(self) -> None:
        """Run one black frame through the stages the advertised topics need (first-run costs)."""
        height, width = self._pipeline.config.stage('segmentation').input_size
        try:
            self._pipeline.process(np.zeros((height, width, 3), dtype=np.uint8),
                                   required_outputs(self._settings.outputs), self._settings.output_size)
        except NonFiniteOutputError as exc:
            self.get_logger().warning(f'warm-up frame: {exc}')

    def _static_facts(self) -> dict[str, str]:
        backend = getattr(self._pipeline, 'backend', None)
        config = self._pipeline.config
        facts = {
            'backend': str(getattr(backend, 'name', self._settings.backend)),
            'device': str(getattr(backend, 'device', self._settings.device or 'default')),
            'precision': str(getattr(backend, 'precision', self._settings.precision)),
            'model_dir': str(self._model_dir),
            'label_set': f'{self._label_set.name} ({self._label_set.num_classes} classes)',
        }
        for stage in STAGE_ORDER:
            height, width = config.stage(stage).input_size
            facts[f'input_size.{stage}'] = f'{width}x{height}'
        topic = getattr(self._subscription, 'topic_name', self._input_name)  # resolved where rclpy tells
        facts['input_topic'] = f'{topic} ({self._settings.input_transport})'
        size = self._settings.output_size
        facts['output_size'] = ('input' if size is None else size if isinstance(size, str)
                                else f'{size[1]}x{size[0]}')
        facts['ensemble_weights'] = ', '.join(f'{w:g}' for w in self._pipeline.ensemble_weights)
        facts['colormap'] = self._settings.style.colormap
        facts['publishing'] = 'parallel' if self._parallel_publishing else 'inline'
        facts['output_messages'] = 'serialized' if self._outputs.serialized else 'message objects'
        facts['dds_profile'] = dds_profile_in_use() or 'none'
        facts['torch_imported'] = str('torch' in sys.modules)
        return facts

    def _startup_summary(self) -> str:
        facts = self._static_facts()
        sizes = ', '.join(f'{stage} {facts[f"input_size.{stage}"]}' for stage in STAGE_ORDER)
        return (f'model {facts["model_dir"]} [{facts["label_set"]}] on {facts["backend"]} ({facts["device"]}, '
                f'{facts["precision"]}); '
                f'stage input sizes (WxH): {sizes}; input {facts["input_topic"]}, '
                f'{self._settings.input_reliability} depth {self._settings.input_depth}; output size '
                f'{facts["output_size"]}, publishing {facts["publishing"]}; outputs under '
                f'{self.get_fully_qualified_name()}/: {", ".join(self._settings.outputs)}; '
                f'DDS {dds_summary(get_rmw_implementation_identifier())}')

    # --- callbacks (executor thread) --------------------------------------------------------
    def _on_image(self, msg: Any) -> None:
        self._stats.count('received')
        if self._worker.submit(_Frame(msg, time.monotonic())):
            self._stats.count('dropped')

    def _on_set_parameters(self, params: Sequence[Any]) -> SetParametersResult:
        changes = {p.name: parameters.plain_value(p.value) for p in params}
        try:
            settings = parameters.validate_update(self._raw, changes)
        except parameters.ParameterError as exc:
            self.get_logger().warning(f'rejected parameter update: {exc}')
            return SetParametersResult(successful=False, reason=str(exc))
        self._raw.update(changes)
        self._settings = settings  # the worker picks it up with the next frame
        self.get_logger().info(f'parameters updated: {changes}')
        return SetParametersResult(successful=True)

    def _publish_diagnostics(self) -> None:
        report = self._stats.report(self._static_facts(), self._settings.diagnostic_thresholds)
        facts = report.values
        msg = diagnostic_array(report, f'{self.get_name()}: anomaly segmentation',
                               f'{facts["backend"]} {facts["device"]}', self.get_clock().now().to_msg())
        self._diagnostics_pub.publish(msg)

    # --- worker thread ----------------------------------------------------------------------
    def _sync_weights(self) -> None:
        wanted = self._settings.ensemble_weights or tuple(self._pipeline.config.ensemble_weights)
        if wanted != self._applied_weights:
            self._pipeline.ensemble_weights = wanted
            self._applied_weights = wanted

    def _log_throttled(self, key: str, level: str, message: str) -> None:
        text = self._throttle.format(key, message)
        if text is not None:
            getattr(self.get_logger(), level)(text)

    def _process(self, frame: _Frame) -> None:
        settings = self._settings
        topics = self._outputs.active()
        if not topics:
            self._stats.count('idle')
            return
        start = time.monotonic()
        try:
            rgb = _to_rgb(frame.msg, settings.input_significant_bits, settings.max_frame_pixels,
                          lambda text: self._log_throttled('dark16', 'warning', text))
        except Exception as exc:  # noqa: BLE001 - any bad input is a skipped frame, never a crash
            problem = str(exc) if isinstance(exc, ImageConversionError) else f'{type(exc).__name__}: {exc}'
            self._stats.count('malformed', problem=problem)
            self._log_throttled('malformed', 'warning', f'skipping input frame: {problem}')
            return
        converted = time.monotonic()
        self._sync_weights()
        try:
            result = self._pipeline.process(rgb, required_outputs(topics), settings.output_size)
        except NonFiniteOutputError as exc:
            self._stats.count('nonfinite', problem=str(exc))
            self._log_throttled('nonfinite', 'error', f'frame not published: {exc}')
            return
        self._stats.stages_ran(stage for stage in STAGE_ORDER if stage in result.timings_ms)
        waited = self._publisher.wait_idle()  # the previous frame's publishing, if it is still going on
        timings = dict(result.timings_ms)
        timings.update(convert=(converted - start) * 1e3, publish_wait=waited * 1e3)
        self._publisher.submit(_FrameOutputs(frame, topics, result, rgb, settings.style, timings))
        if not self._parallel_publishing:
            self._publisher.wait_idle()

    def _publish_outputs(self, outputs: _FrameOutputs) -> None:
        """Publishing thread: render and publish one frame's topics, then account for the frame."""
        frame = outputs.frame
        start = time.monotonic()
        published = self._outputs.publish(outputs.topics, outputs.result, outputs.rgb, frame.msg.header,
                                          self._label_set, outputs.style)
        end = time.monotonic()
        timings = {**outputs.timings_ms, 'publish': (end - start) * 1e3}
        self._stats.frame_published(timings, (end - frame.received) * 1e3, published, self._stamp_age_ms(frame))
        # The previous frame's buffers (and, with DYNAMIC history memory, its DDS samples) are gone by now.
        self._heap.frame_done(outputs.rgb.shape[0] * outputs.rgb.shape[1] + _output_pixels(outputs.result))

    def _stamp_age_ms(self, frame: _Frame) -> float | None:
        stamp = frame.msg.header.stamp
        stamp_ns = int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)
        if stamp_ns == 0:
            return None
        return (self.get_clock().now().nanoseconds - stamp_ns) / 1e6

    def _on_worker_error(self, exc: BaseException) -> None:
        if not self.context.ok():
            return  # a signal shut ROS down under a frame in flight (its publish fails): not a failed frame
        problem = f'{type(exc).__name__}: {exc}'
        self._stats.count('failed', problem=problem)
        if not self._traceback_logged:
            self._traceback_logged = True
            problem += '\n' + ''.join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self._log_throttled('failed', 'error', f'frame failed: {problem}')

    # --- tear-down --------------------------------------------------------------------------
    @property
    def statistics(self) -> NodeStatistics:
        return self._stats

    @property
    def advertised_outputs(self) -> tuple[str, ...]:
        return tuple(self._outputs.publishers)

    @property
    def frames_finished(self) -> int:
        """Frames the worker took that the node is done with: skipped, failed or published."""
        # In this order: the worker hands a frame over before it counts it as handled, and the
        # publishing thread counts it only after that, so a frame in flight is never counted.
        handled = self._worker.handled
        handed_over = self._publisher.submitted
        return handled - handed_over + self._publisher.handled

    def close(self, timeout: float = STOP_TIMEOUT_S) -> bool:
        """Stop both threads and release the pipeline; False when inference or publishing was still running.

        Both threads share ``timeout``.
        """
        deadline = time.monotonic() + timeout
        self._publisher.stop(0.0)  # ask first: a worker waiting to hand a frame over returns at once
        stopped = self._worker.stop(timeout)
        stopped = self._publisher.stop(max(0.0, deadline - time.monotonic())) and stopped
        if stopped:
            self._pipeline.close()
        return stopped


def _dds_profile_warning() -> str | None:
    """What to do when Fast DDS runs without a profile (the node sends multi-megabyte images), or with the
    shipped profile whose history memory policy rmw_fastrtps ignores without RMW_FASTRTPS_USE_QOS_FROM_XML."""
    if not get_rmw_implementation_identifier().startswith('rmw_fastrtps'):
        return None
    profile = dds_profile_in_use()
    if profile is None:
        variable = ' '.join(f'{name}={path}' for name, path in dds_profile_environment().items()) or (
            'FASTDDS_DEFAULT_PROFILES_FILE (FASTRTPS_DEFAULT_PROFILES_FILE on Humble/Jazzy) to '
            'config/fastdds_large_images.xml')
        return ('Fast DDS runs without a profile: its 512 KB shared-memory segment loses or delays this node\'s large '
                f'output images. Start the node with the launch file, which gives it one, or set {variable}.')
    unset = {name: value for name, value in QOS_FROM_XML_VARIABLES.items() if os.environ.get(name) != value}
    if Path(profile).name == PROFILE_FILE_NAME and unset:
        return (f'{profile} is used without {" ".join(f"{k}={v}" for k, v in unset.items())}: rmw_fastrtps then '
                'ignores its history memory policy and the node keeps the memory of the largest frame it ever '
                'published. Start the node with the launch file, which sets it, or set it yourself.')
    return None


def _check_frame_pixels(width: int, height: int, limit: int) -> None:
    """Refuse a frame above ``max_frame_pixels`` before it costs memory (raw frames: before conversion)."""
    if width * height > limit:
        raise ImageConversionError(f'frame {width}x{height} has {width * height} pixels, above max_frame_pixels '
                                   f'({limit}); raise the parameter if the camera really sends such frames')


def _to_rgb(msg: Any, significant_bits: int, max_pixels: int, warn: Callable[[str], None]) -> np.ndarray:
    """The camera frame as RGB; a raw frame's size is checked before conversion, a compressed one's once
    decoding has told it."""
    if isinstance(msg, CompressedImage):
        rgb = compressed_msg_to_rgb(msg)
        _check_frame_pixels(rgb.shape[1], rgb.shape[0], max_pixels)
        return rgb
    _check_frame_pixels(int(msg.width), int(msg.height), max_pixels)
    return image_msg_to_rgb(msg, significant_bits, warn)


def _output_pixels(result: PipelineResult) -> int:
    shape = next((value.shape for name in OUTPUT_NAMES if (value := result.get(name)) is not None), (0, 0))
    return shape[0] * shape[1]


def _deserialize_image(data: bytes) -> Any:
    return deserialize_message(data, Image)


def _diagnostic_array_type() -> type:
    from diagnostic_msgs.msg import DiagnosticArray
    return DiagnosticArray


def _exit_after(seconds: float, status: int) -> None:
    """End the process with ``status`` in ``seconds`` unless it has ended by then.

    A guard around ROS tear-down: with several nodes starting at once on a loaded machine, destroying
    a publisher in ``rclpy.shutdown()`` was seen never to return (Fast DDS), which left a node that had
    already logged its fatal error, or had been told to stop, running.
    """
    def force() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)

    timer = threading.Timer(seconds, force)
    timer.daemon = True
    timer.start()


def _shutdown() -> None:
    try:
        if rclpy.ok():
            rclpy.shutdown()
    except Exception:  # noqa: BLE001 - already shut down by the signal handler
        pass


def main(args: Sequence[str] | None = None) -> int:
    """Console script ``anomaly_seg_node``: run the node until SIGINT/SIGTERM."""
    try:
        rclpy.init(args=args)
    except Exception as exc:  # noqa: BLE001 - rcl argument/params-file errors: one line, no traceback
        print(f'anomaly_seg_node: cannot initialize ROS: {exc}', file=sys.stderr)
        return 2
    try:
        node = AnomalySegNode()
    except AnomalySegError as exc:
        rclpy.logging.get_logger(NODE_NAME).fatal(f'cannot start: {exc}')
        _exit_after(TEARDOWN_TIMEOUT_S, 2)
        _shutdown()
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        _shutdown()
        return 0
    clean = True
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # A second Ctrl-C during the (bounded) tear-down would raise inside it and end the process
        # killed by SIGINT (status -2) instead of stopping cleanly: it is ignored from here on.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _exit_after(STOP_TIMEOUT_S + TEARDOWN_TIMEOUT_S, 0 if sys.exc_info()[0] is None else 1)
        clean = node.close()
        node.destroy_node()
        _shutdown()
    if not clean:
        # Inference is still running in the worker; do not wait for it or unwind native state under it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


if __name__ == '__main__':
    sys.exit(main())

