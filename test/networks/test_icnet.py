"""ICNet: shapes at several sizes, auxiliary outputs, pyramid pooling, size checks."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from anomaly_seg_ros.networks import ICNet, icnet_light, icnet_resnet50
from anomaly_seg_ros.networks.icnet import PyramidPoolingSum


def _tiny_icnet(num_classes: int = 5) -> ICNet:
    return ICNet(num_classes, 'basic', (1, 1, 1, 1), (8, 8, 16, 16), (8, 8, 8), (8, 8, 8), head_channels=16,
                 cff_channels=16).eval()


@pytest.mark.parametrize('size', [(32, 32), (64, 128), (96, 64), (160, 96)])
def test_icnet_returns_logits_at_input_size(size: tuple[int, int]) -> None:
    net = _tiny_icnet(7)
    with torch.no_grad():
        out = net(torch.rand(2, 3, *size))
    assert out.shape == (2, 7, *size)
    assert torch.isfinite(out).all()


def test_icnet_forward_with_aux_gives_cascade_label_guidance_outputs() -> None:
    net = _tiny_icnet(4)
    x = torch.rand(1, 3, 64, 128)
    with torch.no_grad():
        main, aux_sub24, aux_sub4 = net.forward_with_aux(x)
        plain = net(x)
    assert main.shape == (1, 4, 64, 128)
    assert aux_sub24.shape == (1, 4, 8, 16)
    assert aux_sub4.shape == (1, 4, 4, 8)
    torch.testing.assert_close(main, plain)


def test_icnet_rejects_sizes_not_divisible_by_32() -> None:
    with pytest.raises(ValueError, match='divisible by 32'):
        _tiny_icnet()(torch.rand(1, 3, 48, 64))


def test_pyramid_pooling_equals_adaptive_pooling_where_bins_divide() -> None:
    x = torch.rand(2, 3, 12, 18)
    expected = x.clone()
    for b in (1, 2, 3, 6):
        expected += F.interpolate(F.adaptive_avg_pool2d(x, b), size=(12, 18), mode='bilinear', align_corners=False)
    torch.testing.assert_close(PyramidPoolingSum((1, 2, 3, 6))(x), expected)


def test_pyramid_pooling_handles_features_smaller_than_bins() -> None:
    out = PyramidPoolingSum((1, 2, 3, 6))(torch.rand(1, 2, 2, 4))
    assert out.shape == (1, 2, 2, 4)


def test_icnet_builders_are_configurable_by_class_count() -> None:
    assert icnet_light(10).classifier.out_channels == 10
    assert icnet_resnet50(19).classifier.out_channels == 19
    light, paper = icnet_light(10), icnet_resnet50(10)
    assert sum(p.numel() for p in light.parameters()) < sum(p.numel() for p in paper.parameters())
