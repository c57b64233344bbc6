"""A Hopfield-style energy-based net: input → hidden ⇄ output, with lateral
connections *within* the hidden layer. Not in the paper; defined through Φ.

The primitive function (per sample; σ the activation, ε the Euler step)::

    Φ(x, s, θ) = ½(1−ε)(‖s⁰‖² + ‖h‖²)
                 + ε [ σ(h)·W1x·σ(x) + σ(s⁰)·W01·σ(h) + ½ σ(h)·L·σ(h) + b1·σ(h) + b0·σ(s⁰) ]

with ``L = (A + Aᵀ) ⊙ (1 − I)``: symmetric with a zero diagonal by
construction, whatever values training gives ``A``. The dynamics are
exactly ``F = ∂Φ/∂s`` (one Euler step of the energy's gradient flow)::

    s⁰ ← (1−ε) s⁰ + ε σ'(s⁰) ⊙ (W01 σ(h) + b0)            + βε (y − s⁰)
    h  ← (1−ε) h  + ε σ'(h)  ⊙ (W1x σ(x) + W01ᵀ σ(s⁰) + L σ(h) + b1)

(``∂/∂h`` of ``½ σ(h)·L·σ(h)`` is ``σ'(h) ⊙ L σ(h)`` because L is
symmetric.) The nudge is ``−βε ∂ℓ/∂s⁰``, so ``nudge_scale = ε``. Because F
derives from Φ, the GDU theorem holds exactly: in float64, at a steady state,
ΔEP equals −∇BPTT up to O(β) — `bench check-plugin hopfield` verifies it.
Everything else (EP, BPTT, ∂Φ/∂θ by autograd, training, the GDU analysis)
comes from the harness.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from harness import Param
from harness.api.model import ConvergentRNN, State


def _sigmoid(x: Tensor) -> Tensor:  # the paper's sigmoid, spanning [0, 1] on about [0, 1]
    return torch.sigmoid(4 * (x - 0.5))


def _sigmoid_d(x: Tensor) -> Tensor:
    s = _sigmoid(x)
    return 4 * s * (1 - s)


def _tanh_d(x: Tensor) -> Tensor:
    t = torch.tanh(x)
    return 1 - t * t


ACTIVATIONS = {"tanh": (torch.tanh, _tanh_d), "sigmoid": (_sigmoid, _sigmoid_d)}


def _glorot(shape: tuple[int, int], gain: float = 1.0) -> nn.Parameter:
    fan_out, fan_in = shape
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return nn.Parameter(torch.empty(shape).uniform_(-bound, bound))  # global RNG: seeded by the run


class HopfieldNet(ConvergentRNN):
    """EB net with symmetric lateral connections within its hidden layer; F = ∂Φ/∂s exactly

    The first paragraph of this docstring is what `bench list` shows; ``params`` are the suite
    parameters, declared beside ``__init__`` (bench_hopfield/__init__.py only names the class).
    """

    params: ClassVar[tuple[Param, ...]] = (
        Param("input_size", int, 20, "input units", min=1, max=10**7),
        Param("hidden_size", int, 64, "hidden units (laterally connected)", min=1, max=10**7),
        Param("output_size", int, 10, "output units (classes)", min=1, max=10**7),
        Param("activation", str, "tanh", "σ", choices=tuple(ACTIVATIONS)),
        Param("eps", float, 0.2, "Euler step ε; the nudge is βε(y − s⁰)"),
        Param("lateral", float, 0.5, "initial lateral weights, relative to the Glorot bound"),
        Param("bias", bool, True, "biases b1 (hidden) and b0 (output), entering Φ as ε b·σ(s)"),
    )

    layer_names = ("s0", "h")
    derives_from_phi = True
    #: Small sizes for `bench check-plugin` and harness.conformance (the kit cannot guess them).
    example: ClassVar[dict | None] = {"input_size": 5, "hidden_size": 6, "output_size": 3}

    def __init__(self, input_size: int = 20, hidden_size: int = 64, output_size: int = 10,
                 activation: str = "tanh", eps: float = 0.2, lateral: float = 0.5, bias: bool = True):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"hopfield: unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}")
        if not 0 < eps <= 1:
            raise ValueError(f"hopfield: eps must be in (0, 1], got {eps}")
        self.input_size, self.hidden_size, self.output_size = int(input_size), int(hidden_size), int(output_size)
        self.sigma, self.dsigma = ACTIVATIONS[activation]
        self.eps = float(eps)
        self.nudge_scale = self.eps
        self.W1x = _glorot((self.hidden_size, self.input_size))
        self.W01 = _glorot((self.output_size, self.hidden_size))
        # L = A + Aᵀ off the diagonal: entries within ±lateral × the Glorot bound of a square layer.
        self.A = _glorot((self.hidden_size, self.hidden_size), gain=lateral / 2)
        self.register_buffer("off_diagonal", 1 - torch.eye(self.hidden_size), persistent=False)
        self.b1 = nn.Parameter(torch.zeros(self.hidden_size)) if bias else None
        self.b0 = nn.Parameter(torch.zeros(self.output_size)) if bias else None

    # -- the contract ---------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return self.output_size

    def lateral(self) -> Tensor:
        """L: symmetric, zero diagonal (a function of the trained parameter A)."""
        return (self.A + self.A.t()) * self.off_diagonal

    def init_state(self, x: Tensor) -> State:
        B = x.shape[0]
        return (x.new_zeros(B, self.output_size), x.new_zeros(B, self.hidden_size))

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Input → output: feed-forward weights into h, lateral weights within h, weights h → s⁰."""
        groups = {"W1x": [self.W1x], "Lhh": [self.A], "W01": [self.W01]}
        if self.b1 is not None:
            groups["W1x"].append(self.b1)
            groups["W01"].append(self.b0)
        return groups

    def phi(self, x: Tensor, state: State) -> Tensor:
        s0, h = state
        a0, ah, ax = self.sigma(s0), self.sigma(h), self.sigma(x.flatten(1))
        square = (s0 * s0).sum(1) + (h * h).sum(1)
        coupling = ((ah @ self.W1x) * ax).sum(1) + ((a0 @ self.W01) * ah).sum(1) \
            + 0.5 * ((ah @ self.lateral()) * ah).sum(1)
        if self.b1 is not None:
            coupling = coupling + ah @ self.b1 + a0 @ self.b0
        return 0.5 * (1 - self.eps) * square + self.eps * coupling

    def step(self, x: Tensor, state: State, y: Tensor | None = None, beta: float = 0.0) -> State:
        s0, h = state
        a0, ah, ax = self.sigma(s0), self.sigma(h), self.sigma(x.flatten(1))
        d0 = ah @ self.W01.t()
        dh = ax @ self.W1x.t() + a0 @ self.W01 + ah @ self.lateral()
        if self.b1 is not None:
            d0, dh = d0 + self.b0, dh + self.b1
        eps = self.eps
        new0 = (1 - eps) * s0 + eps * self.dsigma(s0) * d0
        newh = (1 - eps) * h + eps * self.dsigma(h) * dh
        if beta != 0.0 and y is not None:
            new0 = new0 + (beta * eps) * (y - s0)
        return new0, newh
