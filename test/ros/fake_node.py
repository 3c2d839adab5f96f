"""Run anomaly_seg_node with the fake pipeline, as its own process: python fake_node.py --ros-args ...

Environment: FAKE_PIPELINE_DELAY_S (seconds per stage, default 0), FAKE_PIPELINE_NONFINITE=1.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_pipeline import make_fake_pipeline  # noqa: E402

from anomaly_seg_ros.pipeline import AnomalyPipeline  # noqa: E402
from anomaly_seg_ros.ros import node  # noqa: E402


def _fake_from_model_dir(model_dir, backend='onnxruntime', device=None, precision='fp32'):  # noqa: ANN001, ANN202
    return make_fake_pipeline(delay_s=float(os.environ.get('FAKE_PIPELINE_DELAY_S', '0')),
                              nonfinite=os.environ.get('FAKE_PIPELINE_NONFINITE') == '1')


if __name__ == '__main__':
    AnomalyPipeline.from_model_dir = staticmethod(_fake_from_model_dir)  # type: ignore[method-assign]
    sys.exit(node.main())
