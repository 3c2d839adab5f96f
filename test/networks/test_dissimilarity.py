"""DissimilarityNetwork: the reference parameter counts, shapes, flags, the SqueezeNet encoder, batch
independence, ONNX export."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch

from anomaly_seg_ros.networks import count_parameters, dissimilarity_network, one_hot


def _inputs(num_classes: int, size: tuple[int, int], batch: int = 1) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    image = torch.randn(batch, 3, *size, generator=gen)
    synthesis = torch.randn(batch, 3, *size, generator=gen)
    labels = torch.randint(0, num_classes, (batch, *size), generator=gen)
    labels[:, :2] = 255  # ignore pixels: all-zero one-hot
    uncertainty = torch.rand(batch, 3, *size, generator=gen)
    return image, synthesis, one_hot(labels, num_classes), uncertainty


def test_paper_configuration_has_reference_parameter_count() -> None:
    assert count_parameters(dissimilarity_network(warn_if_random=False)) == 18_780_162


def test_ablation_without_uncertainty_and_spade_has_reference_parameter_count() -> None:
    net = dissimilarity_network(use_uncertainty=False, spade_decoder=False, warn_if_random=False)
    assert count_parameters(net) == 13_798_530


@pytest.mark.parametrize('size', [(32, 64), (24, 40), (64, 32)])
def test_logits_have_two_channels_at_input_size(size: tuple[int, int]) -> None:
    net = dissimilarity_network(7, width=0.125, warn_if_random=False).eval()
    with torch.no_grad():
        logits = net(*_inputs(7, size, batch=2))
    assert logits.shape == (2, 2, *size)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize('flags', [dict(use_uncertainty=False), dict(spade_decoder=False),
                                   dict(use_correlation=False)])
def test_ablation_flags_run(flags: dict[str, bool]) -> None:
    net = dissimilarity_network(5, width=0.125, warn_if_random=False, **flags).eval()
    image, synthesis, semantic, uncertainty = _inputs(5, (16, 32))
    with torch.no_grad():
        logits = net(image, synthesis, semantic, uncertainty if net.use_uncertainty else None)
    assert logits.shape == (1, 2, 16, 32)


def test_missing_uncertainty_is_refused_when_the_encoder_exists() -> None:
    net = dissimilarity_network(5, width=0.125, warn_if_random=False)
    image, synthesis, semantic, _ = _inputs(5, (16, 16))
    with pytest.raises(ValueError, match='uncertainty'):
        net(image, synthesis, semantic, None)


def test_sizes_not_divisible_by_8_are_refused() -> None:
    net = dissimilarity_network(5, width=0.125, warn_if_random=False)
    with pytest.raises(ValueError, match='divisible by 8'):
        net(*_inputs(5, (20, 16)))


def test_squeezenet_encoder_feeds_the_same_fusion_and_decoder() -> None:
    net = dissimilarity_network(7, width=0.25, encoder='squeezenet', warn_if_random=False).eval()
    assert net.encoder.out_channels == (16, 64, 128, 256)  # the stem follows the width (VGG conv1_2: 64 x 0.25)
    assert net.fusion[3].in_channels == 2 * 256 + 64
    with torch.no_grad():
        logits = net(*_inputs(7, (24, 40), batch=2))
    assert logits.shape == (2, 2, 24, 40) and torch.isfinite(logits).all()


def test_unknown_encoder_is_refused() -> None:
    with pytest.raises(ValueError, match=r"encoder must be one of \['vgg16', 'squeezenet'\]"):
        dissimilarity_network(5, encoder='resnet')


def test_squeezenet_encoder_network_exports_to_onnx_with_parity() -> None:
    onnx = pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')
    torch.manual_seed(0)
    net = dissimilarity_network(5, width=0.125, encoder='squeezenet', warn_if_random=False).eval()
    inputs = _inputs(5, (32, 64))
    with torch.no_grad():
        expected = net(*inputs).numpy()
    buffer = io.BytesIO()
    names = ['image', 'synthesis', 'semantic', 'uncertainty']
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(net, inputs, buffer, opset_version=17, dynamo=False, input_names=names,
                          output_names=['logits'])
    onnx.checker.check_model(onnx.load_from_string(buffer.getvalue()))
    session = ort.InferenceSession(buffer.getvalue(), providers=['CPUExecutionProvider'])
    (logits,) = session.run(None, {name: t.numpy() for name, t in zip(names, inputs)})
    assert np.abs(logits - expected).max() < 1e-4 * max(1.0, float(np.abs(expected).max()))


def test_width_scales_every_layer() -> None:
    full = count_parameters(dissimilarity_network(19, width=1.0, warn_if_random=False))
    half = count_parameters(dissimilarity_network(19, width=0.5, warn_if_random=False))
    assert 0.2 * full < half < 0.3 * full


@pytest.mark.numerics
def test_batch_of_one_and_of_n_agree_and_are_deterministic() -> None:
    net = dissimilarity_network(6, width=0.125, warn_if_random=False).eval()
    inputs = _inputs(6, (16, 32), batch=3)
    with torch.no_grad():
        batch = net(*inputs)
        again = net(*inputs)
        single = torch.cat([net(*(t[i:i + 1] for t in inputs)) for i in range(3)])
    assert torch.equal(batch, again)
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=1e-5)
