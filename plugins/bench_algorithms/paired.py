"""EP and BPTT members of one stacked model, trained together in one step.

Table 1 compares EP with BPTT from the same initial weights (same seed). With
seeds stacked along a leading dimension (:func:`harness.api.model.stack_members`),
the two algorithms can share one batched model too: their free phases are the
same dynamics, so one pass serves both. :class:`Paired` runs, for every member,

* the first ``T − K`` free steps without a graph (every layer: EP needs the
  whole steady state, so BPTT's one-chain skipping is off here);
* the last ``K`` free steps recording a graph, and the backward pass of the loss
  at step ``T`` (each member's gradient is its own loss's), which is exactly
  BPTT's :meth:`~bench_algorithms.BPTT.train_step`;
* from the detached step-``T`` state (EP's free fixed point ``s_*``) the ``K``
  nudged steps and ``∂Φ/∂θ(s^β_K) − ∂Φ/∂θ(s_*)`` (with ``zero_phase``, ``K`` free
  steps from ``s_*`` in place of ``s_*``), exactly EP's
  :meth:`~bench_algorithms.EP.train_step`;

then each member takes its own algorithm's update with its own learning rates.
Every member pays for both second phases (the other one is discarded), which is
the price of one launch stream instead of two: worth it where launches, not
arithmetic, set the pace (a GPU), not on a CPU. Results equal separate runs up to
the rounding of batched matmuls (tests/test_paired.py). The EP members must
share β and ``zero_phase`` (the second phases are one batched pass); :meth:`Paired.can_pair` says
whether a list of algorithms can be paired.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from harness.api.algorithm import Algorithm
from harness.api.model import ConvergentRNN, per_group
from harness.api.optimizer import apply_update
from harness.api.steps import check_steps

from .bptt import BPTT
from .ep import EP, EP_VARIANTS


class Paired(Algorithm):
    """The step of a stacked model whose members are EP and BPTT runs (the module's docstring); its
    ``algorithms`` are the members' own, one per member."""

    algorithms: list[EP | BPTT]

    def __init__(self, algorithms: Sequence[EP | BPTT]):
        reason = self.why_not(algorithms)
        if reason:
            raise ValueError(f"these algorithms cannot share one paired step: {reason}")
        self.algorithms = list(algorithms)
        self.is_ep = [isinstance(a, EP) for a in algorithms]
        self.beta = next((a.beta for a in algorithms if isinstance(a, EP)), None)
        self._ep = next((a for a in algorithms if isinstance(a, EP)), EP(beta=1.0))  # its direction only
        self._bptt = BPTT()
        self._coef: dict[tuple, tuple] = {}  # per model and batch size: see _coefficients

    @staticmethod
    def why_not(algorithms: Sequence[object]) -> str:
        """Why the algorithms cannot be paired ('' when they can): EP (the paper's, positive) and BPTT
        only (exact types: a subclass may change the step; EP's registered variants only fix its nudges,
        refused below by name), plain SGD, one β among the EP members."""
        if not algorithms:
            return "no algorithm"
        other = [type(a).__name__ for a in algorithms if type(a) not in (EP, BPTT, *EP_VARIANTS)]
        if other:
            return f"only EP and BPTT pair, got {', '.join(other)}"
        variant = [a.variant for a in algorithms if isinstance(a, EP) and a.variant != "positive"]
        if variant:
            return ("only the paper's one-sided EP pairs (its nudged phase is BPTT's free phase's sequel), "
                    f"got {variant[0]} EP")
        if any(isinstance(a, EP) and (a.schedule != "sync" or a.tol) for a in algorithms):
            return "EP with its own relaxation schedule or tolerance cannot share BPTT's free phase"
        if any(isinstance(a, EP) and a.nudged_schedule != "sync" for a in algorithms):
            return "EP with asynchronous second phases cannot share the paired nudged phase (it is synchronous)"
        if len({a.zero_phase for a in algorithms if isinstance(a, EP)}) > 1:
            return "the EP members differ in zero_phase (the paired step runs one EP's second phases for all)"
        if any(isinstance(a, EP) and a.warm_start for a in algorithms):
            return "EP with warm_start carries each run's own free state; paired members would share one"
        if any(a.random_sign for a in algorithms if isinstance(a, (EP, BPTT))):  # all are, checked above
            return "EP with a random sign of β draws per run; paired members would share it"
        if any(a.stateful for a in algorithms if isinstance(a, (EP, BPTT))):  # all are, checked above
            return "an optimizer with state (momentum, weight decay, Adam) is per run; pairing is for plain SGD"
        if len({a.beta for a in algorithms if isinstance(a, EP)}) > 1:
            return "the EP members have different β (the nudged phase is one batched pass)"
        return ""

    @classmethod
    def can_pair(cls, algorithms: Sequence[object]) -> bool:
        return not cls.why_not(algorithms)

    @classmethod
    def of(cls, algorithms: Sequence[object]) -> Paired | None:
        """The paired step of these algorithms, or None when they cannot pair (EP's and BPTT's ``share``)."""
        return cls(algorithms) if cls.can_pair(algorithms) else None  # type: ignore[arg-type]  # checked

    def _coefficients(self, model: ConvergentRNN, batch: int) -> tuple[dict, dict, Tensor, Tensor]:
        """Per group, per parameter: the factor of EP's Δ and of BPTT's gradient, shaped ``(S, 1, …)``
        (zero for the members of the other algorithm); and the indices of the EP members and of the
        BPTT members. Made once per model and batch size: no host-to-device copy at later steps,
        which a CUDA graph capture would refuse."""
        key = (id(model), model.device, model.dtype, batch)
        if key not in self._coef:
            S = model.members
            if S != len(self.algorithms):
                raise ValueError(f"the model has {S} members but {len(self.algorithms)} algorithms were paired")
            lrs = [per_group(a.lr, model, "lr") for a in self.algorithms]
            ep_coef, bptt_coef = {}, {}
            for name, params in model.param_groups().items():
                n1, n2 = self._ep.nudges()  # (0, β), or (β, 0) for β < 0: EP.direction's order
                ep = [lr[name] / ((n2 - n1) * model.nudge_scale * batch) if e else 0.0
                      for lr, e in zip(lrs, self.is_ep)]
                bp = [0.0 if e else lr[name] for lr, e in zip(lrs, self.is_ep)]
                ep_coef[name] = [_per_member(ep, p) for p in params]
                bptt_coef[name] = [-_per_member(bp, p) for p in params]  # θ −= lr·∇: coefficient −lr
            ep_idx = torch.tensor([i for i, e in enumerate(self.is_ep) if e], dtype=torch.long, device=model.device)
            bptt_idx = torch.tensor([i for i, e in enumerate(self.is_ep) if not e], dtype=torch.long,
                                    device=model.device)
            self._coef[key] = (ep_coef, bptt_coef, ep_idx, bptt_idx)
        return self._coef[key]

    def train_step(self, model: ConvergentRNN, x: Tensor, y: Tensor, *, T: int, K: int) -> dict[str, Tensor]:
        check_steps(T, K, "EP and BPTT")
        if not model.members:
            raise ValueError("Paired trains a stacked model (harness.api.model.stack_members), one member per "
                             "algorithm")
        with torch.enable_grad():
            xp = model.prepare(x)  # in the graph: BPTT's gradient reaches the cached drive's weights
        state = model.relax(xp, model.init_state(x), T - K)  # every layer: EP needs the whole s_*
        # the algorithms' own second phases: BPTT's backward pass, then EP's nudged phase from s_*
        state, per_sample, grads = self._bptt.direction(model, xp, state, y, K)
        ep_coef, bptt_coef, ep_idx, bptt_idx = self._coefficients(model, per_sample.shape[-1])
        free = tuple(s.detach() for s in state)
        delta = self._ep.direction(model, xp, free, y, K)
        # each member keeps its own algorithm's update: the other's is zeroed first (not multiplied
        # by 0, so that a discarded phase's inf cannot turn into NaN); then the one update path
        with torch.no_grad():
            for name in delta:
                delta[name] = [d.index_fill_(0, bptt_idx, 0.0) for d in delta[name]]
                grads[name] = [g if g is None else g.index_fill_(0, ep_idx, 0.0) for g in grads[name]]
        apply_update(model, delta, ep_coef)
        apply_update(model, grads, bptt_coef)
        return {"loss": per_sample.mean(-1).detach(),
                "error": (model.predict(free) != model.labels(y)).to(free[0].dtype).mean(-1)}


def _per_member(values: list[float], like: Tensor) -> Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device).reshape(-1, *[1] * (like.dim() - 1))
