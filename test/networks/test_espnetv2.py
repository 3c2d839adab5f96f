"""ESPNetv2 (Cityscapes): the published EdgeNets weights load unchanged and reproduce their reference logits,
the loader's refusals, output channels, size checks, static adaptive pooling and ONNX Runtime parity."""
from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from anomaly_seg_ros.errors import ModelError
from anomaly_seg_ros.imaging import prepare_image
from anomaly_seg_ros.networks.espnetv2 import ESPNetv2Segmentation, adaptive_avg_pool2d_static, espnetv2
from anomaly_seg_ros.networks.pretrained import load_espnetv2_cityscapes

MEAN = torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1)
STD = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)
# (file, width scale, tag of the reference outputs); every file's reference was computed at 1024x512.
WEIGHT_FILES = [
    ('espnetv2_s_2.0_city_1024x512.pth', 2.0, 's2.0_1024x512'),
    ('espnetv2_s_2.0_city_512x256.pth', 2.0, 's2.0_512x256'),
    ('espnetv2_s_1.0_city_1024x512.pth', 1.0, 's1.0_1024x512'),
]


@pytest.fixture(scope='module')
def weights_dir(shared_data: Path) -> Path:
    """shared/weights/espnetv2_cityscapes (beside shared/data, which ANOMALY_SEG_SHARED_DATA may move)."""
    root = shared_data.parent / 'weights' / 'espnetv2_cityscapes'
    absent = [str(root / name) for name, _, _ in WEIGHT_FILES if not (root / name).is_file()]
    absent += [str(root / 'reference')] if not (root / 'reference' / 'reference.json').is_file() else []
    if absent:
        pytest.skip(f'shared ESPNetv2 weights not present: {absent} (they live in shared/weights beside shared/data)')
    return root


