"""Run kind ``bias``: how an EP estimator's error against the exact gradient shrinks with β.

On one mini-batch (as ``gdu``): the baselines' processes once (−∇BPTT, −∇RBP), then, for each β of
a log grid, the candidate's processes built with that β, and two errors per baseline:

* ``relmse``: RelMSE of Eq. 67 between the processes, mean over the weight layers (``what =
  "weights"``) and over the neuron layers (``"neurons"``): the paper's GDU measure;
* ``grad_error``: ``‖Σ_t c(t) − Σ_t r(t)‖ / ‖Σ_t r(t)‖`` over every weight and bias of Φ at once, the
  relative error of the update the algorithm would apply in training (its gradient estimate). A
  readout in the loss (``ConvergentRNN.loss_groups``) has no process and is left out: its update is one
  direct term, tested apart (tests/test_cross_entropy.py).

Then ``slope_relmse`` and ``slope_grad``: the least-squares slope of log₁₀ error against log₁₀ β over
the grid points inside ``fit`` (default: all). Theory, for a settled first phase and ``F = ∂Φ/∂s``:
1 for one-sided EP (bias O(β)), 2 for centered EP (O(β²)), N for holomorphic EP (O(|β|^N), down to
rounding). A floor that does not shrink with β is the model's own gap (``F ≠ ∂Φ/∂s``, the P nets)
or a first phase that has not settled (see ``residual``).
"""

from __future__ import annotations

import math
from typing import ClassVar

from harness.api.algorithm import Processes
from harness.api.components import Param, Slot
from harness.api.records import Records
from harness.api.run_kind import RunKind
from harness.api.steps import batch_size, check_steps, step_params
from harness.run.context import RunContext

from .figures import bias_figures
from .one_batch import check_assumptions, first_batch, steady_state


def total_error(candidate: Processes, reference: Processes) -> float:
    """``‖Σ_t c − Σ_t r‖ / ‖Σ_t r‖`` over all weight tensors together, in float64."""
    num = den = 0.0
    for key, r in reference.weights.items():
        c = candidate.weights[key].double().sum(0)
        r = r.double().sum(0)
        num += float((c - r).pow(2).sum())
        den += float(r.pow(2).sum())
    return math.sqrt(num / den) if den > 0 else math.inf


def fit_slope(betas: list[float], errors: list[float], fit: tuple[float, float] | None = None) -> float:
    """Least-squares slope of log₁₀ error against log₁₀ β (points outside ``fit`` or not positive left
    out); NaN with fewer than two points."""
    lo, hi = fit if fit is not None else (-math.inf, math.inf)
    pts = [(math.log10(b), math.log10(e)) for b, e in zip(betas, errors)
           if lo <= b <= hi and e > 0 and math.isfinite(e)]
    if len(pts) < 2:
        return math.nan
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx > 0 else math.nan


class Bias(RunKind):
    """Estimator bias against β (the EP family): on one mini-batch, each β of a log grid builds the
    candidate with that β; RelMSE of its processes and the relative error of its summed update against
    each baseline (−∇BPTT, −∇RBP), and the fitted log–log slopes"""

    params: ClassVar[tuple[Param, ...]] = (
        *step_params(k_doc="second-phase / truncation steps compared"),
        Param("betas", list[float], [1e-4, 1e-3, 1e-2, 1e-1], min=0, distinct=True,
              doc="the β grid (log-spaced)"),
        batch_size("the first batch_size training samples"),
        Param("fit", list[float] | None, None, min=0, doc="[low, high]: the β range of the slope "
              "fit (None: the whole grid)"),
    )
    slots: ClassVar[tuple[Slot, ...]] = (
        Slot("model", "model", "the network"),
        Slot("dataset", "dataset", "where the mini-batch comes from"),
        Slot("algorithm", "algorithm", "the estimator (must have a beta parameter)", default="ep"),
        Slot("baselines", "algorithm", "the exact gradients it is compared with", many=True,
             default=["bptt", "rbp"]),
        Slot("metric", "metric", "the process metric", default="relmse"),
    )
    example: ClassVar[dict | None] = {"T": 10, "K": 2, "betas": [0.01, 0.1]}

    #: What it records: per β and baseline, its metric and the summed update's error, and their slopes.
    records = Records(metrics=("residual", "relmse", "grad_error", "slope_relmse", "slope_grad"),
                      columns=("beta", "baseline", "what"))
    #: Its figures (the run-kind contract): error against β, log–log, per model.
    figures = staticmethod(bias_figures)

    def __init__(self, T: int, K: int, betas: list[float], batch_size: int = 20,
                 fit: list[float] | None = None):
        check_steps(T, K, "bias")
        if len(betas) < 2 or any(b <= 0 for b in betas):
            raise ValueError(f"betas must hold at least two positive values (a log grid), got {betas}")
        if fit is not None and (len(fit) != 2 or not 0 < fit[0] < fit[1]):
            raise ValueError(f"fit must be [low, high] with 0 < low < high, got {fit}")
        self.T, self.K, self.batch_size = T, K, batch_size
        self.betas = sorted(float(b) for b in betas)
        self.fit = (fit[0], fit[1]) if fit is not None else None  # [low, high], checked above

    def __call__(self, ctx: RunContext) -> None:
        model, x, y = first_batch(ctx, self.batch_size)
        metric = ctx.build("metric")
        steps = len(self.betas) + 2
        ctx.progress(0, steps, "phase", "steady state check", eta_after=None)
        state, residual = steady_state(model, x, self.T - self.K)
        ctx.record("residual", residual, what="first phase")
        check_assumptions(ctx, model, x, state, residual, self.betas[0], self.T, self.K)
        ctx.progress(1, steps, "phase", "baselines", eta_after=None)
        refs = {name: b.processes(model, x, y, T=self.T, K=self.K) for name, b in ctx.build("baselines").items()}
        errors: dict[tuple[str, str], list[float]] = {}
        for i, beta in enumerate(self.betas):
            ctx.progress(2 + i, steps, "phase", f"β = {beta:g}", eta_after=None)
            cand = ctx.build("algorithm", beta=beta).processes(model, x, y, T=self.T, K=self.K)
            for name, ref in refs.items():
                for what in ("neurons", "weights"):
                    c, r = getattr(cand, what), getattr(ref, what)
                    for key in c:
                        ctx.check_finite(c[key], f"{ctx.component_name('algorithm')} process of {key} at β = {beta:g}")
                    value = sum(metric(c[k], r[k]) for k in c) / len(c)
                    ctx.record("relmse", value, beta=beta, baseline=name, what=what)
                    if what == "weights":
                        errors.setdefault((name, "relmse"), []).append(value)
                g = total_error(cand, ref)
                ctx.record("grad_error", g, beta=beta, baseline=name)
                errors.setdefault((name, "grad"), []).append(g)
        for (name, which), values in errors.items():
            ctx.record(f"slope_{which}", fit_slope(self.betas, values, self.fit), baseline=name)
        ctx.progress(steps, steps, "phase", "done", eta_after=None)
