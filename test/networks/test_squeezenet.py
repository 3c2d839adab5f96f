"""SqueezeNet v1.1 features: taps, input conversion, the LPIPS / L1 difference, Caffe weights and LPIPS heads
(with the shared weights where present), state dict round trip and ONNX export; the dissimilarity network's
SqueezeNet encoder."""
from __future__ import annotations

import io
import logging
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from anomaly_seg_ros.errors import ModelError
from anomaly_seg_ros.networks import squeezenet as squeezenet_module
from anomaly_seg_ros.networks.squeezenet import (
    CAFFE_FEATURE_SCALE,
    CAFFE_MEAN_BGR,
    SqueezeNetFeatures,
    load_lpips_heads,
    load_squeezenet_caffe_weights,
    squeezenet_encoder,
    squeezenet_features,
)

MEAN = torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1)
STD = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)
WIDTHS = (64, 128, 256, 384, 384, 512, 512)


def _normalized(rgb01: Tensor) -> Tensor:
    return (rgb01 - MEAN) / STD


def _image(seed: int, size: tuple[int, int] = (64, 96)) -> Tensor:
    """A smooth-ish RGB [0, 1] image (1, 3, H, W)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, size[0] // 8, size[1] // 8, generator=g)
    return nn.functional.interpolate(coarse, size=size, mode='bilinear', align_corners=False)


def _net(distance: str = 'lpips') -> SqueezeNetFeatures:
    torch.manual_seed(0)
    return squeezenet_features(distance, warn_if_random=False).eval()


def _difference(net: SqueezeNetFeatures, a: Tensor, b: Tensor) -> Tensor:
    with torch.no_grad():
        features = net(_normalized(torch.cat([a, b])))
        return net.difference([f[:1] for f in features], [f[1:] for f in features], tuple(a.shape[-2:]))


@pytest.fixture(scope='module')
def weight_files(shared_data: Path) -> tuple[Path, Path]:
    """shared/weights/squeezenet/squeezenet_v1.1_features.npz and shared/weights/lpips/lpips_v0.1_squeeze.npz."""
    root = shared_data.parent / 'weights'
    files = root / 'squeezenet' / 'squeezenet_v1.1_features.npz', root / 'lpips' / 'lpips_v0.1_squeeze.npz'
    absent = [str(f) for f in files if not f.is_file()]
    if absent:
        pytest.skip(f'shared weights not present: {absent} (they live in shared/weights beside shared/data)')
    return files


# --------------------------------------------------------------------------------------------------
# Architecture and input conversion

def test_taps_are_relu_conv1_and_fires_3_5_to_9_at_the_lpips_widths() -> None:
    net = _net()
    outputs = net(torch.randn(2, 3, 128, 256))
    assert [tuple(o.shape) for o in outputs] == [
        (2, 64, 63, 127), (2, 128, 31, 63), (2, 256, 15, 31),
        (2, 384, 7, 15), (2, 384, 7, 15), (2, 512, 7, 15), (2, 512, 7, 15)]
    assert net.out_channels == WIDTHS
    assert all((o >= 0).all() for o in outputs)  # after ReLU


def test_v1_1_features_have_the_caffe_parameter_count() -> None:
    assert sum(p.numel() for p in SqueezeNetFeatures().parameters()) == 722_496


def test_input_conversion_equals_explicit_caffe_preprocessing() -> None:
    net = _net()
    rgb = torch.rand(2, 3, 40, 56)
    bgr_caffe = rgb[:, [2, 1, 0]] * 255.0 - torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    torch.testing.assert_close(net.caffe_input(_normalized(rgb)), bgr_caffe, atol=2e-4, rtol=0)
    with torch.no_grad():
        for ours, explicit in zip(net(_normalized(rgb)), net.forward_caffe(bgr_caffe)):
            torch.testing.assert_close(ours, explicit, atol=1e-5 * float(explicit.abs().max()), rtol=0)


def test_state_dict_round_trips_into_a_fresh_module(tmp_path: Path) -> None:
    for distance in ('lpips', 'l1'):
        net = _net(distance)
        if net.lpips is not None:
            net.lpips.lin3.uniform_()
        torch.save(net.state_dict(), tmp_path / 'net.pt')
        torch.manual_seed(1)
        fresh = squeezenet_features(distance, warn_if_random=False).eval()
        fresh.load_state_dict(torch.load(tmp_path / 'net.pt', weights_only=True))  # strict
        for key, value in net.state_dict().items():
            assert torch.equal(fresh.state_dict()[key], value), key
        keys = set(net.state_dict())
        assert 'fire9.expand3x3.weight' in keys and 'input_scale' not in keys
        assert ('lpips.lin6' in keys) == (distance == 'lpips')


# --------------------------------------------------------------------------------------------------
# difference()

@pytest.mark.parametrize('distance', ['lpips', 'l1'])
def test_difference_is_zero_for_identical_images_and_peaks_on_a_perturbed_patch(distance: str) -> None:
    net = _net(distance)
    image = _image(0)
    same = _difference(net, image, image.clone())
    assert same.shape == (1, 1, 64, 96)
    assert float(same.abs().max()) < 1e-6
    perturbed = image.clone()
    perturbed[..., 16:40, 48:80] = _image(1)[..., 16:40, 48:80]
    diff = _difference(net, image, perturbed)
    assert (diff >= 0).all()
    inside, outside = diff[..., 16:40, 48:80].mean(), diff[..., :, :32].mean()
    assert inside > 3 * outside
    assert torch.equal(diff, _difference(net, image, perturbed))  # deterministic


def test_l1_difference_weighs_layers_equally_and_stays_below_sqrt2() -> None:
    net = _net('l1')
    features_x = [torch.rand(1, c, 4, 6) for c in WIDTHS]
    features_r = [torch.zeros(1, c, 4, 6) for c in WIDTHS]
    for k, c in enumerate(WIDTHS):  # uniform on disjoint halves of the channels: every layer at its maximum
        features_x[k].zero_()[:, :c // 2] = 1.0
        features_r[k][:, c // 2:] = 1.0
    diff = net.difference(features_x, features_r, (4, 6))
    torch.testing.assert_close(diff, torch.full_like(diff, math.sqrt(2.0)))
    random_diff = net.difference([torch.rand(1, c, 4, 6) for c in WIDTHS], [torch.rand(1, c, 4, 6) for c in WIDTHS],
                                 (8, 12))
    assert float(random_diff.max()) <= math.sqrt(2.0)


def test_lpips_difference_matches_the_lpips_formula() -> None:
    net = _net('lpips')
    with torch.no_grad():
        for k in range(7):
            net.lpips.weight(k).uniform_()
    fx = [torch.rand(1, c, 3, 5) for c in WIDTHS]
    fr = [torch.rand(1, c, 3, 5) for c in WIDTHS]
    expected = torch.zeros(1, 1, 3, 5)
    for k in range(7):
        nx = fx[k] / (fx[k].norm(dim=1, keepdim=True) + 1e-10)
        nr = fr[k] / (fr[k].norm(dim=1, keepdim=True) + 1e-10)
        expected += nn.functional.conv2d((nx - nr) ** 2, net.lpips.weight(k))
    torch.testing.assert_close(net.difference(fx, fr, (3, 5)), expected)


def test_difference_needs_the_seven_taps() -> None:
    with pytest.raises(ValueError, match='7 taps'):
        _net().difference([torch.rand(1, 64, 4, 4)], [torch.rand(1, 64, 4, 4)], (4, 4))


# --------------------------------------------------------------------------------------------------
# Builder and weight files

def test_builder_refuses_an_unknown_distance_and_heads_for_l1(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match='distance'):
        squeezenet_features('cosine', warn_if_random=False)
    with pytest.raises(ValueError, match='lpips_weights'):
        squeezenet_features('l1', lpips_weights=tmp_path / 'x.npz', warn_if_random=False)


def test_random_features_and_missing_heads_are_reported_once(caplog: pytest.LogCaptureFixture,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(squeezenet_module, '_WARNED', set())
    with caplog.at_level(logging.WARNING):
        squeezenet_features()
        squeezenet_features()
        squeezenet_features(warn_if_random=False)
    messages = [r.getMessage() for r in caplog.records]
    assert sum('RANDOMLY INITIALIZED' in m for m in messages) == 1
    assert sum('LPIPS heads not given' in m for m in messages) == 1


def _caffe_arrays(net: SqueezeNetFeatures) -> dict[str, np.ndarray]:
    return {k.replace('.', '/'): np.random.default_rng(0).standard_normal(v.shape).astype(np.float32)
            for k, v in net.state_dict().items() if not k.startswith('lpips.')}


def test_caffe_names_load_into_the_matching_modules(tmp_path: Path) -> None:
    net = _net('l1')
    arrays = _caffe_arrays(net)
    arrays['conv10/weight'] = np.zeros((2, 2), np.float32)  # extra keys (a classifier) are ignored
    np.savez(tmp_path / 'caffe.npz', **arrays)
    load_squeezenet_caffe_weights(net, tmp_path / 'caffe.npz')
    assert np.array_equal(net.fire7.expand3x3.bias.detach().numpy(), arrays['fire7/expand3x3/bias'])
    assert np.array_equal(net.conv1.weight.detach().numpy(), arrays['conv1/weight'])


def test_bad_caffe_weight_files_raise_model_error_naming_the_file(tmp_path: Path) -> None:
    net = _net('l1')
    with pytest.raises(ModelError, match=r'absent\.npz.*not found'):
        load_squeezenet_caffe_weights(net, tmp_path / 'absent.npz')
    (tmp_path / 'text.npz').write_bytes(b'not an archive')
    with pytest.raises(ModelError, match=r'text\.npz.*cannot be read as an \.npz'):
        load_squeezenet_caffe_weights(net, tmp_path / 'text.npz')
    np.save(tmp_path / 'single.npy', np.zeros(3, np.float32))
    with pytest.raises(ModelError, match=r'single\.npy.*single array'):
        load_squeezenet_caffe_weights(net, tmp_path / 'single.npy')
    arrays = _caffe_arrays(net)
    del arrays['fire4/squeeze1x1/bias']
    np.savez(tmp_path / 'missing.npz', **arrays)
    with pytest.raises(ModelError, match=r'missing\.npz.*missing keys.*fire4/squeeze1x1/bias'):
        load_squeezenet_caffe_weights(net, tmp_path / 'missing.npz')
    arrays = _caffe_arrays(net)
    arrays['conv1/weight'] = np.zeros((96, 3, 7, 7), np.float32)  # SqueezeNet v1.0
    np.savez(tmp_path / 'v1_0.npz', **arrays)
    with pytest.raises(ModelError, match=r'v1_0\.npz.*shape mismatch.*conv1/weight \(96, 3, 7, 7\)'):
        squeezenet_features('l1', weights=tmp_path / 'v1_0.npz')


def test_bad_lpips_head_files_raise_model_error_naming_the_file(tmp_path: Path) -> None:
    heads = {f'lin{k}.model.1.weight': np.full((1, c, 1, 1), 0.1, np.float32) for k, c in enumerate(WIDTHS)}
    np.savez(tmp_path / 'heads.npz', **heads)
    net = _net('lpips')
    load_lpips_heads(net, tmp_path / 'heads.npz')
    torch.testing.assert_close(net.lpips.lin5, torch.full((1, 512, 1, 1), 0.1))
    with pytest.raises(ModelError, match=r"heads\.npz.*distance 'lpips'.*'l1'"):
        load_lpips_heads(_net('l1'), tmp_path / 'heads.npz')
    heads['lin2.model.1.weight'] = -heads['lin2.model.1.weight']
    np.savez(tmp_path / 'negative.npz', **heads)
    with pytest.raises(ModelError, match=r'negative\.npz.*non-negative.*lin2'):
        load_lpips_heads(net, tmp_path / 'negative.npz')


# --------------------------------------------------------------------------------------------------
# The shared ImageNet weights and LPIPS heads

def _camvid_frame(shared_data: Path, name: str) -> Tensor:
    cv2 = pytest.importorskip('cv2')
    path = shared_data / 'camvid' / 'train' / name
    if not path.is_file():
        pytest.skip(f'CamVid frame {path} not present')
    bgr = cv2.imread(str(path))
    return torch.from_numpy(bgr[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255.0


def test_caffe_weights_tell_a_crop_of_a_photo_from_another_street(shared_data: Path,
                                                                  weight_files: tuple[Path, Path]) -> None:
    """README check: cosine of global-average-pooled fire9 features, photo vs its crop and vs another scene."""
    photo = _camvid_frame(shared_data, '0001TP_006990.png')
    other = _camvid_frame(shared_data, '0006R0_f02430.png')
    crop = photo[..., 40:320, 60:420]

    def separation(net: SqueezeNetFeatures) -> tuple[float, float]:
        def pooled(image: Tensor) -> Tensor:
            resized = nn.functional.interpolate(image, size=(128, 160), mode='bilinear', align_corners=False)
            with torch.no_grad():
                return net(_normalized(resized))[-1].mean(dim=(2, 3))
        ref = pooled(photo)
        return (float(nn.functional.cosine_similarity(ref, pooled(crop))),
                float(nn.functional.cosine_similarity(ref, pooled(other))))

    crop_cos, other_cos = separation(squeezenet_features('l1', weights=weight_files[0]).eval())
    random_crop_cos, random_other_cos = separation(_net('l1'))
    assert crop_cos > 0.8 and other_cos < 0.7  # measured 0.88 and 0.49
    assert crop_cos - other_cos > (random_crop_cos - random_other_cos) + 0.2  # random: 0.999 vs 0.99


def test_lpips_heads_load_with_their_widths_and_the_alex_heads_are_refused(weight_files: tuple[Path, Path]) -> None:
    net = squeezenet_features('lpips', weights=weight_files[0], lpips_weights=weight_files[1])
    assert [tuple(net.lpips.weight(k).shape) for k in range(7)] == [(1, c, 1, 1) for c in WIDTHS]
    assert all(bool((net.lpips.weight(k) >= 0).all()) and float(net.lpips.weight(k).sum()) > 0 for k in range(7))
    alex = weight_files[1].with_name('lpips_v0.1_alex.npz')
    if alex.is_file():
        with pytest.raises(ModelError, match=r'lpips_v0\.1_alex\.npz.*not LPIPS v0\.1 SqueezeNet heads'):
            load_lpips_heads(net, alex)


# --------------------------------------------------------------------------------------------------
# ONNX

class _Pair(nn.Module):
    """(image, reference) normalized -> (difference map, fire9 features of both)."""

    def __init__(self, net: SqueezeNetFeatures, size: tuple[int, int]) -> None:
        super().__init__()
        self.net, self.size = net, size

    def forward(self, x: Tensor, r: Tensor) -> tuple[Tensor, Tensor]:
        features = self.net(torch.cat([x, r], dim=0))
        n = x.shape[0]
        return self.net.difference([f[:n] for f in features], [f[n:] for f in features], self.size), features[-1]


@pytest.mark.parametrize('distance', ['lpips', 'l1'])
def test_onnx_export_matches_onnxruntime(distance: str) -> None:
    onnx = pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')
    net = _net(distance)
    if net.lpips is not None:
        with torch.no_grad():
            for k in range(7):
                net.lpips.weight(k).uniform_(0.0, 0.1)
    pair = _Pair(net, (48, 64)).eval()
    x, r = _normalized(_image(2, (48, 64))), _normalized(_image(3, (48, 64)))
    with torch.no_grad():
        expected = [t.numpy() for t in pair(x, r)]
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(pair, (x, r), buffer, opset_version=17, dynamo=False,
                          input_names=['x', 'r'], output_names=['difference', 'fire9'])
    onnx.checker.check_model(onnx.load_from_string(buffer.getvalue()))
    session = ort.InferenceSession(buffer.getvalue(), providers=['CPUExecutionProvider'])
    difference, fire9 = session.run(None, {'x': x.numpy(), 'r': r.numpy()})
    assert difference.shape == (1, 1, 48, 64) and float(expected[0].max()) > 0
    assert np.abs(difference - expected[0]).max() < 1e-4
    assert np.abs(fire9 - expected[1]).max() < 1e-5 * max(1.0, float(np.abs(expected[1]).max()))  # float32, ~1e2


# --------------------------------------------------------------------------------------------------
# The dissimilarity network's encoder

@pytest.mark.parametrize('size', [(24, 40), (128, 256)])
def test_encoder_taps_lie_on_the_exact_halving_grid(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    encoder = squeezenet_encoder(stem_channels=8, warn_if_random=False).eval()
    with torch.no_grad():
        taps = encoder(torch.randn(2, 3, *size))
    h, w = size
    assert [tuple(t.shape) for t in taps] == [
        (2, 8, h, w), (2, 64, h // 2, w // 2), (2, 128, h // 4, w // 4), (2, 256, h // 8, w // 8)]
    assert encoder.out_channels == (8, 64, 128, 256)


def test_encoder_loads_the_caffe_layers_and_keeps_its_stem(tmp_path: Path) -> None:
    arrays = _caffe_arrays(_net('l1'))  # conv1 ... fire9: the encoder takes conv1 ... fire5
    np.savez(tmp_path / 'caffe.npz', **arrays)
    torch.manual_seed(0)
    stem = squeezenet_encoder(warn_if_random=False).stem[0].weight.detach().clone()
    torch.manual_seed(0)
    encoder = squeezenet_encoder(tmp_path / 'caffe.npz')
    assert np.array_equal(encoder.fire5.expand3x3.weight.detach().numpy(), arrays['fire5/expand3x3/weight'])
    assert np.array_equal(encoder.conv1.bias.detach().numpy(), arrays['conv1/bias'])
    assert torch.equal(encoder.stem[0].weight, stem)
    assert not any(key.startswith(('fire6', 'lpips')) for key in encoder.state_dict())
    del arrays['fire5/squeeze1x1/weight']
    np.savez(tmp_path / 'missing.npz', **arrays)
    with pytest.raises(ModelError, match=r'missing\.npz.*missing keys.*fire5/squeeze1x1/weight'):
        squeezenet_encoder(tmp_path / 'missing.npz')


def test_encoder_half_resolution_tap_is_the_caffe_conv1_of_the_padded_image(tmp_path: Path) -> None:
    """Same weights and input conversion as the perceptual features; the encoder's conv1 pads by one pixel
    (the Caffe mean colour, zero after the conversion), which is the features' conv1 on an image with one
    zero row and column added at the top and left (the bottom and right padding is never read for even sizes)."""
    features = _net('l1')
    np.savez(tmp_path / 'caffe.npz', **_caffe_arrays(features))
    load_squeezenet_caffe_weights(features, tmp_path / 'caffe.npz')
    encoder = squeezenet_encoder(tmp_path / 'caffe.npz').eval()
    x = _normalized(_image(4, (32, 48)))
    with torch.no_grad():
        ours = encoder(x)[1]
        theirs = features.forward_caffe(nn.functional.pad(features.caffe_input(x), (1, 0, 1, 0)))[0]
    assert ours.shape == theirs.shape == (1, 64, 16, 24)
    torch.testing.assert_close(ours, theirs * CAFFE_FEATURE_SCALE, atol=1e-5 * float(ours.abs().max()), rtol=0)


def test_encoder_taps_and_their_correlation_stay_in_fp16_range_on_a_camvid_frame(
        shared_data: Path, weight_files: tuple[Path, Path]) -> None:
    """Unscaled, fire5 reaches ~900 here and the correlation sum_c f^2 ~10^6 (FP16's maximum is 65504)."""
    frame = nn.functional.interpolate(_camvid_frame(shared_data, '0001TP_006990.png'), size=(128, 256),
                                      mode='bilinear', align_corners=False)
    encoder = squeezenet_encoder(weight_files[0]).eval()
    with torch.no_grad():
        taps = encoder(_normalized(frame))[1:]
    assert max(float(t.max()) for t in taps) < 16.0
    assert max(float((t * t).sum(dim=1).max()) for t in taps) < 1024.0


def test_random_encoder_is_reported_once(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(squeezenet_module, '_WARNED', set())
    with caplog.at_level(logging.WARNING, logger=squeezenet_module.__name__):
        squeezenet_encoder()
        squeezenet_encoder()
        squeezenet_encoder(warn_if_random=False)
    assert sum('encoder of the dissimilarity network is RANDOMLY INITIALIZED' in r.message
               for r in caplog.records) == 1
