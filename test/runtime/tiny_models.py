"""A tiny random model directory, exported once per test session, and hand-made stage graphs.

Imported by test/runtime/conftest.py and test/test_export.py (both put this folder on sys.path).
The export is cached on disk under pytest's base temp directory, so every fixture that asks for it
shares one export per session (about 10 s on two cores).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from anomaly_seg_ros.labels import SYNTHETIC
from anomaly_seg_ros.model_config import ModelConfig, load_model_config
from anomaly_seg_ros.stages import StageSpec

TINY_SIZES = {'segmentation': (64, 128), 'synthesis': (32, 64), 'perceptual': (32, 64), 'dissimilarity': (32, 64)}
_ONNX_TYPES = {'float32': TensorProto.FLOAT, 'int32': TensorProto.INT32, 'float16': TensorProto.FLOAT16}


def tiny_config() -> ModelConfig:
    """The light architectures at a fraction of their width and resolution (10 synthetic classes)."""
    from anomaly_seg_ros.networks import light_architectures
    from anomaly_seg_ros.stage_modules import make_model_config

    arch = light_architectures(SYNTHETIC.num_classes, TINY_SIZES['synthesis'])
    arch['synthesis'].update(ngf=8, spade_hidden=8)
    arch['perceptual'].update(width=0.125)
    arch['dissimilarity'].update(width=0.125)
    return make_model_config(SYNTHETIC, arch, TINY_SIZES, perceptual_scale=4.0, ensemble_weights=(0.5, 0.2, 0.2, 0.1))


def frames(count: int = 2, seed: int = 3) -> list[np.ndarray]:
    from anomaly_seg_ros.export import synthetic_frames

    return synthetic_frames(count, (96, 160), seed=seed)


def tiny_model_dirs(base: Path) -> tuple[Path, Path]:
    """(torch model dir, exported dir with FP32 + FP16 ONNX) under ``base``, made once."""
    source, exported = base / 'tiny_torch', base / 'tiny_exported'
    marker = exported / '.complete'
    if not marker.is_file():
        from anomaly_seg_ros.export import export_model
        from anomaly_seg_ros.stage_modules import init_random_model_dir

        init_random_model_dir(source, tiny_config(), seed=0)
        export_model(source, exported, fp16=True, frames=frames())
        marker.write_text('ok\n')
    return source, exported


def constant_graph(spec: StageSpec, *, rename: dict[str, str] | None = None,
                   shapes: dict[str, tuple[int, ...]] | None = None,
                   dtypes: dict[str, str] | None = None, fill: float = 0.25) -> onnx.ModelProto:
    """A stage graph with the spec's inputs that outputs constants (for contract tests).

    ``rename``/``shapes``/``dtypes`` override a tensor's name, shape or dtype to make a mismatch.
    """
    rename, shapes, dtypes = rename or {}, shapes or {}, dtypes or {}

    def info(tensor):
        return helper.make_tensor_value_info(rename.get(tensor.name, tensor.name),
                                             _ONNX_TYPES[dtypes.get(tensor.name, tensor.dtype)],
                                             list(shapes.get(tensor.name, tensor.shape)))

    nodes = []
    for tensor in spec.outputs:
        dtype = dtypes.get(tensor.name, tensor.dtype)
        shape = shapes.get(tensor.name, tensor.shape)
        value = np.full(shape, 1 if dtype == 'int32' else fill, dtype=dtype)
        nodes.append(helper.make_node('Constant', [], [rename.get(tensor.name, tensor.name)],
                                      value=onnx.numpy_helper.from_array(value)))
    graph = helper.make_graph(nodes, f'fake_{spec.name}', [info(t) for t in spec.inputs],
                              [info(t) for t in spec.outputs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])


def write_constant_model_dir(directory: Path, config: ModelConfig | None = None) -> tuple[Path, ModelConfig]:
    """A model directory whose four ``.onnx`` files are :func:`constant_graph` graphs."""
    from anomaly_seg_ros.model_config import StageConfig, save_model_config
    from anomaly_seg_ros.stages import stage_specs

    if config is None:
        config = ModelConfig(label_set=SYNTHETIC,
                             stages={s: StageConfig(input_size=hw, files={'onnx': f'{s}.onnx'})
                                     for s, hw in TINY_SIZES.items()})
    directory.mkdir(parents=True, exist_ok=True)
    for stage, spec in stage_specs(config).items():
        onnx.save(constant_graph(spec), str(directory / f'{stage}.onnx'))
    save_model_config(config, directory)
    return directory, load_model_config(directory)
