"""Published weights for the project's own network definitions, checked before they are loaded.

The architectures live in their own modules; this module only reads files, compares them with the
architecture and loads them strictly, raising :class:`~anomaly_seg_ros.errors.ModelError` (naming the
file and saying what to do) when they do not fit.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from ..errors import ModelError
from .espnetv2 import CITYSCAPES_OUTPUTS, ESPNETV2_CHANNELS, ESPNetv2Segmentation

__all__ = ['espnetv2_file_scale', 'load_espnetv2_cityscapes']

# A key whose first dimension is the encoder width at 1/4 (it tells the width scale apart) and the key
# whose first dimension is the number of outputs.
_WIDTH_KEY = 'base_net.level2_0.act.weight'
_OUTPUT_KEY = 'bu_dec_l4.merge_layer.3.weight'


def _read_state_dict(path: Path) -> Mapping[str, torch.Tensor]:
    if not path.is_file():
        raise ModelError(f'{path}: ESPNetv2 weight file not found; point the option at one of the EdgeNets '
                         f'Cityscapes files (espnetv2_s_<scale>_city_<size>.pth)')
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise ModelError(f'{path}: cannot be read as a torch state dict ({exc}); it should be an EdgeNets '
                         f'ESPNetv2 Cityscapes state dict saved with torch.save') from exc
    if isinstance(state, Mapping) and isinstance(state.get('state_dict'), Mapping):
        state = state['state_dict']
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f'{path}: holds a {type(state).__name__}, not a state dict of tensors; use an EdgeNets '
                         f'ESPNetv2 Cityscapes file')
    return state


def espnetv2_file_scale(state: Mapping[str, torch.Tensor]) -> float | None:
    """The width scale an ESPNetv2 state dict was trained at (from its 1/4-resolution width), or None."""
    width = state.get(_WIDTH_KEY)
    if width is None or width.ndim != 1:
        return None
    for scale, channels in ESPNETV2_CHANNELS.items():
        if channels[1] == width.shape[0]:
            return scale
    return None


def load_espnetv2_cityscapes(network: ESPNetv2Segmentation, path: str | Path) -> None:
    """Load an EdgeNets ESPNetv2 Cityscapes state dict (``espnetv2_s_<scale>_city_<size>.pth``) in place.

    The file is read with ``torch.load(weights_only=True)`` onto the CPU (the published files were saved
    from CUDA tensors). Its width scale, output count, keys and shapes are checked against ``network``
    before ``load_state_dict(strict=True)``. Raises :class:`ModelError` naming the file for a missing
    or unreadable file, a file of another width scale, another number of outputs, or other keys/shapes.
    """
    path = Path(path)
    state = _read_state_dict(path)
    file_scale = espnetv2_file_scale(state)
    if file_scale is None:
        raise ModelError(f'{path}: not an ESPNetv2 segmentation state dict (no {_WIDTH_KEY!r} of a known width); '
                         f'use an EdgeNets espnetv2_s_<scale>_city_<size>.pth file')
    if file_scale != network.scale:
        raise ModelError(f'{path}: file is s={file_scale}, architecture says scale {network.scale}; set the '
                         f'architecture\'s scale to {file_scale} or use an espnetv2_s_{network.scale}_city file')
    outputs = state.get(_OUTPUT_KEY)
    if outputs is None or outputs.shape[0] != CITYSCAPES_OUTPUTS:
        found = 'none' if outputs is None else outputs.shape[0]
        raise ModelError(f'{path}: has {found} outputs, the Cityscapes ESPNetv2 has {CITYSCAPES_OUTPUTS} '
                         f'(19 train ids + background); use an EdgeNets Cityscapes (\'city\') file')
    own = network.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f'{k} {tuple(state[k].shape)} != {tuple(v.shape)}' for k, v in own.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        detail = '; '.join(part for part in (
            f'missing keys {missing[:4]}' if missing else '',
            f'unexpected keys {unexpected[:4]}' if unexpected else '',
            f'shape mismatch {wrong[:3]}' if wrong else '') if part)
        raise ModelError(f'{path}: does not fit ESPNetv2 at scale {network.scale} ({detail}); use an unmodified '
                         f'EdgeNets espnetv2_s_{network.scale}_city file')
    network.load_state_dict(state, strict=True)
