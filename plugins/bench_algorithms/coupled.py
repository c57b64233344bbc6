"""Coupled learning (Stern, Hexner, Rocks & Liu 2021; one of the seven algorithms of Scellier et al. 2023),
written once against ConvergentRNN.

EP nudges the output with a force ``β(y − s⁰)`` and lets every layer move; coupled learning *clamps* it:
from the free fixed point ``s_*``, the output layer is held at ``s⁰_* − n·∂ℓ/∂s⁰(s_*)`` (for the squared
error ``s⁰_* + n(y − s⁰_*)``, a point between the free output and the target) while the other layers take
K free steps. Its update has EP's form, ``(∂Φ/∂θ(s^{n₂}) − ∂Φ/∂θ(s^{n₁})) / (n₂ − n₁)``, with the
variants of EP's nudges (``coupled`` ``(0, β)``, ``coupled-negative`` ``(−β, 0)``, ``coupled-centered``
``(−β, β)``). The clamp is a state, not a force, so there is no ``nudge_scale`` to divide by.
``contrastive`` learning is ``coupled`` at β = 1 (the output clamped to the target). It is not EP: its
update does not tend to the gradient as β → 0 in general (the clamp ignores how the output would
respond to the nudge; measured on a small EB net in tests/test_coupled.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor

from harness.api.algorithm import Processes
from harness.api.components import Param
from harness.api.model import Clamped, ConvergentRNN, State, capability
from harness.api.optimizer import optimizer_params

from .ep import EP
from .params import beta_param, relaxation_params


class CoupledLearning(EP):
    """Coupled learning (Stern et al. 2021; Scellier et al. 2023): the output clamped at s⁰ − β·∂ℓ/∂s⁰ from
    the free state while the other layers relax, EP's update formula over the clamps (0, β); not a
    gradient estimator

    :class:`EP` whose second phases clamp the output layer instead of nudging it; the variants below fix
    the clamps as EP's do its nudges.
    """

    params: ClassVar[tuple[Param, ...]] = (
        beta_param("clamping strength β: the output held at s⁰ − β·∂ℓ/∂s⁰, between the free output and the "
                   "target"), *relaxation_params(), *optimizer_params())

    def __init__(self, beta: float = 0.1, **kwargs: Any):
        if "random_sign" in kwargs:
            raise ValueError("coupled learning has no random_sign: choose a variant (coupled-negative, "
                             "coupled-centered)")
        super().__init__(beta, **kwargs)

    def check_model(self, model: ConvergentRNN) -> None:
        """Refuse a model without an output layer in the state (a readout in the loss)."""
        if capability(model, "loss_groups"):
            raise ValueError(f"coupled learning clamps the output layer; {type(model).__name__} has none (its "
                             f"readout is in the loss: loss_groups {list(capability(model, 'loss_groups'))}); "
                             "use loss = \"squared_error\", or ep")

    def train_step(self, model: ConvergentRNN, x: Tensor, y: Tensor, *, T: int, K: int) -> dict[str, Tensor]:
        self.check_model(model)
        return super().train_step(model, x, y, T=T, K=K)

    def effective_nudge(self, model: ConvergentRNN, n1: float, n2: float) -> float:
        """A clamp is a state: the update divides by ``n₂ − n₁`` alone."""
        return n2 - n1

    def clamped(self, model: ConvergentRNN, free: State, y: Tensor, n: float) -> Tensor:
        """The output layer's clamp for the nudge ``n``: ``s⁰_* − n·∂ℓ/∂s⁰(s_*)``, as it is (a negative ``n``
        may put it outside a σ output's range; Scellier et al.'s output is linear)."""
        g = model.dloss_ds(free, y)[0]
        return free[0] if g is None else free[0] - n * g

    def phase_step(self, model: ConvergentRNN, free: State, y: Tensor, n: float) -> Callable[..., State]:
        """One step (or asynchronous sweep: ``nudged_schedule``) of every layer but the output, held at its
        clamp for ``n`` (and seen there); EP's second phase, trajectory and processes then run on it."""
        out = self.clamped(model, free, y, n)

        def step(x: Tensor | Clamped, state: State, *_: Any) -> State:
            return (out, *model.step(x, (out, *state[1:]))[1:])
        return self.sweeping(step)

    @torch.no_grad()
    def second_phase(self, model: ConvergentRNN, xp: Tensor | Clamped, free: State, y: Tensor, n: float,
                     K: int) -> State:
        """K steps (or sweeps) of :meth:`phase_step` from the free state (never the model's nudged relax)."""
        step, state = self.phase_step(model, free, y, n), free
        for _ in range(K):
            state = step(xp, state)
        return state

    def processes(self, model: ConvergentRNN, x: Tensor, y: Tensor, *, T: int, K: int) -> Processes:
        """EP's processes over the clamped second phases (the first step includes the clamp's jump)."""
        self.check_model(model)
        return super().processes(model, x, y, T=T, K=K)


class CoupledNegative(CoupledLearning):
    """Coupled learning with the clamps (−β, 0) (Scellier et al. 2023)

    :class:`CoupledLearning` with ``variant = "negative"``.
    """

    def __init__(self, beta: float = 0.1, **kwargs: Any):
        super().__init__(beta, variant="negative", **kwargs)


class CoupledCentered(CoupledLearning):
    """Coupled learning with the clamps (−β, +β) (Scellier et al. 2023)

    :class:`CoupledLearning` with ``variant = "centered"``.
    """

    def __init__(self, beta: float = 0.1, **kwargs: Any):
        super().__init__(beta, variant="centered", **kwargs)


class Contrastive(CoupledLearning):
    """Contrastive learning (Movellan 1991; Scellier et al. 2023): the output clamped to the target from the
    free state, (∂Φ/∂θ(clamped) − ∂Φ/∂θ(free)); coupled learning at β = 1

    :class:`CoupledLearning` with β = 1 (the clamp s⁰ − ∂ℓ/∂s⁰ is the target for the squared error).
    """

    params: ClassVar[tuple[Param, ...]] = (*relaxation_params(), *optimizer_params())

    def __init__(self, **kwargs: Any):
        if "beta" in kwargs:
            raise ValueError("contrastive learning clamps the output to the target (β = 1); for another β use "
                             "coupled")
        super().__init__(1.0, **kwargs)


#: The registered variants of :class:`CoupledLearning`.
COUPLED_VARIANTS = (CoupledNegative, CoupledCentered, Contrastive)
