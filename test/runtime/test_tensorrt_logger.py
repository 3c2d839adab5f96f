"""The one TensorRT logger of the process: shared by every builder, runtime and parser (TensorRT keeps only the
first one it is given, as the fake does), errors collected per call, VERBOSE dropped unless asked."""
from __future__ import annotations

import logging
import shutil
import threading

import pytest
from fake_tensorrt import make_fake_trt, patch_cuda, patch_trt

from anomaly_seg_ros.errors import ModelError
from anomaly_seg_ros.export.tensorrt_build import build_engines
from anomaly_seg_ros.model_config import load_model_config
from anomaly_seg_ros.runtime.tensorrt_backend import TensorRTBackend
from anomaly_seg_ros.runtime.tensorrt_common import tensorrt_logger
from anomaly_seg_ros.stages import STAGE_ORDER


@pytest.fixture
def fake(monkeypatch):
    trt = make_fake_trt('10.3.0')
    patch_trt(monkeypatch, trt)
    patch_cuda(monkeypatch)
    return trt


def _exported(constant_model_dir):
    model_dir, _ = constant_model_dir
    for stage in STAGE_ORDER:
        shutil.copy2(model_dir / f'{stage}.onnx', model_dir / f'{stage}.fp16.onnx')
    return model_dir


def test_every_builder_runtime_and_parser_gets_the_same_logger(fake, constant_model_dir):
    model_dir = _exported(constant_model_dir)
    build_engines(model_dir, precision='fp16')  # 4 builders and parsers, and the verifying backend's runtime
    first = TensorRTBackend(model_dir, load_model_config(model_dir))
    second = TensorRTBackend(first.model_dir, first.config)  # bench keeps two backends alive
    assert len(fake.calls['loggers']) == 4 * 2 + 3
    assert all(logger is tensorrt_logger(fake) for logger in fake.calls['loggers'])
    first.close()
    second.close()


def test_errors_of_a_second_backend_reach_its_exception(fake, constant_model_dir):
    model_dir = _exported(constant_model_dir)
    config = build_engines(model_dir, precision='fp16')
    alive = TensorRTBackend(model_dir, config)
    (model_dir / 'synthesis.engine').write_bytes(b'truncated')
    with pytest.raises(ModelError, match=r'synthesis\.engine could not be deserialized.*: fake: the plan is corrupt;'):
        TensorRTBackend(model_dir, config)
    alive.close()


def test_a_capture_holds_the_errors_logged_while_it_is_open_from_any_thread(fake):
    logger = tensorrt_logger(fake)
    severity = fake.ILogger.Severity
    logger.log(severity.ERROR, 'before')
    with logger.capture() as outer:
        with logger.capture() as inner:
            worker = threading.Thread(target=logger.log, args=(severity.INTERNAL_ERROR, 'from a TensorRT thread'))
            worker.start()
            worker.join()
            logger.log(severity.WARNING, 'a warning is no error')
        logger.log(severity.ERROR, 'after inner')
    logger.log(severity.ERROR, 'after both')
    assert inner.messages == ['from a TensorRT thread']
    assert outer.messages == ['from a TensorRT thread', 'after inner']
    assert str(inner) == 'from a TensorRT thread'
    with logger.capture() as empty:
        pass
    assert not empty and str(empty) == 'no message from TensorRT'


def test_messages_below_the_minimum_severity_are_dropped(fake, caplog):
    logger = tensorrt_logger(fake)
    severity = fake.ILogger.Severity
    with caplog.at_level(logging.DEBUG, logger='anomaly_seg_ros.tensorrt'):
        for name in ('VERBOSE', 'INFO', 'WARNING', 'ERROR'):
            logger.log(getattr(severity, name), f'default {name}')
        with logger.verbosity('INFO'):
            logger.log(severity.VERBOSE, 'info verbose')
            logger.log(severity.INFO, 'info info')
    assert [r.getMessage() for r in caplog.records] == ['TensorRT: default WARNING', 'TensorRT: default ERROR',
                                                         'TensorRT: info info']
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.ERROR, logging.INFO]
    assert logger.min_severity_name == 'WARNING'  # restored after the block
    with pytest.raises(ValueError, match='unknown TensorRT severity'):
        logger.set_min_severity('DEBUG')


@pytest.mark.parametrize('verbose', [False, True])
def test_a_build_forwards_verbose_messages_only_when_asked(fake, constant_model_dir, caplog, verbose):
    with caplog.at_level(logging.DEBUG, logger='anomaly_seg_ros.tensorrt'):
        build_engines(_exported(constant_model_dir), precision='fp16', stages=['segmentation'], verbose=verbose)
    tactics = [r for r in caplog.records if 'fake: timing tactic' in r.getMessage()]
    assert len(tactics) == (3 if verbose else 0)
    assert all(r.levelno == logging.DEBUG for r in tactics)
    assert tensorrt_logger(fake).min_severity_name == 'WARNING'

