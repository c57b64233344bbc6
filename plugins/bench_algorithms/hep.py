"""Holomorphic EP (Laborieux & Zenke 2022, "Holomorphic Equilibrium Propagation Computes Exact
Gradients Through Finite Size Oscillations"), written once against ConvergentRNN.

``N`` second phases from the free fixed point ``s_*``, with complex nudges ``β_k = |β| e^{2πik/N}``;
the estimate ``Re (1/N) Σ_k ∂Φ/∂θ(s^{β_k}) / β_k`` is the first Fourier coefficient of
``β ↦ ∂Φ/∂θ(s^β)`` on the circle ``|β|``: the derivative at β = 0 up to terms of order ``|β|^N``
(exact at finite |β| as N grows; N = 2 is centered EP). Since ``Σ_k 1/β_k = 0``, subtracting
``∂Φ/∂θ(s_*)`` changes nothing, so the update is written with :meth:`dphi_delta` as EP's is.

The second phases run on a complex copy of the model: the step must be holomorphic in the
state (tanh, the paper's sigmoid; no clip, no hard sigmoid), which a model declares with
``supports_complex``; the others get a clear error.
"""

from __future__ import annotations

import cmath
import copy
import warnings
import weakref
from typing import ClassVar

import torch
from torch import Tensor

from harness.api.algorithm import Learner, Processes, step_log
from harness.api.components import Param
from harness.api.model import Clamped, ConvergentRNN, State, capability, raw
from harness.api.optimizer import optimizer_params

from .ep import combine, trajectory
from .params import beta_param

COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


class HolomorphicEP(Learner):
    """Holomorphic EP (Laborieux & Zenke 2022): N complex nudges |β|e^{2πik/N}, Re (1/N) Σ_k
    ∂Φ/∂θ(s^β_k)/β_k, exact up to O(|β|^N); N = 2 is centered EP; needs a model with supports_complex
    (tanh or sigmoid, no clip)"""

    params: ClassVar[tuple[Param, ...]] = (
        beta_param("radius |β| of the circle of nudges (the EB nets apply |β|ε)"),
        Param("N", int, 4, "nudges on the circle (2: centered EP)", min=2, max=64),
        *optimizer_params(),
    )

    #: Its update is derived at the free phase's fixed point (the train kind warns when none is reached).
    assumes_fixed_point = True
    #: Its nudge (never None here: Algorithm declares ``beta: float | None``).
    beta: float

    def __init__(self, beta: float = 0.1, N: int = 4, lr: list[float] | None = None, **optimizer):
        super().__init__(lr, **optimizer)
        if beta == 0:
            raise ValueError("holomorphic EP needs |beta| > 0 (the radius of its circle of nudges)")
        if N < 2:
            raise ValueError(f"holomorphic EP needs N >= 2 nudges on the circle, got N = {N}")
        self.beta, self.N = abs(float(beta)), int(N)
        # one complex copy per model, kept while the model lives (a CUDA graph replays into it)
        self._shadows: weakref.WeakKeyDictionary[ConvergentRNN, ConvergentRNN] = weakref.WeakKeyDictionary()

    def nudges(self) -> list[complex]:
        return [self.beta * cmath.exp(2j * cmath.pi * k / self.N) for k in range(self.N)]

    def check_model(self, model: ConvergentRNN) -> None:
        """Refuse a model whose step is not holomorphic (at `bench validate`, and before a run's first step)."""
        if capability(model, "loss_groups"):
            raise ValueError(f"holomorphic EP does not train a readout in the loss ({type(model).__name__} has "
                             f"loss_groups {list(capability(model, 'loss_groups'))}); use loss = "
                             "\"squared_error\", or ep-centered")
        if not capability(model, "supports_complex"):  # bench validate may hand it any registered model
            raise ValueError(f"holomorphic EP needs a model whose step is holomorphic in the state; "
                             f"{type(model).__name__} declares supports_complex = False (e.g. a clip, a hard "
                             "sigmoid or a max-pool); use tanh or the paper's sigmoid without clip, or ep-centered")

    def complex_model(self, model: ConvergentRNN) -> ConvergentRNN:
        """A complex copy of ``model`` holding its current parameters (made once, refreshed per call)."""
        self.check_model(model)
        if model.dtype not in COMPLEX:
            raise ValueError(f"holomorphic EP runs in float32 or float64, not {model.dtype}")
        shadow = self._shadows.get(model)
        if shadow is None:
            with warnings.catch_warnings():  # torch's notice that complex modules are new: we test ours
                warnings.filterwarnings("ignore", message="Complex modules")
                shadow = self._shadows[model] = copy.deepcopy(model).to(COMPLEX[model.dtype])
        with torch.no_grad():
            for c, p in zip(shadow.parameters(), model.parameters()):
                c.copy_(p)
        return shadow

    def _free(self, model: ConvergentRNN, x: Tensor, T: int) -> tuple[ConvergentRNN, Tensor | Clamped, State]:
        """The complex model, its prepared input and the free fixed point (run in the real model:
        the same numbers, at half the cost), as complex tensors."""
        with torch.no_grad():
            free = model.relax(model.prepare(x), model.init_state(x), T)
            cm = self.complex_model(model)
            cdtype = COMPLEX[model.dtype]
            xc = cm.prepare(raw(x).to(cdtype))
        return cm, xc, tuple(s.to(cdtype) for s in free)

    def train_step(self, model: ConvergentRNN, x: Tensor, y: Tensor, *, T: int, K: int) -> dict[str, Tensor]:
        """θ += lr · Re (1/N) Σ_k (∂Φ/∂θ(s^{β_k}_K) − ∂Φ/∂θ(s_*)) / β_k / (scale·batch)."""
        cm, xc, free = self._free(model, x, T)
        delta = self.direction(cm, xc, free, y.to(free[0].dtype), K)
        k = 1.0 / (model.nudge_scale * free[0].shape[model.batch_dim()])
        self.apply(model, delta, {name: k for name in delta})
        real = tuple(s.real for s in free)
        return step_log(model, real, y)

    def direction(self, cm: ConvergentRNN, xc: Tensor | Clamped, free: State, y: Tensor,
                  K: int) -> dict[str, list[Tensor]]:
        """``Re (1/N) Σ_k (∂Φ/∂θ(s^{β_k}) − ∂Φ/∂θ(s_*)) / β_k`` on the complex model (before the factor
        ``1 / (nudge_scale·batch)``)."""
        total: dict[str, list[Tensor]] | None = None
        for b in self.nudges():
            # β is complex, where the model contract says float: check_model made sure that cm supports_complex
            d = cm.dphi_delta(xc, cm.relax(xc, free, K, y, b), free)  # type: ignore[arg-type]  # complex β
            w = 1.0 / (self.N * b)
            total = ({g: [v * w for v in vs] for g, vs in d.items()} if total is None else
                     {g: [t + v * w for t, v in zip(total[g], d[g])] for g in d})
        assert total is not None  # N >= 2 nudges
        return {g: [v.real.contiguous() for v in vs] for g, vs in total.items()}

    def processes(self, model: ConvergentRNN, x: Tensor, y: Tensor, *, T: int, K: int) -> Processes:
        """Re (1/N) Σ_k Δs^{β_k}(t) / β_k / scale, and the same for ∂Φ/∂θ (over the batch)."""
        cm, xc, free = self._free(model, x, T)
        yc = y.to(free[0].dtype)
        parts = [(b, trajectory(cm, raw(xc), free, yc, b, K)) for b in self.nudges()]
        return combine(model, x.shape[0], parts, [1.0 / (self.N * b) for b in self.nudges()], model.nudge_scale)