@pytest.fixture(scope='module')
def reference_image(weights_dir: Path) -> np.ndarray:
    """The reference frame, HxWx3 uint8 RGB (1024x512)."""
    bgr = cv2.imread(str(weights_dir / 'reference' / 'frankfurt_000000_000294_1024x512.png'), cv2.IMREAD_COLOR)
    assert bgr is not None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _normalized(rgb: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    return (torch.from_numpy(prepare_image(rgb, size)) - MEAN) / STD


def _pretrained(weights_dir: Path, name: str, scale: float, keep_background: bool = True) -> ESPNetv2Segmentation:
    net = espnetv2(20 if keep_background else 19, scale, keep_background=keep_background).eval()
    load_espnetv2_cityscapes(net, weights_dir / name)
    return net


def _randomized(net: ESPNetv2Segmentation, seed: int = 0) -> ESPNetv2Segmentation:
    """Random BN statistics/affines and PReLU slopes too, so every layer changes the result."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            elif isinstance(m, nn.PReLU):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.5)
    return net.eval()


def _onnx_runtime_logits(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Export (TorchScript exporter, opset 17, static shapes) and run with ONNX Runtime on 2 threads."""
    ort = pytest.importorskip('onnxruntime')
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the TorchScript exporter's deprecation notice
        torch.onnx.export(net, (x,), buffer, dynamo=False, opset_version=17, input_names=['image'],
                          output_names=['logits'])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(buffer.getvalue(), options, providers=['CPUExecutionProvider'])
    return session.run(None, {'image': x.numpy()})[0]


# --------------------------------------------------------------------------------------------------
# Architecture

def test_parameter_counts_are_those_of_the_published_networks() -> None:
    assert sum(p.numel() for p in espnetv2(scale=2.0).parameters()) == 789_242
    assert sum(p.numel() for p in espnetv2(scale=1.0).parameters()) == 234_010


def test_keep_background_returns_20_channels_and_otherwise_the_19_train_ids() -> None:
    full = _randomized(espnetv2(20, 1.0, keep_background=True))
    train_ids = espnetv2(19, 1.0)
    train_ids.load_state_dict(full.state_dict())
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        all_logits, logits = full(x), train_ids.eval()(x)
    assert (full.num_classes, train_ids.num_classes) == (20, 19)
    assert all_logits.shape == (2, 20, 64, 96) and logits.shape == (2, 19, 64, 96)
    torch.testing.assert_close(logits, all_logits[:, :19])


@pytest.mark.parametrize(('num_classes', 'keep_background'), [(20, False), (19, True), (21, False)])
def test_builder_refuses_class_counts_other_than_the_weights_outputs(num_classes: int, keep_background: bool) -> None:
    with pytest.raises(ValueError, match='num_classes must be'):
        espnetv2(num_classes, keep_background=keep_background)


def test_unknown_width_scale_is_refused() -> None:
    with pytest.raises(ValueError, match='width scale'):
        espnetv2(scale=3.0)


@pytest.mark.parametrize('size', [(16, 16), (48, 80), (256, 512)])
def test_logits_come_at_the_input_size_for_multiples_of_16(size: tuple[int, int]) -> None:
    net = _randomized(espnetv2(scale=0.5))
    with torch.no_grad():
        out = net(torch.randn(1, 3, *size))
    assert ESPNetv2Segmentation.size_divisor == 16
    assert out.shape == (1, 19, *size)
    assert torch.isfinite(out).all()


def test_sizes_not_divisible_by_16_are_refused() -> None:
    with pytest.raises(ValueError, match='divisible by 16'):
        espnetv2(scale=0.5)(torch.randn(1, 3, 72, 128))


@pytest.mark.parametrize(('in_size', 'out_size'), [((16, 32), (5, 5)), ((24, 48), (16, 32)), ((4, 8), (5, 5)),
                                                     ((64, 128), (7, 13)), ((32, 64), (16, 32)), ((9, 9), (9, 9))])
def test_static_adaptive_pooling_equals_pytorchs(in_size: tuple[int, int], out_size: tuple[int, int]) -> None:
    x = torch.randn(2, 3, *in_size)
    torch.testing.assert_close(adaptive_avg_pool2d_static(x, out_size), F.adaptive_avg_pool2d(x, out_size),
                               atol=1e-6, rtol=1e-5)


# --------------------------------------------------------------------------------------------------
# Loading weights

def _saved(tmp_path: Path, net: nn.Module, name: str) -> Path:
    path = tmp_path / name
    torch.save(net.state_dict(), path)
    return path


def test_a_file_of_another_width_scale_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = _saved(tmp_path, espnetv2(scale=1.0), 'espnetv2_s_1.0_city_1024x512.pth')
    with pytest.raises(ModelError, match=r'espnetv2_s_1\.0_city_1024x512\.pth: file is s=1\.0, architecture says '
                                         r'scale 2\.0; set the architecture\'s scale to 1\.0'):
        load_espnetv2_cityscapes(espnetv2(scale=2.0), path)


def test_missing_corrupt_and_incomplete_files_are_refused(tmp_path: Path) -> None:
    net = espnetv2(scale=1.0)
    with pytest.raises(ModelError, match='absent.pth: ESPNetv2 weight file not found'):
        load_espnetv2_cityscapes(net, tmp_path / 'absent.pth')
    corrupt = tmp_path / 'corrupt.pth'
    corrupt.write_bytes(b'not a checkpoint')
    with pytest.raises(ModelError, match='corrupt.pth: cannot be read as a torch state dict'):
        load_espnetv2_cityscapes(net, corrupt)
    state = net.state_dict()
    del state['bu_dec_l2.stages.3.weight']
    incomplete = tmp_path / 'incomplete.pth'
    torch.save(state, incomplete)
    with pytest.raises(ModelError, match=r"incomplete.pth: does not fit ESPNetv2 at scale 1.0 \(missing keys "
                                         r"\['bu_dec_l2.stages.3.weight'\]"):
        load_espnetv2_cityscapes(net, incomplete)
    torch.save({'weight': torch.zeros(3)}, tmp_path / 'other.pth')
    with pytest.raises(ModelError, match='other.pth: not an ESPNetv2 segmentation state dict'):
        load_espnetv2_cityscapes(net, tmp_path / 'other.pth')


def test_a_saved_network_loads_back_strictly(tmp_path: Path) -> None:
    source = _randomized(espnetv2(scale=0.5))
    target = espnetv2(scale=0.5)
    load_espnetv2_cityscapes(target, _saved(tmp_path, source, 'w.pth'))
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize(('name', 'scale', 'tag'), WEIGHT_FILES)
def test_fresh_network_has_exactly_the_published_keys_and_shapes(weights_dir: Path, name: str, scale: float,
                                                                 tag: str) -> None:
    state = torch.load(weights_dir / name, map_location='cpu', weights_only=True)
    own = espnetv2(scale=scale).state_dict()
    assert list(own) == list(state)
    assert {k: tuple(v.shape) for k, v in own.items()} == {k: tuple(v.shape) for k, v in state.items()}


def test_published_file_of_the_other_scale_is_refused(weights_dir: Path) -> None:
    with pytest.raises(ModelError, match='file is s=1.0, architecture says scale 2.0'):
        load_espnetv2_cityscapes(espnetv2(scale=2.0), weights_dir / 'espnetv2_s_1.0_city_1024x512.pth')
    with pytest.raises(ModelError, match='file is s=2.0, architecture says scale 1.0'):
        load_espnetv2_cityscapes(espnetv2(scale=1.0), weights_dir / 'espnetv2_s_2.0_city_512x256.pth')


@pytest.mark.parametrize(('name', 'scale', 'tag'), WEIGHT_FILES)
def test_published_weights_reproduce_the_reference_logits(weights_dir: Path, reference_image: np.ndarray,
                                                          name: str, scale: float, tag: str) -> None:
    reference = json.loads((weights_dir / 'reference' / 'reference.json').read_text())[tag]
    assert reference['output_shape'] == [20, 512, 1024]  # every file was run at 1024x512
    expected = np.load(weights_dir / 'reference' / f'logits_{tag}_every8.npy')
    net = _pretrained(weights_dir, name, scale)
    with torch.no_grad():
        logits = net(_normalized(reference_image, (512, 1024)))[0].numpy()
    assert logits.shape == (20, 512, 1024)
    np.testing.assert_allclose(logits[:, ::8, ::8], expected, rtol=0, atol=1e-3)
    assert abs(float(logits.mean()) - reference['logit_mean']) < 1e-4
    assert abs(float(logits.std()) - reference['logit_std']) < 1e-4


# --------------------------------------------------------------------------------------------------
# ONNX export

def test_onnx_runtime_matches_pytorch_on_a_small_random_network() -> None:
    net = _randomized(espnetv2(20, 0.5, keep_background=True))
    x = torch.randn(1, 3, 64, 128)  # 1/16 is 4x8: the pyramid's 0.1 and 1.5 scales pool to sizes that do not divide
    with torch.no_grad():
        expected = net(x).numpy()
    np.testing.assert_allclose(_onnx_runtime_logits(net, x), expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def test_onnx_runtime_matches_pytorch_with_the_published_weights_at_512x256(weights_dir: Path,
                                                                            reference_image: np.ndarray) -> None:
    net = _pretrained(weights_dir, 'espnetv2_s_2.0_city_512x256.pth', 2.0, keep_background=False)
    x = _normalized(reference_image, (256, 512))
    with torch.no_grad():
        expected = net(x).numpy()
    actual = _onnx_runtime_logits(net, x)
    assert actual.shape == (1, 19, 256, 512)
    assert np.abs(actual - expected).max() < 1e-3
    assert (actual.argmax(1) == expected.argmax(1)).mean() > 0.999
