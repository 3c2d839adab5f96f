"""From a trained model directory to the files the node runs: ONNX graphs, FP16 graphs, INT8 graphs, engines.

- :mod:`.onnx_export`: ``<stage>.onnx`` per stage, parity with PyTorch enforced (``anomaly_seg export``).
- :mod:`.fp16`: the ``<stage>.fp16.onnx`` graphs (FP16 inside, FP32 where precision needs it).
- :mod:`.quantization`: the INT8 Q/DQ graphs, calibration, accuracy check, stage choice (``export --int8``).
- :mod:`.tensorrt_build`: TensorRT engines from the exported graphs (``export --tensorrt``, on the robot).

Only :mod:`.onnx_export` imports torch: the engine build runs where torch is not installed and the INT8
step needs none. So this package imports its modules on first use of a name, not when it is imported.
"""
from __future__ import annotations

from ..lazy_exports import lazy_exports

__all__ = [
    # onnx_export
    'OPSET', 'ExportReport', 'ParityError', 'StageComparison', 'compare_stages', 'export_model', 'export_stage',
    'load_frames', 'reference_outputs', 'store_exact_float16_weights', 'synthetic_frames',
    # fp16
    'FP16_OPS', 'HEAVY_OPS', 'convert_to_fp16', 'count_ops_by_type',
    # quantization
    'CALIBRATION_METHODS', 'AccuracyCheck', 'Int8Margins', 'Int8Report', 'QuantizationError', 'quantize_model',
    'record_stage_inputs',
    # tensorrt_build
    'DEFAULT_TIMING_CACHE', 'BuildSettings', 'build_engines', 'build_settings', 'parser_errors',
]

_HOMES: dict[str, tuple[str, ...]] = {  # module -> the names it gives this package
    'onnx_export': ('OPSET', 'ExportReport', 'ParityError', 'StageComparison', 'compare_stages', 'export_model',
                    'export_stage', 'load_frames', 'reference_outputs', 'store_exact_float16_weights',
                    'synthetic_frames'),
    'fp16': ('FP16_OPS', 'HEAVY_OPS', 'convert_to_fp16', 'count_ops_by_type'),
    'quantization': ('CALIBRATION_METHODS', 'AccuracyCheck', 'Int8Margins', 'Int8Report', 'QuantizationError',
                     'quantize_model', 'record_stage_inputs'),
    'tensorrt_build': ('DEFAULT_TIMING_CACHE', 'BuildSettings', 'build_engines', 'build_settings', 'parser_errors'),
}
__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)
