"""AnomalyPipeline: one camera frame in, semantic map, uncertainty maps and anomaly heatmap out.

The pipeline owns the host side of a frame (resize in, resize out, range checks) and asks a
:class:`~.runtime.base.Backend` to run the four stage graphs of :mod:`.stages`. It never imports
torch: with ``backend='onnxruntime'`` or ``'tensorrt'`` the runtime path is numpy + the backend.

Only the stages needed for the requested outputs run, and only requested outputs are copied to
the host and resized: asking for ``{'semantic'}`` runs segmentation alone.
"""
from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import AnomalySegError
from .imaging import check_rgb, prepare_image, resize_map, to_uint8_rgb
from .labels import LabelSet
from .model_config import ModelConfig, load_model_config
from .runtime import Backend, create_backend
from .stages import ENSEMBLE_ORDER, stages_needed

__all__ = [
    'FLOAT_OUTPUTS',
    'OUTPUT_NAMES',
    'AnomalyPipeline',
    'NonFiniteOutputError',
    'PipelineResult',
]

FLOAT_OUTPUTS = ('entropy', 'softmax_distance', 'perceptual_difference', 'dissimilarity', 'anomaly')
OUTPUT_NAMES = ('semantic', 'synthesis', *FLOAT_OUTPUTS)


class NonFiniteOutputError(AnomalySegError):
    """A stage produced NaN or Inf; the frame's results must not be used."""

    def __init__(self, output: str, count: int) -> None:
        super().__init__(f'output {output!r} has {count} non-finite values')
        self.output = output
        self.count = count


@dataclass
class PipelineResult:
    """Outputs of one frame; fields not requested are ``None``.

    Sizes are the frame's (H, W) unless another output size was asked for.
    semantic: HxW uint8 train ids. synthesis: HxWx3 uint8 RGB. entropy, softmax_distance,
    perceptual_difference, dissimilarity (the network's P(anomaly)), anomaly (the ensemble):
    HxW float32 in [0, 1]. ``timings_ms``: wall time per stage, plus 'prepare', 'fetch' and 'total'.
    """

    semantic: np.ndarray | None = None
    synthesis: np.ndarray | None = None
    entropy: np.ndarray | None = None
    softmax_distance: np.ndarray | None = None
    perceptual_difference: np.ndarray | None = None
    dissimilarity: np.ndarray | None = None
    anomaly: np.ndarray | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    def get(self, name: str) -> np.ndarray | None:
        if name not in OUTPUT_NAMES:
            raise KeyError(f'unknown output {name!r}; outputs: {", ".join(OUTPUT_NAMES)}')
        return getattr(self, name)


