"""Richardson-extrapolated one-sided EP: the O(β) bias of the paper's EP cancelled with a second,
half-size positive nudge instead of a negative one.

One-sided EP's estimate is ``g + β·b + O(β²)`` (``g`` the gradient, ``b`` its first-order bias).
Two of them, at ``β/2`` and at ``β``, combine into ``2·ΔEP(β/2) − ΔEP(β) = g + O(β²)``, the order of
centered EP, at the cost of the same two nudged phases, both pushed toward the target. Written in
the EP family's terms: from the free fixed point ``s_*``,

    ΔEP_R = (4·(∂Φ/∂θ(s^{β/2}) − ∂Φ/∂θ(s_*)) − (∂Φ/∂θ(s^β) − ∂Φ/∂θ(s_*))) / (β·nudge_scale).

Where a negative nudge is unavailable or harmful (a device that can only be nudged toward the target;
Scellier et al. 2023 compare the signs), this keeps the second-order bias with positive nudges only.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from harness.api.algorithm import Processes, step_log
from harness.api.model import ConvergentRNN

from .ep import EP, combine


class EPRichardson(EP):
    """Richardson-extrapolated one-sided EP: 2·ΔEP(β/2) − ΔEP(β), two positive nudges; bias O(β²) like
    centered EP without a negative nudge

    :class:`EP` whose two second phases both nudge toward the target, at β/2 and at β, combined so that
    the first-order biases cancel (the module's docstring).
    """

    def __init__(self, beta: float = 0.1, **kwargs: Any):
        for key in ("variant", "random_sign"):
            if key in kwargs:
                raise ValueError(f"ep-richardson fixes its nudges (β/2 and β, both positive): {key} is not an option")
        if kwargs.get("zero_phase") or kwargs.get("warm_from", "free") != "free":
            raise ValueError("ep-richardson runs two positive second phases and takes s_* as its zero side: "
                             "zero_phase and warm_from = \"second_phase\" are not options")
        super().__init__(beta, **kwargs)

    def train_step(self, model: ConvergentRNN, x: Tensor, y: Tensor, *, T: int, K: int) -> dict[str, Tensor]:
        """θ += lr · (4·(∂Φ/∂θ(s^{β/2}) − ∂Φ/∂θ(s_*)) − (∂Φ/∂θ(s^β) − ∂Φ/∂θ(s_*))) / (β·scale) / batch."""
        with torch.no_grad():
            xp = model.prepare(x)  # as EP's step: the input's drive, once per mini-batch
        free = self.training_free_phase(model, xp, x, T)
        half = self.direction(model, xp, free, y, K, (0.0, self.beta / 2))
        full = self.direction(model, xp, free, y, K, (0.0, self.beta))
        delta = {g: [4 * h - f for h, f in zip(half[g], full[g])] for g in half}
        k = 1.0 / (self.beta * model.nudge_scale * free[0].shape[model.batch_dim()])
        self.apply(model, delta, {name: k for name in delta})
        return {**step_log(model, free, y), **self.relaxation_log()}

    def processes(self, model: ConvergentRNN, x: Tensor, y: Tensor, *, T: int, K: int) -> Processes:
        """The per-step processes of the same combination: (4·Δs^{β/2}(t) − Δs^β(t)) / (β·scale), and the
        same for ∂Φ/∂θ."""
        free = self.free_phase(model, x, model.init_state(x), T)
        half, full = self.beta / 2, self.beta
        return combine(model, x.shape[0], [(half, self.trajectory(model, x, free, y, half, K)),
                                           (full, self.trajectory(model, x, free, y, full, K))],
                       [4.0, -1.0], self.beta * model.nudge_scale)
