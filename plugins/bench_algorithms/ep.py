"""Equilibrium Propagation (Algorithm 1), written once against ConvergentRNN.

Every quantity is divided by the *effective* nudge ``β · model.nudge_scale``
(``βε`` for the EB nets, Eq. 35), so that ΔEP compares directly with −∇BPTT.
"""

from __future__ import annotations

import torch
from torch import Tensor

from harness.algorithm import Processes
from harness.model import Clamped, ConvergentRNN, State, per_group
from harness.update import Directions, apply_update


class EP:
    def __init__(self, beta: float = 0.1, lr: list[float] | None = None):
        if beta == 0:
            raise ValueError("EP needs beta != 0 (its updates are divided by beta)")
        self.beta = float(beta)
        self.lr = lr

    def train_step(self, model: ConvergentRNN, x: Tensor, y: Tensor, *, T: int, K: int) -> dict[str, Tensor]:
        """θ += lr · (∂Φ/∂θ(s^β_K) − ∂Φ/∂θ(s_*)) / (β·scale) / batch: the telescoped Σ_t ΔEP_θ(t)."""
        lrs = per_group(self.lr, model, "lr")
        with torch.no_grad():
            xp = model.prepare(x)  # e.g. the input's drive, once per mini-batch (generic: x itself)
        free = model.relax(xp, model.init_state(x), T)
        delta = self.direction(model, xp, free, y, K)
        scale = 1.0 / (self.beta * model.nudge_scale * free[0].shape[model.batch_dim()])
        apply_update(model, delta, {name: lr * scale for name, lr in lrs.items()})
        # per member when seeds are stacked (model.members), else scalars; left on the device
        return {"loss": model.loss(free, y).mean(-1).detach(),
                "error": (model.predict(free) != model.labels(y)).to(free[0].dtype).mean(-1)}

    def direction(self, model: ConvergentRNN, xp: Tensor | Clamped, free: State, y: Tensor, K: int) -> Directions:
        """From the free fixed point ``s_*``: K nudged steps, then ``∂Φ/∂θ(s^β_K) − ∂Φ/∂θ(s_*)``
        (EP's update before its coefficient ``lr / (β·nudge_scale·batch)``)."""
        nudged = model.relax(xp, free, K, y, self.beta)
        return model.dphi_delta(xp, nudged, free)

    def processes(self, model: ConvergentRNN, x: Tensor, y: Tensor, *, T: int, K: int) -> Processes:
        """ΔEP_s(t) = (s^β_{t+1} − s^β_t)/(β·scale), ΔEP_θ(t) = (∂Φ/∂θ(s^β_{t+1}) − ∂Φ/∂θ(s^β_t))/(β·scale)."""
        B = x.shape[0]
        eff = self.beta * model.nudge_scale
        state = model.relax(x, model.init_state(x), T)
        groups = model.param_groups()
        neurons: dict[str, list[Tensor]] = {n: [] for n in model.layer_names}
        weights: dict[str, list[Tensor]] = {f"{g}.{i}": [] for g, ps in groups.items() for i in range(len(ps))}
        prev_g = model.dphi_dtheta(x, state)
        for _ in range(K):
            with torch.no_grad():
                new = model.step(x, state, y, self.beta)
            g = model.dphi_dtheta(x, new)
            with torch.no_grad():
                for name, s1, s0 in zip(model.layer_names, new, state):
                    neurons[name].append((s1 - s0).mean(0) / eff)
                for gname, ps in groups.items():
                    for i in range(len(ps)):
                        weights[f"{gname}.{i}"].append((g[gname][i] - prev_g[gname][i]) / (eff * B))
            state, prev_g = new, g
        return Processes({k: torch.stack(v) for k, v in neurons.items()},
                         {k: torch.stack(v) for k, v in weights.items()})
