"""Continual EP (C-EP; Ernoult, Grollier, Querlioz, Bengio & Scellier 2020, "Equilibrium Propagation
with Continual Weight Updates"), written once against ConvergentRNN.

The weights move at every step of the second phase, together with the neurons:
``θ ← θ + η (∂Φ/∂θ(s_{t+1}) − ∂Φ/∂θ(s_t)) / (β·scale·batch)``, each step's nudged state computed with
the current θ. Summed over the K steps this is EP's telescoped update, except that the later steps
see the weights already moved; the C-EP theorem says that for small η and β the updates follow
−∇BPTT (``η → 0`` gives EP's processes exactly: tests/test_estimators.py).
"""

from __future__ import annotations

import copy
from typing import ClassVar

import torch
from torch import Tensor

from harness.api.algorithm import Learner, Processes, process_key, step_log
from harness.api.components import Param
from harness.api.model import ConvergentRNN, capability, per_group
from harness.api.optimizer import optimizer_params

from .params import beta_param


class ContinualEP(Learner):
    """Continual EP (Ernoult et al. 2020): the weights move at every nudged step, θ += η(∂Φ/∂θ(s_{t+1})
    − ∂Φ/∂θ(s_t))/β; η → 0 is EP"""

    params: ClassVar[tuple[Param, ...]] = (beta_param(), *optimizer_params())

    #: Its update is derived at the free phase's fixed point (the train kind warns when none is reached).
    assumes_fixed_point = True
    #: Its nudge (never None here: Algorithm declares ``beta: float | None``).
    beta: float

    def __init__(self, beta: float = 0.1, lr: list[float] | None = None, **optimizer):
        super().__init__(lr, **optimizer)
        if beta == 0:
            raise ValueError("C-EP needs beta != 0 (its updates are divided by beta)")
        self.beta = float(beta)

    def check_model(self, model: ConvergentRNN) -> None:
        """Refuse a model with a readout in its loss (at `bench validate`, and before the first step)."""
        if capability(model, "loss_groups"):
            raise ValueError(f"C-EP does not train a readout in the loss ({type(model).__name__} has loss_groups "
                             f"{list(capability(model, 'loss_groups'))}); use loss = \"squared_error\", or ep")

    def train_step(self, model: ConvergentRNN, x: Tensor, y: Tensor, *, T: int, K: int) -> dict[str, Tensor]:
        """Free phase, then K nudged steps each followed by its weight update."""
        self.check_model(model)
        per_group(self.lr, model, "lr")  # refuse a missing or mismatched lr before the phases run
        with torch.no_grad():
            xp = model.prepare(x)
        free = model.relax(xp, model.init_state(x), T)
        self._second_phase(model, x, xp, free, y, K, self.apply)
        return step_log(model, free, y)

    def _second_phase(self, model, x, xp, state, y, K, update, record=None) -> None:
        k = 1.0 / (self.beta * model.nudge_scale * state[0].shape[model.batch_dim()])
        for _ in range(K):
            with torch.no_grad():
                new = model.step(xp, state, y, self.beta)
            delta = model.dphi_delta(xp, new, state)
            if record is not None:
                record(new, state, delta)
            update(model, delta, {name: k for name in delta})
            with torch.no_grad():
                xp = model.prepare(x)  # the cached drive belongs to the old weights
            state = new

    def processes(self, model: ConvergentRNN, x: Tensor, y: Tensor, *, T: int, K: int) -> Processes:
        """The per-step updates over η (ΔC-EP(t)), on a copy of the model trained along the second
        phase with this algorithm's learning rates (none given: η = 0, which is EP's processes)."""
        self.check_model(model)
        model = copy.deepcopy(model)
        eff, B = self.beta * model.nudge_scale, x.shape[0]
        free = model.relax(x, model.init_state(x), T)
        neurons: dict[str, list[Tensor]] = {n: [] for n in model.layer_names}
        weights: dict[str, list[Tensor]] = {}

        def record(new, old, delta):
            for name, s1, s0 in zip(model.layer_names, new, old):
                neurons[name].append((s1 - s0).mean(0) / eff)
            for g, ds in delta.items():
                for i, d in enumerate(ds):
                    weights.setdefault(process_key(g, i), []).append(d / (eff * B))

        if self.lr is None:
            def update(*_):
                return None
        else:
            update = self.apply
        with torch.no_grad():
            xp = model.prepare(x)
        self._second_phase(model, x, xp, free, y, K, update, record)
        return Processes({k: torch.stack(v) for k, v in neurons.items()},
                         {k: torch.stack(v) for k, v in weights.items()})
