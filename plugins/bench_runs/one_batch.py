"""What the one-mini-batch measurements (the gdu, bias and relaxation run kinds) share: the model and
the first mini-batch of the run, the state after the first phase with its residual, and the warnings
when a comparison cannot be exact."""

from __future__ import annotations

import torch

from harness.api.model import ConvergentRNN
from harness.run.context import RunContext

from .settle import free_phase

#: A first phase whose residual is this share of the effective nudge βε or more has not settled.
UNSETTLED = 0.1
#: Relative gap between step and ∂Φ/∂s beyond which a claim of derives_from_phi is false, per dtype.
GAP_TOL = {torch.float64: 1e-8, torch.float32: 1e-4}


@torch.no_grad()
def steady_state(model, x: torch.Tensor, steps: int) -> tuple[tuple[torch.Tensor, ...], float]:
    """The state after ``steps`` free steps and ``max |F(s) − s|`` there: Theorem 1 assumes the state
    has settled by step T − K; a residual that is not small explains a poor match."""
    state, moved = free_phase(model, x, steps)
    return state, float(moved.max())


def check_assumptions(ctx: RunContext, model: ConvergentRNN, x: torch.Tensor, state, residual: float,
                      beta: float | None, T: int, K: int) -> None:
    """Warn (ctx.warn) when the comparison cannot be exact: a first phase not settled relative to
    the nudge, or a model that claims F = ∂Φ/∂s while its step is not."""
    nudge = abs(beta) * model.nudge_scale if beta else None
    if nudge and residual >= UNSETTLED * nudge:
        ctx.warn(f"the first phase has not settled: max|F(s) − s| = {residual:.2g} after T − K = {T - K} steps, "
                 f"{residual / nudge:.2g} of the nudge β·scale = {nudge:.2g}; ΔEP then carries the drift of "
                 "the free dynamics (raise T)")
    if model.derives_from_phi:
        gap = model.step_gradient_gap(x, state)
        if gap > GAP_TOL.get(state[0].dtype, 1e-4):
            ctx.warn(f"the model claims derives_from_phi = True, but its step differs from ∂Φ/∂s by {gap:.2g} "
                     "(relative) at the steady state: the GDU theorem then holds only approximately (fix Φ or "
                     "the step, or set derives_from_phi = False)")


def first_batch(ctx: RunContext, batch_size: int):
    """The model (built first after seeding, on the run's device and dtype) and the first
    ``batch_size`` training samples with one-hot targets: the one mini-batch of an analysis."""
    torch.manual_seed(ctx.seed)
    model = ctx.build("model").to(ctx.device, ctx.dtype)
    data = ctx.build("dataset").load(ctx.device, ctx.dtype)
    if len(data.train) < batch_size:
        raise ValueError(f"the dataset has {len(data.train)} training samples, fewer than "
                         f"batch_size = {batch_size}")
    return model, data.train.x[:batch_size], model.target(data.train.y[:batch_size])
