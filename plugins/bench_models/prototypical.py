"""Prototypical (P) layered nets: ``s^n_{t+1} = σ(W s^{n+1} + Wᵀ s^{n−1} + b)``, dt = 1.

``Φ = Σ s^lower·W·s^upper + Σ b·s`` gives ``F ≈ ∂Φ/∂s`` only when ``σ`` is
ignored, so ``derives_from_phi`` is False and the GDU theorem holds only
approximately (SPEC.md, Appendix C.4). The nudge adds ``β (y − s^0)``.
"""

from __future__ import annotations

from torch import Tensor

from harness.model import State

from .dense import DenseRNN, layered_edges


class PNet(DenseRNN):
    derives_from_phi = False
    nudge_scale = 1.0

    def __init__(self, hidden: list[int] = (512,), input_size: int = 784, output_size: int = 10,
                 activation: str = "tanh", bias: bool = True, init: str = "glorot"):
        sizes = [int(output_size)] + [int(h) for h in reversed(list(hidden))]
        super().__init__(sizes, input_size, layered_edges(len(sizes)), activation, bias, init)

    def step(self, x: Tensor, state: State, y: Tensor | None = None, beta: float = 0.0) -> State:
        new = [self.act(d) for d in self.drives(state, x.flatten(1))]
        if beta != 0.0 and y is not None:
            new[0] = new[0] + beta * (y - state[0])
        return tuple(new)

    def phi(self, x: Tensor, state: State) -> Tensor:
        return self.coupling(state, x.flatten(1))

    def dphi_dtheta(self, x: Tensor, state: State) -> dict[str, list[Tensor]]:
        """Explicit ``s^lower ᵀ s^upper`` (and ``Σ s^n`` for biases)."""
        return self.coupling_grads([s.detach() for s in state], x.flatten(1), 1.0)
