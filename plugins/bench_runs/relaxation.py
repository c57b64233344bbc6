"""Run kind ``relaxation``: the free phase relaxed synchronously and asynchronously
(:mod:`harness.api.relaxation`) on one mini-batch, from the model's initial state to a tolerance.

Per schedule (the ``schedule`` column, ``sync`` or ``async``):

* ``sweeps``: synchronous steps, or asynchronous sweeps (even layers, then odd ones), until a sweep
  moves no unit by ``tol`` (at most ``max_sweeps``);
* ``step_evaluations``: calls of the model's whole-state step (a synchronous step is one, an
  asynchronous sweep two, plus one for the residual);
* ``residual``: ``max |F(s) − s|`` at the state reached;
* ``settled``: 1 when that residual is below ``SETTLED · tol``, else 0;
* ``seconds``: the median of ``repeats`` repetitions, the two schedules interleaved in each.

Comparing the two, recorded on the ``async`` row (async against sync, as results/relaxation/TABLE.md
prints them): ``time_ratio`` (async seconds / sync seconds), ``state_difference`` (the largest, over
layers, of ``max |s_async − s_sync| / max |s_sync|``) and, when both settled, ``update_difference``: the
algorithm slot's update from each fixed point, compared tensor by tensor as ``max |u_async − u_sync| /
max |u_sync|``, the largest over every weight and bias. The update from a fixed point is read through
the algorithm contract: ``processes(model, x, y, T=K, K=K)`` with the model's initial state set to that
fixed point, summed over its K steps (the update it would apply in training, as the ``bias`` kind's
``grad_error``). Every built-in algorithm starts its first phase at ``model.init_state(x)``; its T = K
free steps from a settled state move it by about the residual, and EP's K nudged steps follow.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

import torch

from harness.api.algorithm import Processes
from harness.api.components import Param, Slot
from harness.api.model import ConvergentRNN, State
from harness.api.records import Records
from harness.api.relaxation import SCHEDULES, Relaxed, relax
from harness.api.run_kind import RunKind
from harness.api.steps import MAX_STEPS, batch_size
from harness.api.steps import K as K_PARAM
from harness.run.context import RunContext
from harness.run.environment import torch_threads

from .one_batch import first_batch

#: A schedule has settled when its residual max |F(s) − s| is below this many times ``tol``: the stop
#: rule bounds the last sweep's move, not the residual measured after it (results/relaxation/measure.py).
SETTLED = 10.0


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max |b − a| / max |a|`` (``a`` the reference), in float64; 0 when both are zero."""
    a, b = a.double(), b.double()
    scale = float(a.abs().max()) if a.numel() else 0.0
    return float((b - a).abs().max()) / max(scale, 1e-30) if a.numel() else 0.0


@contextmanager
def starting_at(model: ConvergentRNN, state: State) -> Iterator[ConvergentRNN]:
    """``model`` whose ``init_state`` returns ``state`` (an instance attribute over the class's method),
    restored on exit: an algorithm's phases then start at that state."""
    vars(model)["init_state"] = lambda x: tuple(s.clone() for s in state)
    try:
        yield model
    finally:
        del vars(model)["init_state"]


def update_from(algorithm, model: ConvergentRNN, x: torch.Tensor, y: torch.Tensor, state: State,
                K: int) -> dict[str, torch.Tensor]:
    """The update the algorithm would apply from ``state``: its processes (the contract) with T = K
    starting there, summed over the K steps, per weight tensor of Φ (a readout in the loss has no process)."""
    with starting_at(model, state):
        processes: Processes = algorithm.processes(model, x, y, T=K, K=K)
    return {key: w.sum(0) for key, w in processes.weights.items()}


