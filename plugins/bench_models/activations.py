"""The paper's activation functions, each with its derivative.

The energy-based dynamics need ``σ'`` explicitly (``F = ∂Φ/∂s`` contains it),
so each activation carries both. Derivatives are written as torch
expressions, so BPTT differentiates through them (``σ''`` enters the exact
Jacobian of ``F``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Activation:
    """``f`` and its derivative ``df``; ``f(x) = core(scale·x + shift)`` lets a fast path fold the
    affine part into a matmul's ``alpha`` and a cached per-batch term (``core_`` works in place)."""

    name: str
    f: Callable[[Tensor], Tensor]
    df: Callable[[Tensor], Tensor]
    core: Callable[[Tensor], Tensor] = torch.tanh
    core_: Callable[[Tensor], Tensor] = torch.tanh_
    scale: float = 1.0
    shift: float = 0.0

    def __call__(self, x: Tensor) -> Tensor:
        return self.f(x)


def _tanh_d(x: Tensor) -> Tensor:
    t = torch.tanh(x)
    return 1 - t * t


def _sigmoid(x: Tensor) -> Tensor:
    # The paper's "sigmoid": shifted and rescaled so that it spans [0, 1] on about [0, 1].
    return torch.sigmoid(4 * (x - 0.5))


def _sigmoid_d(x: Tensor) -> Tensor:
    s = _sigmoid(x)
    return 4 * s * (1 - s)


def _hard_sigmoid(x: Tensor) -> Tensor:
    return x.clamp(0, 1)


def _hard_sigmoid_d(x: Tensor) -> Tensor:
    # 1 inside (0, 1), 0 outside; its own derivative is 0 almost everywhere.
    return ((x > 0) & (x < 1)).to(x.dtype)


def _half_hard_sigmoid(x: Tensor) -> Tensor:
    # Laborieux et al. 2021's CIFAR-10 activation, (1 + hardtanh(x − 1)) / 2: slope ½ on (0, 2).
    return (0.5 * x).clamp(0, 1)


def _half_hard_sigmoid_d(x: Tensor) -> Tensor:
    return 0.5 * ((x > 0) & (x < 2)).to(x.dtype)


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", torch.tanh, _tanh_d, torch.tanh, torch.tanh_),
    "sigmoid": Activation("sigmoid", _sigmoid, _sigmoid_d, torch.sigmoid, torch.sigmoid_, 4.0, -2.0),
    "hard_sigmoid": Activation("hard_sigmoid", _hard_sigmoid, _hard_sigmoid_d, lambda x: x.clamp(0, 1),
                               lambda x: x.clamp_(0, 1)),
    "half_hard_sigmoid": Activation("half_hard_sigmoid", _half_hard_sigmoid, _half_hard_sigmoid_d,
                                    lambda x: x.clamp(0, 1), lambda x: x.clamp_(0, 1), 0.5),
}


def get_activation(name: str) -> Activation:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}") from None
