"""Truncated BPTT (Algorithm 2), written once against ConvergentRNN.

The processes need the gradient with respect to *each step's copy* of θ.
Running each of the last K steps with its own detached clone of the
parameters (``torch.func.functional_call``) gives all K per-step gradients
from one backward pass, instead of K reruns.

Alignment (paper's main text, verified by the theorem test in float64):
``∇_s(t) = ∂L/∂s_{T−t}`` and ``∇_θ(t) = ∂L/∂θ_{T−1−t}`` where ``θ_t`` is the
copy used by the step ``s_t → s_{t+1}``; ``t = 0 … K−1``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor
from torch.func import functional_call

from harness.api.algorithm import Learner, Processes, process_key
from harness.api.components import Param
from harness.api.model import Clamped, ConvergentRNN, State, per_group
from harness.api.optimizer import Directions, by_group, optimizer_params
from harness.api.steps import check_steps


class BPTT(Learner):
    """Truncated BPTT (Algorithm 2) through the last K of T steps; processes are −∇ so they compare with
    ΔEP"""

    params: ClassVar[tuple[Param, ...]] = tuple(optimizer_params())

    @staticmethod
    def _check(T: int, K: int) -> None:
        check_steps(T, K, "BPTT")

    def train_step(self, model: ConvergentRNN, x: Tensor, y: Tensor, *, T: int, K: int) -> dict[str, Tensor]:
        """θ −= lr · Σ_t ∇_θ(t): ordinary truncated backprop through the last K steps.

        The first T − K steps record no graph. Only the output layer at T enters
        the loss, so the model may skip what cannot reach it (``output_at``).
        """
        self._check(T, K)
        per_group(self.lr, model, "lr")  # refuse a missing or mismatched lr before the phases run
        with torch.enable_grad():
            xp = model.prepare(x)  # in the graph: the cached drive's gradient reaches its weights
        state = model.relax(xp, model.init_state(x), T - K, output_at=T)
        state, per_sample, grads = self.direction(model, xp, state, y, K, output_at=K)
        self.apply(model, grads, {name: -1.0 for name in grads})
        return {"loss": per_sample.mean(-1).detach(),
                "error": (model.predict(state) != model.labels(y)).to(state[0].dtype).mean(-1)}

    def direction(self, model: ConvergentRNN, xp: Tensor | Clamped, state: State, y: Tensor, K: int, *,
                  output_at: int | None = None) -> tuple[State, Tensor, Directions]:
        """From ``s_{T−K}``: K steps recording a graph, the loss at ``T`` and its gradient (BPTT's
        update before its coefficient ``−lr``); also the state at ``T`` and the per-sample loss.
        ``output_at``: as in :meth:`ConvergentRNN.steps` (only the output layer is used)."""
        flat = [p for ps in model.param_groups().values() for p in ps]
        with torch.enable_grad():
            state = model.steps(xp, state, K, output_at=output_at)
            per_sample = model.loss(state, y)
            # the batch mean of ℓ; with stacked seeds, summed over members (each gets its own gradient)
            grads = torch.autograd.grad(per_sample.mean(-1).sum(), flat, allow_unused=True)
        return state, per_sample, by_group(model, list(grads))

    def processes(self, model: ConvergentRNN, x: Tensor, y: Tensor, *, T: int, K: int) -> Processes:
        """−∇_s(t) and −∇_θ(t), t = 0 … K−1, from one backward pass (L = batch mean of ℓ)."""
        self._check(T, K)
        groups = model.phi_groups()  # a readout in ℓ has no per-step process (ConvergentRNN.loss_groups)
        names = {id(p): n for n, p in model.named_parameters()}
        state = model.relax(x, model.init_state(x), T - K)
        states, copies = [], []
        with torch.enable_grad():
            state = tuple(s.detach().requires_grad_() for s in state)
            states.append(state)
            for _ in range(K):
                theta = {n: p.detach().clone().requires_grad_() for n, p in model.named_parameters()}
                copies.append(theta)
                state = functional_call(model, theta, (x, state))
                for s in state:
                    if s.requires_grad:
                        s.retain_grad()
                states.append(state)
            loss = model.loss(state, y).mean()
            # into the states and the step copies only: not into the model's own parameters (a readout in ℓ)
            leaves = [t for st in states for t in st if t.requires_grad] + [c for th in copies for c in th.values()]
            loss.backward(inputs=leaves)
        # states[j] is s_{T−K+j}; ∇_s(t) is the gradient of s_{T−t} = states[K−t].
        # ℓ is a batch mean, so the batch-averaged per-sample gradient is the sum over the batch.
        neurons = {}
        for li, layer in enumerate(model.layer_names):
            per_t = []
            for t in range(K):
                s = states[K - t][li]
                g = s.grad if s.grad is not None else torch.zeros_like(s)
                per_t.append(-g.sum(0))
            neurons[layer] = torch.stack(per_t)
        # copies[j] is θ_{T−K+j}; ∇_θ(t) = ∂L/∂θ_{T−1−t} = copies[K−1−t].
        weights = {}
        for gname, ps in groups.items():
            for i, p in enumerate(ps):
                pname = names[id(p)]
                per_t = []
                for t in range(K):
                    c = copies[K - 1 - t][pname]
                    per_t.append(-(c.grad if c.grad is not None else torch.zeros_like(c)))
                weights[process_key(gname, i)] = torch.stack(per_t)
        return Processes(neurons, weights)