class Relaxation(RunKind):
    """Synchronous against asynchronous relaxation of the free phase on one mini-batch: sweeps, step
    evaluations, residual and seconds to a tolerance per schedule, and how far apart the two fixed points
    and the algorithm's updates from them are"""

    params: ClassVar[tuple[Param, ...]] = (
        Param("tol", float, 1e-8, min=0, doc="stop when a sweep moves no unit by tol (> 0); a schedule "
              "has settled when its residual is below 10·tol"),
        Param("max_sweeps", int, 20000, min=1, max=MAX_STEPS, doc="at most this many sweeps per schedule"),
        Param("repeats", int, 3, min=1, max=10**6,
              doc="timed repetitions, both schedules interleaved in each; seconds is their median"),
        dataclasses.replace(K_PARAM, default=20, doc="the algorithm's second-phase / truncation steps from "
                            "each fixed point (its update)"),
        batch_size("the first batch_size training samples"),
        Param("threads", int, 0, min=0, max=4096,
              doc="torch intra-op threads during the run (0: leave torch's setting)"),
    )
    slots: ClassVar[tuple[Slot, ...]] = (
        Slot("model", "model", "the network"),
        Slot("dataset", "dataset", "where the mini-batch comes from"),
        Slot("algorithm", "algorithm", "whose update is computed from each fixed point", default="ep"),
    )
    example: ClassVar[dict | None] = {"tol": 1e-6, "max_sweeps": 50, "repeats": 1, "K": 2, "batch_size": 4}

    #: What it records: per schedule its cost, residual and whether it settled; on the async row, the
    #: comparisons with sync.
    records = Records(metrics=("sweeps", "step_evaluations", "residual", "settled", "seconds", "time_ratio",
                               "state_difference", "update_difference"),
                      columns=("schedule",), costs=("seconds", "time_ratio"))

    def __init__(self, tol: float = 1e-8, max_sweeps: int = 20000, repeats: int = 3, K: int = 20,
                 batch_size: int = 20, threads: int = 0):
        if not tol > 0:
            raise ValueError(f"tol must be positive (the stop rule and `settled` are relative to it), got {tol}")
        if max_sweeps < 1:
            raise ValueError(f"max_sweeps must be at least 1, got {max_sweeps}")
        if repeats < 1:
            raise ValueError(f"repeats must be at least 1, got {repeats}")
        if K < 1:
            raise ValueError(f"K must be at least 1, got {K}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if threads < 0:
            raise ValueError(f"threads must be ≥ 0 (0: leave torch's setting), got {threads}")
        self.tol, self.max_sweeps, self.repeats = float(tol), max_sweeps, repeats
        self.K, self.batch_size, self.threads = K, batch_size, threads

    def __call__(self, ctx: RunContext) -> None:
        with torch_threads(self.threads):
            self._measure(ctx)

    def _measure(self, ctx: RunContext) -> None:
        model, x, y = first_batch(ctx, self.batch_size)
        with torch.no_grad():
            xp = model.prepare(x)  # once per mini-batch, outside the timing (as EP's free phase)
        steps = self.repeats + 1
        times: dict[str, list[float]] = {s: [] for s in SCHEDULES}
        out: dict[str, Relaxed] = {}
        for i in range(self.repeats):
            ctx.progress(i, steps, "phase", f"repetition {i + 1} of {self.repeats}", eta_after=None)
            for schedule in SCHEDULES:
                t0 = time.perf_counter()
                # relax reads every sweep's move on the host, so the clock stops after the device's work
                out[schedule] = relax(model, xp, model.init_state(x), max_steps=self.max_sweeps, tol=self.tol,
                                      schedule=schedule)
                times[schedule].append(time.perf_counter() - t0)
        seconds = {s: statistics.median(v) for s, v in times.items()}
        settled = {}
        for schedule, r in out.items():
            ctx.check_finite(r.residual, f"the {schedule} relaxation's residual")
            settled[schedule] = r.residual < SETTLED * self.tol
            ctx.record("sweeps", r.sweeps, schedule=schedule)
            ctx.record("step_evaluations", r.evaluations, schedule=schedule)
            ctx.record("residual", r.residual, schedule=schedule)
            ctx.record("settled", float(settled[schedule]), schedule=schedule)
            ctx.record("seconds", seconds[schedule], schedule=schedule)
            if not settled[schedule]:
                ctx.warn(f"the {schedule} relaxation has not settled: max|F(s) − s| = {r.residual:.2g} after "
                         f"{r.sweeps} sweeps, not below {SETTLED:g}·tol = {SETTLED * self.tol:.2g}; "
                         "update_difference is not recorded")
        ctx.record("time_ratio", seconds["async"] / seconds["sync"], schedule="async")
        ctx.record("state_difference", max(relative_difference(a, b) for a, b in
                                           zip(out["sync"].state, out["async"].state)), schedule="async")
        if all(settled.values()):
            ctx.progress(self.repeats, steps, "phase", f"{ctx.component_name('algorithm')}'s update",
                         eta_after=None)
            algorithm = ctx.build("algorithm")
            sync = update_from(algorithm, model, x, y, out["sync"].state, self.K)
            asy = update_from(algorithm, model, x, y, out["async"].state, self.K)
            for key, u in sync.items():
                ctx.check_finite(u, f"{ctx.component_name('algorithm')} update of {key} from the sync fixed point")
            ctx.record("update_difference", max(relative_difference(sync[k], asy[k]) for k in sync),
                       schedule="async")
        ctx.progress(steps, steps, "phase", "done", eta_after=None)
