"""Has a free phase settled? EP's update, and Theorem 1's match of EP with BPTT, are derived at a fixed
point of the dynamics; a net can instead still be moving after ``T`` steps, or end in a 2-cycle (a P
net's synchronous step, whose two chains of layers settle apart). Written against the model contract."""

from __future__ import annotations

import torch

from harness.api.model import Clamped, ConvergentRNN, State

#: A free phase has settled on a sample when one more step moves no unit by this much or more.
SETTLE_TOL = 1e-3


@torch.no_grad()
def free_phase(model: ConvergentRNN, x: torch.Tensor | Clamped, steps: int) -> tuple[State, torch.Tensor]:
    """The state after ``steps`` free steps from zero (every layer updated), and per sample (shape
    ``(S, batch)`` with stacked members) ``max |F(s) − s|`` over every unit: 0 at a fixed point."""
    # x may be prepare()'s Clamped, which init_state is not declared to take (the built-in models' do: raw)
    state = model.relax(x, model.init_state(x), steps)  # type: ignore[arg-type]  # a Clamped x: see above
    return state, largest_change(model, model.step(x, state), state)


def largest_change(model: ConvergentRNN, a: State, b: State) -> torch.Tensor:
    """Per sample (``(S, batch)`` with stacked members), ``max |a − b|`` over every unit of every layer."""
    d = model.batch_dim()
    return torch.stack([(u - v).abs().flatten(d + 1).amax(-1) for u, v in zip(a, b)]).amax(0)


def unsettled_share(model: ConvergentRNN, x: torch.Tensor, T: int) -> list[float]:
    """Per member (one value without members), the % of the samples ``x`` whose free phase of ``T``
    steps has not settled: one more step moves some unit by :data:`SETTLE_TOL` or more."""
    _, moved = free_phase(model, model.prepare(x), T)
    return (100.0 * (moved >= SETTLE_TOL).double().mean(-1)).reshape(-1).tolist()
