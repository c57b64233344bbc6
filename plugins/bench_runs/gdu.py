"""Run kind ``gdu``: the GDU demonstration of Table 3 / Fig. 3 and 15.

On one mini-batch, compute the processes of an algorithm (ΔEP) and of a
baseline (−∇BPTT) with the same ``T`` and ``K``, and record every metric per
layer, for neurons and for weights. Both processes are batch averages, as in
Appendix C.1.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from harness.api.algorithm import Processes, capability
from harness.api.components import Param, Slot
from harness.api.records import Records
from harness.api.run_kind import RunKind
from harness.api.steps import check_steps, step_params
from harness.run.context import RunContext

from .figures import gdu_figures
from .one_batch import check_assumptions, first_batch, steady_state


def _label(key: str) -> str:
    """``"W01.0"`` → ``"W01"`` (the weight); other tensors of a group keep their index."""
    group, _, index = key.rpartition(".")
    return group if index == "0" else key


class GDU(RunKind):
    """GDU demonstration (Table 3): one mini-batch, processes of an algorithm vs a baseline, metrics per
    layer for neurons and weights"""

    params: ClassVar[tuple[Param, ...]] = (
        *step_params(k_doc="second-phase / truncation steps compared"),
        Param("batch_size", int, 20, min=1, doc="the first batch_size training samples; processes are "
              "averaged over them (Appendix C.1)", max=10**7),
        Param("keep_processes", bool, True, "save the processes as artifacts/processes.pt"),
        Param("keep_elements", int, 1000, min=0, doc="per layer, how many elements' processes to save "
              "(a seeded sample; 0 = all, which can be hundreds of MB for 512-wide nets)", max=10**10),
    )
    slots: ClassVar[tuple[Slot, ...]] = (
        Slot("model", "model", "the network"),
        Slot("dataset", "dataset", "where the mini-batch comes from"),
        Slot("algorithm", "algorithm", "the candidate (its processes are ΔEP)", default="ep"),
        Slot("baseline", "algorithm", "the reference (its processes are −∇BPTT)", default="bptt"),
        Slot("metrics", "metric", "metrics per layer", many=True, default=["relmse", "sign"]),
    )
    example: ClassVar[dict | None] = {"T": 10, "K": 2}

    #: What it records (the run-kind contract): each metric of its metric slot per layer, and the
    #: first phase's residual.
    records = Records(metrics=("residual",), columns=("layer", "what"), metric_slots=("metrics",))
    #: Its figures (the run-kind contract): processes and RelMSE per layer.
    figures = staticmethod(gdu_figures)

    def __init__(self, T: int, K: int, batch_size: int = 20, keep_processes: bool = True,
                 keep_elements: int = 1000):
        check_steps(T, K, "gdu")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.T, self.K, self.batch_size = T, K, batch_size
        self.keep_processes, self.keep_elements = keep_processes, keep_elements

    def __call__(self, ctx: RunContext) -> None:
        model, x, y = first_batch(ctx, self.batch_size)
        algorithm, baseline = ctx.build("algorithm"), ctx.build("baseline")
        metrics = ctx.build("metrics")
        ctx.progress(0, 3, "phase", "steady state check", eta_after=None)
        state, residual = steady_state(model, x, self.T - self.K)
        ctx.record("residual", residual, what="first phase")
        check_assumptions(ctx, model, x, state, residual, capability(algorithm, "beta"), self.T, self.K)
        ctx.progress(1, 3, "phase", ctx.component_name("algorithm"), eta_after=None)
        cand = algorithm.processes(model, x, y, T=self.T, K=self.K)
        ctx.progress(2, 3, "phase", ctx.component_name("baseline"), eta_after=None)
        ref = baseline.processes(model, x, y, T=self.T, K=self.K)
        ctx.progress(3, 3, "phase", "metrics", eta_after=None)
        for what, c, r in (("neurons", cand.neurons, ref.neurons), ("weights", cand.weights, ref.weights)):
            for key in c:
                ctx.check_finite(c[key], f"{ctx.component_name('algorithm')} process of {key}")
                ctx.check_finite(r[key], f"{ctx.component_name('baseline')} process of {key}")
                for mname, metric in metrics.items():
                    ctx.record(mname, metric(c[key], r[key]), layer=_label(key), what=what)
        if self.keep_processes:
            ctx.save_artifact("processes", self._artifact(cand, ref, ctx))

    def _artifact(self, cand: Processes, ref: Processes, ctx: RunContext) -> dict:
        """Processes on the CPU in float32 (for figures; the metrics were computed at full
        precision); large tensors keep a seeded sample of ``keep_elements`` elements."""
        gen = ctx.generator(offset=7)
        out: dict[str, Any] = {"T": self.T, "K": self.K, "algorithm": ctx.component_name("algorithm"),
                               "baseline": ctx.component_name("baseline"), "neurons": {}, "weights": {}}
        for what in ("neurons", "weights"):
            for key, c in getattr(cand, what).items():
                r = getattr(ref, what)[key]
                shape = tuple(c.shape[1:])
                c, r = c.detach().flatten(1).cpu(), r.detach().flatten(1).cpu()
                n = c.shape[1]
                if 0 < self.keep_elements < n:
                    index = torch.randperm(n, generator=gen)[: self.keep_elements].sort().values
                else:
                    index = torch.arange(n)
                out[what][_label(key)] = {"shape": shape, "index": index,
                                          "candidate": c[:, index].float(), "reference": r[:, index].float()}
        return out
