"""Run anomaly_seg_node on a real model whose backend is wrapped by :class:`injection.InjectingBackend`.

    python node_runner.py --ros-args ...      (the node's own arguments)

Environment: RELIABILITY_POISON=stage:tensor (NaN into that output for black frames),
RELIABILITY_DELAY_S (seconds every stage sleeps on frames that are not black, so the black warm-up frame
stays fast), RELIABILITY_MARKER (file: one line per slow stage started).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from injection import InjectingBackend, is_black  # noqa: E402

from anomaly_seg_ros.pipeline import AnomalyPipeline  # noqa: E402
from anomaly_seg_ros.ros import node  # noqa: E402

_real_from_model_dir = AnomalyPipeline.from_model_dir


def _from_model_dir(model_dir, backend='onnxruntime', device=None, precision='fp32'):  # noqa: ANN001, ANN202
    pipeline = _real_from_model_dir(model_dir, backend=backend, device=device, precision=precision)
    poison = os.environ.get('RELIABILITY_POISON')
    marker = os.environ.get('RELIABILITY_MARKER')
    pipeline.backend = InjectingBackend(pipeline.backend, tuple(poison.split(':')) if poison else None, when=is_black,
                                        delay_s=float(os.environ.get('RELIABILITY_DELAY_S', '0')),
                                        slow_when=lambda image: not is_black(image),
                                        marker=Path(marker) if marker else None)
    return pipeline


if __name__ == '__main__':
    AnomalyPipeline.from_model_dir = staticmethod(_from_model_dir)  # type: ignore[method-assign]
    sys.exit(node.main())
