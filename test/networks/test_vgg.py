"""VGG16 encoder / VGG19 features: taps, widths, torchvision weight loading and its errors."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from anomaly_seg_ros.errors import ModelError
from anomaly_seg_ros.networks import (
    VGG16Encoder,
    VGG19Features,
    count_parameters,
    load_torchvision_vgg_weights,
    vgg16_encoder,
    vgg19_features,
)
from anomaly_seg_ros.networks import vgg as vgg_module


def test_vgg16_encoder_taps_relu1_2_to_relu4_3() -> None:
    enc = VGG16Encoder(width=0.125)
    outputs = enc(torch.rand(2, 3, 32, 48))
    assert [tuple(o.shape) for o in outputs] == [(2, 8, 32, 48), (2, 16, 16, 24), (2, 32, 8, 12), (2, 64, 4, 6)]
    assert enc.out_channels == (8, 16, 32, 64)


def test_vgg19_features_tap_relu1_1_to_relu5_1() -> None:
    outputs = VGG19Features(width=0.125)(torch.rand(1, 3, 32, 64))
    assert [tuple(o.shape[1:]) for o in outputs] == [(8, 32, 64), (16, 16, 32), (32, 8, 16), (64, 4, 8), (64, 2, 4)]
    assert all((o >= 0).all() for o in outputs)  # after ReLU


def test_vgg19_to_relu5_1_has_the_reference_parameter_count() -> None:
    assert count_parameters(VGG19Features()) == 12_944_960


def _torchvision_file(tmp_path: Path, module: VGG16Encoder | VGG19Features) -> Path:
    """A torchvision-format file: features.N keys plus classifier keys that must be ignored."""
    state = {f'features.{k}': torch.randn_like(v) for k, v in module.features.state_dict().items()}
    state['classifier.0.weight'] = torch.zeros(2, 2)
    path = tmp_path / f'{module.kind}.pth'
    torch.save(state, path)
    return path


def test_torchvision_weights_load_into_the_same_indices(tmp_path: Path) -> None:
    path = _torchvision_file(tmp_path, VGG16Encoder())
    enc = vgg16_encoder(weights=path)
    state = torch.load(path, weights_only=True)
    torch.testing.assert_close(enc.features[21].weight, state['features.21.weight'])


def test_loading_vgg16_weights_into_vgg19_names_the_file(tmp_path: Path) -> None:
    path = _torchvision_file(tmp_path, VGG16Encoder())
    with pytest.raises(ModelError, match=r'vgg16\.pth.*not torchvision vgg19'):
        load_torchvision_vgg_weights(VGG19Features(), path)


def test_weights_for_a_reduced_width_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match='width 1'):
        load_torchvision_vgg_weights(VGG16Encoder(width=0.5), tmp_path / 'x.pth')


def test_missing_and_corrupt_weight_files_raise_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match='not found'):
        vgg19_features(weights=tmp_path / 'absent.pth')
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(b'not a checkpoint')
    with pytest.raises(ModelError, match='cannot be read'):
        vgg19_features(weights=bad)


def test_random_features_are_reported_once(caplog: pytest.LogCaptureFixture,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vgg_module, '_WARNED', set())
    with caplog.at_level(logging.WARNING):
        vgg19_features(width=0.125)
        vgg19_features(width=0.125)
        vgg19_features(width=0.125, warn_if_random=False)
    warnings = [r for r in caplog.records if 'RANDOMLY INITIALIZED' in r.getMessage()]
    assert len(warnings) == 1