class AnomalyPipeline:
    """The paper's framework on any backend.

    Args:
        config: the model directory's metadata.
        backend: an opened backend for that model directory.
    """

    def __init__(self, config: ModelConfig, backend: Backend) -> None:
        self.config = config
        self.backend = backend
        self._weights = np.asarray(config.ensemble_weights, dtype=np.float32)
        self._weights_on_backend: Any = None

    @classmethod
    def from_model_dir(cls, model_dir: str | Path, backend: str = 'onnxruntime',
                       device: str | None = None, precision: str = 'fp32') -> AnomalyPipeline:
        """Load ``model_dir`` (see :mod:`.model_config`) and open it with ``backend``."""
        config = load_model_config(model_dir)
        return cls(config, create_backend(backend, model_dir, config, device=device, precision=precision))

    @property
    def label_set(self) -> LabelSet:
        return self.config.label_set

    @property
    def ensemble_weights(self) -> tuple[float, float, float, float]:
        """(dissimilarity, entropy, perceptual_difference, softmax_distance), normalized to sum 1."""
        a, b, c, d = (float(w) for w in self._weights)
        return a, b, c, d

    @ensemble_weights.setter
    def ensemble_weights(self, weights: Sequence[float]) -> None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (4,) or not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.max() <= 0:
            raise ValueError(f'ensemble weights must be 4 finite non-negative numbers with a positive sum '
                             f'({", ".join(ENSEMBLE_ORDER)}), got {weights.tolist()}')
        # Normalized here, in float64, so the float32 graph input sums to 1 whatever the scale given
        # ([1e308, 1e308, 0, 0] would overflow a float32 sum; [1e-320, 0, 0, 0] would flush to zero).
        scaled = weights / weights.max()
        self._weights = (scaled / scaled.sum()).astype(np.float32)
        self._weights_on_backend = None

    def process(self, rgb: np.ndarray, outputs: Collection[str] | None = None,
                output_size: tuple[int, int] | str | None = None) -> PipelineResult:
        """Run the pipeline on one HxWx3 uint8 RGB frame.

        Args:
            rgb: the camera frame, any size.
            outputs: names from :data:`OUTPUT_NAMES` to compute; ``None`` for all.
            output_size: ``None`` for the frame's size, (H, W) for a fixed size, or ``'network'``
                to keep each output at the resolution of the stage that made it.
        Raises:
            NonFiniteOutputError: a requested output holds NaN or Inf.
        """
        start = time.perf_counter()
        wanted = frozenset(OUTPUT_NAMES if outputs is None else outputs)
        unknown = wanted - set(OUTPUT_NAMES)
        if unknown:
            raise ValueError(f'unknown outputs {sorted(unknown)}; outputs: {", ".join(OUTPUT_NAMES)}')
        rgb = check_rgb(rgb)
        if output_size is None:
            target: tuple[int, int] | None = (rgb.shape[0], rgb.shape[1])
        elif output_size == 'network':
            target = None
        elif isinstance(output_size, str):
            raise ValueError(f"output_size must be None, 'network' or (H, W), got {output_size!r}")
        else:
            target = (int(output_size[0]), int(output_size[1]))

        result = PipelineResult()
        timings = result.timings_ms
        tensors: dict[str, Any] = {
            'image': self.backend.upload(prepare_image(rgb, self.config.stage('segmentation').input_size)),
        }
        if 'anomaly' in wanted or 'dissimilarity' in wanted:
            if self._weights_on_backend is None:
                self._weights_on_backend = self.backend.upload(self._weights)
            tensors['ensemble_weights'] = self._weights_on_backend
        timings['prepare'] = (time.perf_counter() - start) * 1e3

        for stage in stages_needed(wanted):
            stage_start = time.perf_counter()
            tensors.update(self.backend.run(stage, tensors))
            timings[stage] = (time.perf_counter() - stage_start) * 1e3

        fetch_start = time.perf_counter()
        for name in (n for n in OUTPUT_NAMES if n in wanted):  # stage order: the first bad one is named
            setattr(result, name, self._fetch(name, tensors[name], target))
        timings['fetch'] = (time.perf_counter() - fetch_start) * 1e3
        timings['total'] = (time.perf_counter() - start) * 1e3
        return result

    def _fetch(self, name: str, value: Any, target: tuple[int, int] | None) -> np.ndarray:
        array = self.backend.download(value)
        if name == 'semantic':
            labels = np.ascontiguousarray(array[0]).astype(np.uint8)
            return labels if target is None else resize_map(labels, target, nearest=True)
        if name == 'synthesis':
            bad = array.size - int(np.count_nonzero(np.isfinite(array)))
            if bad:  # to_uint8_rgb would turn NaN into a silent 0
                raise NonFiniteOutputError(name, bad)
            rgb = to_uint8_rgb(array[0])
            return rgb if target is None else resize_map(rgb, target)
        values = np.ascontiguousarray(array[0, 0], dtype=np.float32)
        bad = values.size - int(np.count_nonzero(np.isfinite(values)))
        if bad:
            raise NonFiniteOutputError(name, bad)
        if target is not None:
            values = resize_map(values, target)
        # Graph outputs are in [0, 1] by construction; clip rounding excursions of the backends.
        return np.clip(values, 0.0, 1.0)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> AnomalyPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
