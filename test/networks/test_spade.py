"""SPADE generator, multi-scale discriminator and the exportable spectral norm."""
from __future__ import annotations

import pytest
import torch

from anomaly_seg_ros.networks import (
    fold_spectral_norm,
    has_spectral_norm,
    multiscale_discriminator,
    one_hot,
    spade_generator,
    spectral_norm,
)


def _seg(num_classes: int, size: tuple[int, int], batch: int = 1) -> torch.Tensor:
    return one_hot(torch.randint(0, num_classes, (batch, *size), generator=torch.Generator().manual_seed(0)),
                   num_classes)


@pytest.mark.parametrize(('mode', 'size'), [('normal', (32, 64)), ('more', (64, 64)), ('most', (128, 128))])
def test_generator_output_is_rgb_in_tanh_range(mode: str, size: tuple[int, int]) -> None:
    gen = spade_generator(6, size, ngf=4, num_upsampling_layers=mode, spade_hidden=8).eval()
    with torch.no_grad():
        out = gen(_seg(6, size, batch=2))
    assert out.shape == (2, 3, *size)
    assert out.min() >= -1 and out.max() <= 1


def test_generator_rejects_output_size_not_divisible_by_its_upsampling() -> None:
    with pytest.raises(ValueError, match='divisible by 32'):
        spade_generator(6, (48, 64), ngf=4)


def test_generator_rejects_a_map_of_another_size() -> None:
    gen = spade_generator(6, (32, 32), ngf=4, spade_hidden=8).eval()
    with pytest.raises(ValueError, match='built for'):
        gen(_seg(6, (64, 64)))


@pytest.mark.numerics
def test_generator_is_deterministic_and_batch_independent_in_eval() -> None:
    gen = spade_generator(5, (32, 64), ngf=4, spade_hidden=8).eval()
    seg = _seg(5, (32, 64), batch=3)
    with torch.no_grad():
        batch = gen(seg)
        again = gen(seg)
        single = torch.cat([gen(seg[i:i + 1]) for i in range(3)])
    assert torch.equal(batch, again)
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=1e-5)


def test_discriminator_returns_features_per_scale_with_prediction_last() -> None:
    disc = multiscale_discriminator(5, ndf=8, n_layers=4, num_d=2)
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    outputs = disc(torch.cat([_seg(5, (64, 64), batch=2), image], dim=1))
    assert len(outputs) == 2
    assert all(len(features) == 5 for features in outputs)
    assert outputs[0][-1].shape[:2] == (2, 1)
    assert outputs[1][-1].shape[-1] < outputs[0][-1].shape[-1]
    outputs[0][-1].mean().backward()  # trains


def test_spectral_norm_matches_torch_in_eval() -> None:
    ours = spectral_norm(torch.nn.Conv2d(3, 4, 3))
    ref = torch.nn.utils.parametrizations.spectral_norm(torch.nn.Conv2d(3, 4, 3))
    ref.load_state_dict(ours.state_dict())
    ours.eval()
    ref.eval()
    torch.testing.assert_close(ours.weight, ref.weight)


def test_spectral_norm_survives_two_forwards_before_backward() -> None:
    conv = spectral_norm(torch.nn.Conv2d(3, 4, 3)).train()
    x = torch.rand(1, 3, 8, 8)
    loss = conv(x).sum() + conv(x).sum()
    loss.backward()
    assert conv.parametrizations.weight.original.grad is not None


def test_fold_spectral_norm_keeps_outputs() -> None:
    gen = spade_generator(5, (32, 32), ngf=4, spade_hidden=8).eval()
    seg = _seg(5, (32, 32))
    with torch.no_grad():
        before = gen(seg)
        assert has_spectral_norm(gen)
        fold_spectral_norm(gen)
        after = gen(seg)
    assert not has_spectral_norm(gen)
    torch.testing.assert_close(before, after)
