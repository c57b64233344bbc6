"""Energy-based (EB) models: ``F`` is exactly ``∂Φ/∂s`` (SPEC.md, Appendix C.2–C.3).

``Φ = ½(1−ε) Σ‖s^n‖² + ε Σ_edges σ(s^lower)·W·σ(s^upper) + ε Σ b_n·σ(s^n)``,
so ``s^n_{t+1} = (1−ε) s^n + ε σ'(s^n) ⊙ (Σ W σ(·) + b_n)``, including on the
output layer (the authors' code omits ``σ'(s^0)``; the paper has it). The
nudge adds ``β ε (y − s^0)``, hence ``nudge_scale = ε``. With ``clip`` the
state is clipped to [0, 1] after every step, as in the paper's training;
then ``F`` no longer derives from ``Φ`` and ``derives_from_phi`` is False.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from harness.model import State

from .dense import INPUT, DenseRNN, layered_edges


class EnergyBased(DenseRNN):
    def __init__(self, sizes: Sequence[int], input_size: int, edges, *, activation: str, eps: float,
                 clip: bool, bias: bool, init: str, bias_groups=None):
        super().__init__(sizes, input_size, edges, activation, bias, init, bias_groups)
        self.eps = float(eps)
        self.clip = bool(clip)
        self.nudge_scale = self.eps
        self.derives_from_phi = not self.clip

    def step(self, x: Tensor, state: State, y: Tensor | None = None, beta: float = 0.0) -> State:
        ax = self.act(x.flatten(1))
        a = [self.act(s) for s in state]
        drives = self.drives(a, ax)
        eps = self.eps
        new = [(1 - eps) * s + eps * self.act.df(s) * d for s, d in zip(state, drives)]
        if beta != 0.0 and y is not None:
            new[0] = new[0] + (beta * eps) * (y - state[0])
        if self.clip:
            new = [s.clamp(0, 1) for s in new]
        return tuple(new)

    def phi(self, x: Tensor, state: State) -> Tensor:
        ax = self.act(x.flatten(1))
        a = [self.act(s) for s in state]
        sq = sum((s * s).sum(1) for s in state)
        return 0.5 * (1 - self.eps) * sq + self.eps * self.coupling(a, ax)

    def dphi_dtheta(self, x: Tensor, state: State) -> dict[str, list[Tensor]]:
        """Explicit ``ε σ(s^lower)ᵀ σ(s^upper)`` (and ``ε Σ σ(s^n)`` for biases)."""
        ax = self.act(x.flatten(1))
        a = [self.act(s.detach()) for s in state]
        return self.coupling_grads(a, ax, self.eps)


class EBNet(EnergyBased):
    """Layered EB net ``input – hidden… – output``; ``hidden`` listed input → output."""

    def __init__(self, hidden: list[int] = (512,), input_size: int = 784, output_size: int = 10,
                 activation: str = "tanh", eps: float = 0.08, clip: bool = False, bias: bool = True,
                 init: str = "glorot"):
        sizes = [int(output_size)] + [int(h) for h in reversed(list(hidden))]
        super().__init__(sizes, input_size, layered_edges(len(sizes)), activation=activation, eps=eps,
                         clip=clip, bias=bias, init=init)


class ToyModel(EnergyBased):
    """Appendix C.2: input, hidden and output all connected, no lateral connections."""

    def __init__(self, input_size: int = 10, hidden_size: int = 50, output_size: int = 5,
                 activation: str = "tanh", eps: float = 0.08, bias: bool = False, init: str = "glorot"):
        edges = [("W1x", 1, INPUT), ("W0x", 0, INPUT), ("W01", 0, 1)]
        super().__init__([int(output_size), int(hidden_size)], input_size, edges, activation=activation,
                         eps=eps, clip=False, bias=bias, init=init, bias_groups={1: "W1x", 0: "W01"})
