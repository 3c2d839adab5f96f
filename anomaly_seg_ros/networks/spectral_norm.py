"""Spectral normalization (Miyato et al. 2018) as an exportable weight parametrization.

``torch.nn.utils.parametrizations.spectral_norm`` computes sigma with ``torch.vdot``, which the
TorchScript ONNX exporter rejects. This parametrization keeps the same state-dict layout
(``parametrizations.weight.original``, ``parametrizations.weight.0._u``, ``..._v``) and the same
behaviour (one power iteration per training forward, none in eval mode), but computes sigma with
``MatMul``/``Mul``/``ReduceSum``, so an eval-mode module exports as is (ONNX Runtime and TensorRT
fold the constant sub-graph). :func:`fold_spectral_norm` bakes sigma into plain weights for inference.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

__all__ = ['fold_spectral_norm', 'has_spectral_norm', 'spectral_norm']


class _SpectralNorm(nn.Module):
    """weight -> weight / sigma_max(weight viewed as (out, -1)), sigma by power iteration."""

    def __init__(self, weight: Tensor, n_power_iterations: int = 1, eps: float = 1e-12) -> None:
        super().__init__()
        self.rows = int(weight.shape[0])
        self.n_power_iterations = n_power_iterations
        self.eps = eps
        mat = weight.detach().reshape(self.rows, -1)
        u = F.normalize(mat.new_empty(mat.shape[0]).normal_(0, 1), dim=0, eps=eps)
        v = F.normalize(mat.new_empty(mat.shape[1]).normal_(0, 1), dim=0, eps=eps)
        self.register_buffer('_u', u)
        self.register_buffer('_v', v)
        self._power_method(mat, 15)

    @torch.no_grad()
    def _power_method(self, mat: Tensor, iterations: int) -> None:
        for _ in range(iterations):
            self._u.copy_(F.normalize(mat @ self._v, dim=0, eps=self.eps))
            self._v.copy_(F.normalize(mat.t() @ self._u, dim=0, eps=self.eps))

    def forward(self, weight: Tensor) -> Tensor:
        mat = weight.reshape(self.rows, -1)
        u, v = self._u, self._v
        if self.training:
            self._power_method(mat.detach(), self.n_power_iterations)
            # Clones: the buffers change in place at the next forward, before this graph's backward.
            u, v = self._u.clone(), self._v.clone()
        sigma = (u * (mat @ v)).sum()
        return weight / sigma


def spectral_norm(module: nn.Module, name: str = 'weight') -> nn.Module:
    """Register exportable spectral normalization on ``module.<name>``; returns the module."""
    parametrize.register_parametrization(module, name, _SpectralNorm(getattr(module, name)))
    return module


def has_spectral_norm(module: nn.Module) -> bool:
    """Whether any submodule of ``module`` carries a spectral-norm parametrization."""
    return any(isinstance(m, _SpectralNorm) for m in module.modules())


@torch.no_grad()
def fold_spectral_norm(module: nn.Module) -> nn.Module:
    """Replace every spectral-norm parametrization by the plain normalized weight (in place).

    Uses the stored power-iteration vectors (eval-mode behaviour), so outputs do not change. For
    inference and export only: training must keep the parametrization. Returns ``module``.
    """
    for sub in list(module.modules()):
        if not parametrize.is_parametrized(sub):
            continue
        for name, plist in list(sub.parametrizations.items()):
            if any(isinstance(p, _SpectralNorm) for p in plist):
                plist.eval()  # no power iteration while computing the folded weight
                parametrize.remove_parametrizations(sub, name, leave_parametrized=True)
    return module
