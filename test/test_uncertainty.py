"""Equations 1-3 and the ensemble against hand-computed values."""
from __future__ import annotations

import math

import pytest
import torch

from anomaly_seg_ros.uncertainty import (
    calibrate_perceptual_scale,
    ensemble,
    normalize_perceptual_difference,
    perceptual_difference,
    softmax_distance,
    softmax_entropy,
    softmax_maps,
)


def _logits_from_probs(*probs: float) -> torch.Tensor:
    """(1, C, 1, 1) logits whose softmax is ``probs``."""
    return torch.tensor(probs, dtype=torch.float64).log().float().view(1, -1, 1, 1)


def test_entropy_of_a_uniform_softmax_is_one() -> None:
    logits = torch.zeros(2, 19, 4, 5)
    entropy = softmax_entropy(logits)
    assert entropy.shape == (2, 1, 4, 5)
    torch.testing.assert_close(entropy, torch.ones_like(entropy))


def test_entropy_of_a_one_hot_softmax_is_zero() -> None:
    logits = torch.zeros(1, 10, 3, 3)
    logits[:, 4] = 60.0
    assert softmax_entropy(logits).abs().max() < 1e-6


def test_entropy_matches_hand_computed_value() -> None:
    p = (0.7, 0.2, 0.1)
    expected = -sum(v * math.log(v) for v in p) / math.log(3)
    assert softmax_entropy(_logits_from_probs(*p)).item() == pytest.approx(expected, abs=1e-6)


def test_softmax_distance_edge_cases() -> None:
    one_hot = torch.zeros(1, 5, 2, 2)
    one_hot[:, 1] = 60.0
    assert softmax_distance(one_hot).abs().max() < 1e-6
    tie = torch.tensor([0.0, 0.0, -60.0]).view(1, 3, 1, 1)
    assert softmax_distance(tie).item() == pytest.approx(1.0, abs=1e-6)
    assert softmax_distance(_logits_from_probs(0.6, 0.3, 0.1)).item() == pytest.approx(1 - 0.6 + 0.3, abs=1e-6)


def test_uncertainty_maps_stay_in_unit_range() -> None:
    logits = torch.randn(3, 8, 6, 7) * 5
    for fn in (softmax_entropy, softmax_distance):
        out = fn(logits)
        assert out.shape == (3, 1, 6, 7)
        assert out.min() >= 0 and out.max() <= 1


def test_softmax_maps_equal_argmax_entropy_and_distance_computed_apart() -> None:
    logits = torch.randn(2, 19, 6, 7) * 4
    logits[0, :, 0, 0] = torch.tensor([3.0, 3.0] + [-5.0] * 17)  # a tie: distance 1, argmax the first class
    index, entropy, distance = softmax_maps(logits)
    assert torch.equal(index, logits.max(dim=1).indices)
    torch.testing.assert_close(entropy, softmax_entropy(logits), atol=1e-6, rtol=0)
    torch.testing.assert_close(distance, softmax_distance(logits), atol=1e-6, rtol=0)
    assert distance[0, 0, 0, 0].item() == pytest.approx(1.0, abs=1e-6) and index[0, 0, 0].item() == 0
    single = softmax_maps(torch.randn(1, 1, 3, 3))
    assert single[1].abs().max() == 0 and single[2].abs().max() == 0


def test_perceptual_difference_is_zero_for_identical_features() -> None:
    features = [torch.rand(2, 4, 16 // 2 ** i, 32 // 2 ** i) for i in range(5)]
    out = perceptual_difference(features, [f.clone() for f in features], (16, 32))
    assert out.shape == (2, 1, 16, 32)
    assert torch.equal(out, torch.zeros_like(out))


def test_perceptual_difference_weights_layers_shallow_to_deep() -> None:
    # Layer i differs by (i + 1) in every channel; all at output size, so no upsampling.
    fx = [torch.zeros(1, 3, 4, 4) for _ in range(5)]
    fr = [torch.full((1, 3, 4, 4), float(i + 1)) for i in range(5)]
    expected = 1 / 32 * 1 + 1 / 16 * 2 + 1 / 8 * 3 + 1 / 4 * 4 + 1 * 5
    out = perceptual_difference(fx, fr, (4, 4))
    torch.testing.assert_close(out, torch.full((1, 1, 4, 4), expected))


def test_perceptual_difference_is_positive_only_where_features_differ() -> None:
    fx = [torch.zeros(1, 2, 8, 8)]
    fr = [torch.zeros(1, 2, 8, 8)]
    fr[0][..., :4, :] = 1.0
    out = perceptual_difference(fx, fr, (8, 8), layer_weights=(1.0,))
    assert (out[..., :3, :] > 0).all()
    assert (out[..., 5:, :] == 0).all()


def test_calibrated_normalization_scales_and_clips() -> None:
    raw = torch.tensor([0.0, 0.5, 1.0, 4.0]).view(1, 1, 2, 2)
    out = normalize_perceptual_difference(raw, 'calibrated', scale=0.5)
    torch.testing.assert_close(out.flatten(), torch.tensor([0.0, 0.25, 0.5, 1.0]))


def test_minmax_normalization_is_per_image() -> None:
    raw = torch.stack([torch.linspace(1, 3, 4), torch.linspace(10, 50, 4)]).view(2, 1, 2, 2)
    out = normalize_perceptual_difference(raw, 'minmax')
    torch.testing.assert_close(out.amin(dim=(2, 3)).flatten(), torch.zeros(2))
    torch.testing.assert_close(out.amax(dim=(2, 3)).flatten(), torch.ones(2))
    flat = normalize_perceptual_difference(torch.full((1, 1, 2, 2), 3.0), 'minmax')
    assert torch.equal(flat, torch.zeros_like(flat))
    with pytest.raises(ValueError, match='unknown perceptual normalization'):
        normalize_perceptual_difference(raw, 'zscore')


def test_calibrated_scale_maps_the_quantile_to_one() -> None:
    raw = torch.linspace(0, 2, 1001)
    assert calibrate_perceptual_scale(raw, quantile=0.5) == pytest.approx(1.0, rel=1e-5)


def _maps() -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    return [torch.rand(2, 1, 5, 6, generator=gen) for _ in range(4)]


def test_ensemble_with_one_weight_returns_that_map_exactly() -> None:
    maps = _maps()
    for i in range(4):
        weights = torch.zeros(4)
        weights[i] = 1.0
        assert torch.equal(ensemble(*maps, weights), maps[i])


def test_ensemble_is_invariant_to_scaling_the_weights() -> None:
    maps = _maps()
    base = ensemble(*maps, torch.tensor([3.0, 1.0, 2.0, 0.5]))
    torch.testing.assert_close(ensemble(*maps, torch.tensor([6.0, 2.0, 4.0, 1.0])), base)
    torch.testing.assert_close(ensemble(*maps, [0.3, 0.1, 0.2, 0.05]), base)


def test_ensemble_of_equal_weights_is_the_mean() -> None:
    maps = _maps()
    torch.testing.assert_close(ensemble(*maps, (1.0, 1.0, 1.0, 1.0)), torch.stack(maps).mean(dim=0))
