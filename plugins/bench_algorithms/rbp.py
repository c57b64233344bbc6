"""Recurrent backprop (RBP; Almeida 1987, Pineda 1987), a baseline beside truncated BPTT, written
once against ConvergentRNN.

At the free fixed point ``s_* = F(x, s_*, θ)`` the implicit function theorem gives
``∇_θ L = (∂F/∂θ)ᵀ μ`` with the adjoint ``μ = ∂L/∂s + (∂F/∂s)ᵀ μ``, computed by iterating that fixed
point from ``μ = ∂L/∂s`` (vector–Jacobian products of one step at ``s_*``, no unrolled graph: memory
independent of the number of iterations). After ``n`` iterations ``μ = Σ_{t<n} (Jᵀ)^t ∂L/∂s``, which
is BPTT's gradient through ``n`` steps when the state sits exactly at ``s_*``; so the processes
``−∇_s(t) = −(Jᵀ)^t ∂L/∂s`` and ``−∇_θ(t) = −(∂F/∂θ)ᵀ (Jᵀ)^t ∂L/∂s`` compare with −∇BPTT(t) and ΔEP(t)
with the first phase's drift removed.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from harness.api.algorithm import Learner, Processes, process_key, step_log
from harness.api.components import Param
from harness.api.model import ConvergentRNN, State, per_group
from harness.api.optimizer import Directions, by_group, optimizer_params


class RBP(Learner):
    """Recurrent backprop (Almeida 1987; Pineda 1987): the gradient at the free fixed point by the implicit
    function theorem, its adjoint fixed point iterated"""

    params: ClassVar[tuple[Param, ...]] = (
        Param("iterations", int | None, None, "adjoint iterations (None: K, BPTT's truncation; "
              "more: closer to the exact implicit gradient)", min=1, max=10**8),
        *optimizer_params(),
    )

    #: Its update is derived at the free phase's fixed point (the train kind warns when none is reached).
    assumes_fixed_point = True

    def __init__(self, iterations: int | None = None, lr: list[float] | None = None, **optimizer):
        super().__init__(lr, **optimizer)
        if iterations is not None and iterations < 1:
            raise ValueError(f"RBP needs iterations >= 1, got {iterations}")
        self.iterations = iterations

    def _vjp(self, model: ConvergentRNN, x: Tensor, T: int, y: Tensor):
        """The free fixed point, ``∂L/∂s`` there (L = batch mean of ℓ; with stacked members, each
        member's own), and ``vjp(v) = (∂F/∂s)ᵀ v, (∂F/∂θ)ᵀ v`` at ``s_*``."""
        with torch.no_grad():
            free = model.relax(model.prepare(x), model.init_state(x), T)
        flat = [p for ps in model.param_groups().values() for p in ps]
        with torch.enable_grad():
            s = tuple(t.detach().requires_grad_() for t in free)
            xp = model.prepare(x)  # in the graph: the cached drive's gradient reaches its weights
            out = model.step(xp, s)
            # ∂L/∂s, and ∂L/∂θ directly (nonzero for a readout in ℓ: ConvergentRNN.loss_groups)
            dl_all = torch.autograd.grad(model.loss(s, y).mean(-1).sum(), [*s, *flat], allow_unused=True)
        dl = tuple(torch.zeros_like(t) if g is None else g for t, g in zip(s, dl_all[:len(s)]))
        direct = list(dl_all[len(s):])
        live = [(o, v) for o, v in zip(out, range(len(out))) if o.requires_grad]

        def vjp(v: State) -> tuple[State, list[Tensor | None]]:
            grads = torch.autograd.grad([o for o, _ in live], [*s, *flat], grad_outputs=[v[i] for _, i in live],
                                        retain_graph=True, allow_unused=True)
            ds = tuple(torch.zeros_like(t) if g is None else g for t, g in zip(s, grads[:len(s)]))
            return ds, list(grads[len(s):])

        return free, dl, vjp, direct

    def gradient(self, model: ConvergentRNN, x: Tensor, y: Tensor, *, T: int, K: int) -> tuple[State, Directions]:
        """The free fixed point and ``∇_θ L`` per group after ``iterations`` (default K) adjoint iterations."""
        free, dl, vjp, direct = self._vjp(model, x, T, y)
        mu = dl
        for _ in range((self.iterations or K) - 1):
            mu = tuple(a + b for a, b in zip(dl, vjp(mu)[0]))
        through = vjp(mu)[1]
        return free, by_group(model, [g if d is None else d if g is None else g + d for g, d in zip(through, direct)])

    def train_step(self, model: ConvergentRNN, x: Tensor, y: Tensor, *, T: int, K: int) -> dict[str, Tensor]:
        """θ −= lr · ∇_θ L at the free fixed point (the implicit gradient)."""
        per_group(self.lr, model, "lr")
        free, grads = self.gradient(model, x, y, T=T, K=K)
        self.apply(model, grads, {name: -1.0 for name in grads})
        return step_log(model, free, y)

    def processes(self, model: ConvergentRNN, x: Tensor, y: Tensor, *, T: int, K: int) -> Processes:
        """−(Jᵀ)^t ∂L/∂s (summed over the batch, as BPTT's) and −(∂F/∂θ)ᵀ (Jᵀ)^t ∂L/∂s, t = 0 … K−1."""
        _, lam, vjp, _ = self._vjp(model, x, T, y)
        keys = list(_keys(model.param_groups()))  # vjp's order; a readout in ℓ has no per-step process
        phi = set(model.phi_groups())
        neurons: dict[str, list[Tensor]] = {n: [] for n in model.layer_names}
        weights: dict[str, list[Tensor]] = {k: [] for k, g, _ in keys if g in phi}
        for _ in range(K):
            ds, dtheta = vjp(lam)
            for name, v in zip(model.layer_names, lam):
                neurons[name].append(-v.sum(0))
            for (key, group, p), g in zip(keys, dtheta):
                if group in phi:
                    weights[key].append(-(torch.zeros_like(p) if g is None else g))
            lam = ds
        return Processes({k: torch.stack(v).detach() for k, v in neurons.items()},
                         {k: torch.stack(v).detach() for k, v in weights.items()})


def _keys(groups):
    for g, ps in groups.items():
        for i, p in enumerate(ps):
            yield process_key(g, i), g, p
