"""The four stages of the pipeline: fixed names, tensor names, shapes and dtypes.

The same names are used by the PyTorch stage modules (``stage_modules``), the ONNX files and the
TensorRT engines, and by every runtime backend. Each stage graph contains its own pre-processing
(normalization, resizing of its inputs to its resolution, one-hot encoding), so that on a GPU
backend the whole chain stays on the device: only the camera frame goes up and the requested
outputs come down.

==============  ==============================================  ================================
stage           inputs                                          outputs
==============  ==============================================  ================================
segmentation    image          f32 (1,3,Hs,Ws) RGB in [0,1]      semantic          i32 (1,Hs,Ws)
                                                                entropy           f32 (1,1,Hs,Ws)
                                                                softmax_distance  f32 (1,1,Hs,Ws)
synthesis       semantic       i32 (1,Hs,Ws)                     synthesis         f32 (1,3,Hy,Wy)
perceptual      image, synthesis                                perceptual_difference
                                                                                  f32 (1,1,Hp,Wp)
dissimilarity   image, synthesis, semantic, entropy,            dissimilarity     f32 (1,1,Hd,Wd)
                softmax_distance, perceptual_difference,        anomaly           f32 (1,1,Hd,Wd)
                ensemble_weights f32 (4,)
==============  ==============================================  ================================

All float maps are in [0, 1]; ``synthesis`` is RGB in [0, 1]; ``semantic`` holds train ids.
``ensemble_weights`` = (dissimilarity, entropy, perceptual_difference, softmax_distance), normalized
inside the graph to sum 1, so weights can change at run time without re-export.
"""
from __future__ import annotations

from dataclasses import dataclass

from .model_config import ModelConfig

__all__ = [
    'ENSEMBLE_ORDER',
    'STAGES',
    'STAGE_ORDER',
    'TensorSpec',
    'StageSpec',
    'stage_specs',
    'stages_needed',
]

ENSEMBLE_ORDER = ('dissimilarity', 'entropy', 'perceptual_difference', 'softmax_distance')
STAGE_ORDER = ('segmentation', 'synthesis', 'perceptual', 'dissimilarity')

# Input and output tensor names per stage, in graph order.
STAGES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    'segmentation': (('image',), ('semantic', 'entropy', 'softmax_distance')),
    'synthesis': (('semantic',), ('synthesis',)),
    'perceptual': (('image', 'synthesis'), ('perceptual_difference',)),
    'dissimilarity': (
        ('image', 'synthesis', 'semantic', 'entropy', 'softmax_distance', 'perceptual_difference',
         'ensemble_weights'),
        ('dissimilarity', 'anomaly'),
    ),
}

# Which stage produces each pipeline output.
_PRODUCER = {name: stage for stage, (_, outputs) in STAGES.items() for name in outputs}


@dataclass(frozen=True)
class TensorSpec:
    """A named tensor of a stage graph: static shape (batch 1) and numpy dtype name."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # 'float32' or 'int32'


@dataclass(frozen=True)
class StageSpec:
    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.outputs)


def stage_specs(config: ModelConfig) -> dict[str, StageSpec]:
    """Static tensor shapes of every stage for the resolutions in ``config``."""
    hs, ws = config.stage('segmentation').input_size
    hy, wy = config.stage('synthesis').input_size
    hp, wp = config.stage('perceptual').input_size
    hd, wd = config.stage('dissimilarity').input_size
    tensors = {
        'image': TensorSpec('image', (1, 3, hs, ws), 'float32'),
        'semantic': TensorSpec('semantic', (1, hs, ws), 'int32'),
        'entropy': TensorSpec('entropy', (1, 1, hs, ws), 'float32'),
        'softmax_distance': TensorSpec('softmax_distance', (1, 1, hs, ws), 'float32'),
        'synthesis': TensorSpec('synthesis', (1, 3, hy, wy), 'float32'),
        'perceptual_difference': TensorSpec('perceptual_difference', (1, 1, hp, wp), 'float32'),
        'ensemble_weights': TensorSpec('ensemble_weights', (4,), 'float32'),
        'dissimilarity': TensorSpec('dissimilarity', (1, 1, hd, wd), 'float32'),
        'anomaly': TensorSpec('anomaly', (1, 1, hd, wd), 'float32'),
    }
    return {
        stage: StageSpec(stage, tuple(tensors[n] for n in ins), tuple(tensors[n] for n in outs))
        for stage, (ins, outs) in STAGES.items()
    }


def stages_needed(outputs: set[str] | frozenset[str]) -> tuple[str, ...]:
    """The stages, in order, that must run to produce ``outputs`` (pipeline output names).

    Each stage needs every stage before it, so this is a prefix of :data:`STAGE_ORDER`.
    """
    unknown = set(outputs) - set(_PRODUCER)
    if unknown:
        raise ValueError(f'unknown outputs {sorted(unknown)}; known: {sorted(_PRODUCER)}')
    last = max((STAGE_ORDER.index(_PRODUCER[name]) for name in outputs), default=-1)
    return STAGE_ORDER[: last + 1]
