"""Relaxation schedules of the free phase: how a model's state is brought to its fixed point.

The paper's schedule is **synchronous**: every layer steps at once, ``s ← F(s)``, T times. A layered
energy allows an **asynchronous** one (block Gauss–Seidel): the even layers step from the current
state, then the odd layers from the state the even ones just left, as in the convolutional Hopfield
work that followed the paper (Scellier et al. 2023). Both have the same fixed points (a fixed point
of one is ``s = F(s)`` on every layer, a fixed point of the other), so EP's first phase, which needs
only the fixed point, may use either; BPTT keeps the paper's synchronous K-step dynamics.

:func:`relax` stops at a tolerance (``max |F(s) − s|``, the residual) or after a number of steps, and
says how many it took. Costs are counted in *step evaluations* (calls of the model's step on the whole
state): a synchronous step is one, an asynchronous sweep two, since the generic step computes every
layer (a model with per-layer updates could halve the sweep).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from harness.api.model import Clamped, ConvergentRNN, State

SCHEDULES = ("sync", "async")


@dataclass
class Relaxed:
    state: State
    sweeps: int  # synchronous steps, or asynchronous sweeps (even layers, then odd ones)
    evaluations: int  # calls of the model's step
    residual: float  # max |F(s) − s| at the returned state


@torch.no_grad()
def residual(model: ConvergentRNN, x: torch.Tensor | Clamped, state: State) -> float:
    """``max |F(s) − s|`` over every unit: zero exactly at a fixed point of the free dynamics."""
    new = model.step(x, state)
    return max(float((a - b).abs().max()) for a, b in zip(new, state)) if state else 0.0


def async_sweep(step: Callable[[torch.Tensor | Clamped, State], State], x: torch.Tensor | Clamped,
                state: State) -> State:
    """One asynchronous sweep with ``step`` (a step of every layer, e.g. the model's, nudged or clamped):
    the even layers from ``state``, then the odd layers from the state the even ones just left."""
    stepped = step(x, state)
    half = tuple(n if i % 2 == 0 else o for i, (n, o) in enumerate(zip(stepped, state)))
    stepped = step(x, half)
    return tuple(h if i % 2 == 0 else n for i, (n, h) in enumerate(zip(stepped, half)))


@torch.no_grad()
def relax(model: ConvergentRNN, x: torch.Tensor | Clamped, state: State, *, max_steps: int, tol: float = 0.0,
          schedule: str = "sync") -> Relaxed:
    """Relax ``state`` with ``schedule`` until a sweep moves no unit by ``tol`` or more (then the
    residual is measured), or ``max_steps`` sweeps; ``tol = 0`` runs all of them."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown relaxation schedule {schedule!r}; known: {', '.join(SCHEDULES)}")
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    s, evaluations, sweeps = tuple(state), 0, 0
    while sweeps < max_steps:
        sweeps += 1
        if schedule == "sync":
            new = model.step(x, s)
            evaluations += 1
        else:
            new = async_sweep(model.step, x, s)
            evaluations += 2
        moved = max(float((a - b).abs().max()) for a, b in zip(new, s)) if tol > 0 else None  # no sync for tol 0
        s = new
        if moved is not None and moved < tol:
            break
    return Relaxed(state=s, sweeps=sweeps, evaluations=evaluations + 1, residual=residual(model, x, s))
