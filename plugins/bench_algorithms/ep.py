"""Equilibrium Propagation with two nudges (Algorithm 1 and its successors), written once
against ConvergentRNN.

From the free fixed point ``s_*``, two second phases with nudges ``n₁ < n₂`` (a nudge of 0 is
``s_*`` itself, no phase run, unless ``zero_phase``) give ``ΔEP_θ = (∂Φ/∂θ(s^{n₂}) − ∂Φ/∂θ(s^{n₁})) / (n₂ − n₁)``:

* ``positive`` ``(0, β)``: the paper's (Scellier & Bengio 2017), bias O(β);
* ``negative`` ``(−β, 0)``: bias O(β) of the opposite sign;
* ``centered`` ``(−β, +β)``: bias O(β²) (Laborieux et al. 2021, Scellier et al. 2023);
* ``random_sign``: one-sided, the sign of β drawn per mini-batch from the run's seed
  (Scellier & Bengio 2017's remedy for the one-sided bias, used in Laborieux et al. 2021).

Every quantity is divided by the *effective* nudge ``(n₂ − n₁) · model.nudge_scale`` (``βε``
for the EB nets, Eq. 35), so that ΔEP compares directly with −∇BPTT.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor

from harness.api.algorithm import Learner, Processes, process_key, step_log
from harness.api.components import Param
from harness.api.model import Clamped, ConvergentRNN, State, nudged_delta
from harness.api.optimizer import optimizer_params
from harness.api.relaxation import SCHEDULES, Relaxed, async_sweep, relax

from .params import WARM_FROM, WARM_RESET, beta_param, relaxation_params

#: The nudges ``(n₁, n₂)`` of each variant, in units of β.
VARIANTS = {"positive": (0.0, 1.0), "negative": (-1.0, 0.0), "centered": (-1.0, 1.0)}


class EP(Learner):
    """Equilibrium Propagation (Algorithm 1; Scellier & Bengio 2017): free phase T steps, nudged phase K
    steps with β, telescoped update divided by the effective nudge β·nudge_scale; bias O(β)

    ``variant`` and ``random_sign`` choose the nudges (the module's docstring); the registered variants
    are the subclasses below, one per choice.
    """

    params: ClassVar[tuple[Param, ...]] = (beta_param(), *relaxation_params(), *optimizer_params())

    #: Its update is derived at the free phase's fixed point (the train kind warns when none is reached).
    assumes_fixed_point = True
    #: Its nudge (never None here: Algorithm declares ``beta: float | None``).
    beta: float

    def __init__(self, beta: float = 0.1, variant: str = "positive", random_sign: bool = False,
                 lr: list[float] | None = None, schedule: str = "sync", tol: float = 0.0, warm_start: bool = False,
                 nudged_schedule: str = "sync", warm_from: str = "free", warm_reset: str = "never",
                 zero_phase: bool = False, **optimizer):
        super().__init__(lr, **optimizer)
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown relaxation schedule {schedule!r}; known: {', '.join(SCHEDULES)}")
        if tol < 0:
            raise ValueError(f"tol must be >= 0, got {tol}")
        #: the free phase: the paper's T synchronous steps, or (async, or tol > 0) harness.api.relaxation.relax
        #: with at most T sweeps, stopped when a sweep moves no unit by tol; EP needs only the fixed point
        self.schedule, self.tol = schedule, float(tol)
        if nudged_schedule not in SCHEDULES:
            raise ValueError(f"unknown nudged_schedule {nudged_schedule!r}; known: {', '.join(SCHEDULES)}")
        #: the second phases: K synchronous steps (the paper's) or K asynchronous sweeps
        self.nudged_schedule = nudged_schedule
        self.relaxed: Relaxed | None = None  # the last free phase run by relax() (a schedule or a tolerance)
        #: training's free phase starts from the previous mini-batch's state (``warm_from``), per model
        self.warm_start = bool(warm_start)
        if warm_from not in WARM_FROM:
            raise ValueError(f"unknown warm_from {warm_from!r}; known: {', '.join(WARM_FROM)}")
        if warm_reset not in WARM_RESET:
            raise ValueError(f"unknown warm_reset {warm_reset!r}; known: {', '.join(WARM_RESET)}")
        if not self.warm_start and (warm_from, warm_reset) != ("free", "never"):
            raise ValueError("warm_from and warm_reset say how a warm start carries the state; set warm_start = "
                             "true, or leave them at their defaults")
        self.warm_from, self.warm_reset = warm_from, warm_reset
        #: a nudge of 0 runs its K steps from the free state (Scellier et al. 2023's code), not s_* itself
        self.zero_phase = bool(zero_phase)
        self._warm: weakref.WeakKeyDictionary[ConvergentRNN, State] = weakref.WeakKeyDictionary()
        self._warm_last: State | None = None  # what the epoch checkpoint keeps
        self._warm_pending: State | None = None  # restored from a checkpoint, for the next model trained
        if beta == 0:
            raise ValueError("EP needs beta != 0 (its updates are divided by beta)")
        if variant not in VARIANTS:
            raise ValueError(f"unknown EP variant {variant!r}; known: {', '.join(VARIANTS)}")
        if random_sign and variant == "centered":
            raise ValueError("random_sign draws the side of a one-sided EP; centered EP has both sides already")
        self.beta, self.variant, self.random_sign = float(beta), variant, bool(random_sign)
        self._generator: torch.Generator | None = None

    @property
    def stateful(self) -> bool:
        return super().stateful or self.random_sign or self.warm_start

    def use_generator(self, generator: torch.Generator) -> None:
        self._generator = generator

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self._generator is not None:
            state["sign_generator"] = self._generator.get_state()
        warm = self._warm_last if self._warm_last is not None else self._warm_pending
        if warm is not None and self.warm_reset != "epoch":  # a checkpoint ends an epoch: the next starts cold
            state["warm_state"] = list(warm)
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if "sign_generator" in state:
            self._generator = torch.Generator()
            self._generator.set_state(state["sign_generator"].cpu())
        self._warm.clear()
        self._warm_last = None
        self._warm_pending = tuple(state["warm_state"]) if "warm_state" in state else None
        if self.warm_reset == "epoch":  # a checkpoint ends an epoch, and the next one starts from zero
            self._warm_pending = None  # (an older checkpoint may still hold a state)

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """The learning-rate schedule's epoch; with ``warm_reset = "epoch"`` the epoch starts from zero."""
        super().start_epoch(epoch, epochs)
        if self.warm_reset == "epoch":
            self._warm.clear()
            self._warm_last = self._warm_pending = None

    def nudges(self, sign: float = 1.0) -> tuple[float, float]:
        """``(n₁, n₂)`` with ``n₁ < n₂`` for a β of the given sign."""
        a, b = VARIANTS[self.variant]
        n1, n2 = a * self.beta * sign, b * self.beta * sign
        return (n1, n2) if n1 < n2 else (n2, n1)

    def _draw_sign(self) -> float:
        if not self.random_sign:
            return 1.0
        if self._generator is None:  # outside a run (a test, a notebook): the global stream
            self._generator = torch.Generator().manual_seed(torch.initial_seed())
        return 1.0 if int(torch.randint(0, 2, (), generator=self._generator)) else -1.0

    def train_step(self, model: ConvergentRNN, x: Tensor, y: Tensor, *, T: int, K: int) -> dict[str, Tensor]:
        """θ += lr · (∂Φ/∂θ(s^{n₂}_K) − ∂Φ/∂θ(s^{n₁}_K)) / ((n₂ − n₁)·scale) / batch: the telescoped
        Σ_t ΔEP_θ(t)."""
        with torch.no_grad():
            xp = model.prepare(x)  # e.g. the input's drive, once per mini-batch (generic: x itself)
        free = self.training_free_phase(model, xp, x, T)
        n1, n2 = self.nudges(self._draw_sign())
        after, before = self.second_phases(model, xp, free, y, K, (n1, n2))
        if self.warm_start and self.warm_from == "second_phase":
            self.remember(model, after)
        delta = nudged_delta(model, xp, after, before, y, (n1, n2))
        k = 1.0 / (self.effective_nudge(model, n1, n2) * free[0].shape[model.batch_dim()])
        self.apply(model, delta, {name: k for name in delta})
        return {**step_log(model, free, y), **self.relaxation_log()}

    def effective_nudge(self, model: ConvergentRNN, n1: float, n2: float) -> float:
        """What EP's update divides by (besides the batch): the nudges' difference as the step applies it,
        ``(n₂ − n₁)·nudge_scale``."""
        return (n2 - n1) * model.nudge_scale

    def training_free_phase(self, model: ConvergentRNN, xp: Tensor | Clamped, x: Tensor, T: int) -> State:
        """A training step's free phase: from zero, or (``warm_start``) from the state the previous step of
        the same model left (``warm_from``), where it has the same layout (a smaller last batch starts from
        zero)."""
        start = model.init_state(x)
        if not self.warm_start:
            return self.free_phase(model, xp, start, T)
        previous = self._warm.get(model)
        if previous is None and self._warm_pending is not None:  # a resumed run: the checkpoint's
            previous, self._warm_pending = self._warm_pending, None
        if previous is not None and len(previous) == len(start) and all(
                p.shape == s.shape and p.dtype == s.dtype and p.device == s.device for p, s in zip(previous, start)):
            start = previous
        free = self.free_phase(model, xp, start, T)
        if self.warm_from == "free":
            self.remember(model, free)
        return free

    def remember(self, model: ConvergentRNN, state: State) -> None:
        """What the next mini-batch's free phase of ``model`` starts from (and the epoch checkpoint keeps)."""
        self._warm[model] = self._warm_last = tuple(t.detach().clone() for t in state)

    def free_phase(self, model: ConvergentRNN, xp: Tensor | Clamped, state: State, T: int) -> State:
        """The free phase to the fixed point (see ``schedule``; the default is the paper's)."""
        if self.schedule == "sync" and self.tol == 0.0:
            return model.relax(xp, state, T)
        self.relaxed = relax(model, xp, state, max_steps=T, tol=self.tol, schedule=self.schedule)
        return self.relaxed.state

    def relaxation_log(self) -> dict[str, Tensor]:
        """With a schedule or a tolerance of its own: the last free phase's sweeps and residual (max |F(s) −
        s|), which the train kind records per epoch; the paper's T synchronous steps log nothing."""
        if self.relaxed is None:
            return {}
        return {"free_sweeps": torch.tensor(float(self.relaxed.sweeps)),
                "free_residual": torch.tensor(self.relaxed.residual)}

    def direction(self, model: ConvergentRNN, xp: Tensor | Clamped, free: State, y: Tensor, K: int,
                  nudges: tuple[float, float] | None = None) -> dict[str, list[Tensor]]:
        """From the free fixed point ``s_*``: K steps with each nudge, then ``∂Φ/∂θ(s^{n₂}) −
        ∂Φ/∂θ(s^{n₁})`` (EP's update before its factor ``1 / ((n₂ − n₁)·nudge_scale·batch)``; a readout
        in ℓ gets its term of ``Φ − n·ℓ``: :func:`~harness.api.model.nudged_delta`)."""
        n1, n2 = self.nudges() if nudges is None else nudges
        after, before = self.second_phases(model, xp, free, y, K, (n1, n2))
        return nudged_delta(model, xp, after, before, y, (n1, n2))

    def second_phases(self, model: ConvergentRNN, xp: Tensor | Clamped, free: State, y: Tensor, K: int,
                      nudges: tuple[float, float]) -> tuple[State, State]:
        """The states after the second phases with ``n₂`` and with ``n₁`` from ``s_*``; a nudge of 0 is
        ``s_*`` itself unless ``zero_phase``."""
        def phase(n: float) -> State:
            return free if n == 0 and not self.zero_phase else self.second_phase(model, xp, free, y, n, K)
        n1, n2 = nudges
        return phase(n2), phase(n1)

    def phase_step(self, model: ConvergentRNN, free: State, y: Tensor, n: float) -> Callable[..., State]:
        """One step of the second phase with nudge ``n`` from ``free``: the model's nudged step, or
        (``nudged_schedule = "async"``) one asynchronous sweep of it; ``step(x, state, *_)``."""
        def step(x: Tensor | Clamped, state: State, *_: Any) -> State:
            return model.step(x, state, y, n)
        return self.sweeping(step)

    def sweeping(self, step: Callable[..., State]) -> Callable[..., State]:
        """``step``, or one asynchronous sweep of it where ``nudged_schedule = "async"``."""
        if self.nudged_schedule == "sync":
            return step

        def sweep(x: Tensor | Clamped, state: State, *_: Any) -> State:
            return async_sweep(step, x, state)
        return sweep

    @torch.no_grad()
    def second_phase(self, model: ConvergentRNN, xp: Tensor | Clamped, free: State, y: Tensor, n: float,
                     K: int) -> State:
        """K steps (or sweeps) of the second phase with nudge ``n`` from the free state."""
        if self.nudged_schedule == "sync":
            return model.relax(xp, free, K, y, n)  # the model's fast path
        step, state = self.phase_step(model, free, y, n), free
        for _ in range(K):
            state = step(xp, state)
        return state

    def processes(self, model: ConvergentRNN, x: Tensor, y: Tensor, *, T: int, K: int) -> Processes:
        """ΔEP_s(t) = (Δs^{n₂}(t) − Δs^{n₁}(t)) / ((n₂ − n₁)·scale) with Δs^n(t) = s^n_{t+1} − s^n_t, and
        the same for ∂Φ/∂θ (β > 0: random_sign draws only in training)."""
        n1, n2 = self.nudges()
        free = self.free_phase(model, x, model.init_state(x), T)
        return combine(model, x.shape[0], [(n, self.trajectory(model, x, free, y, n, K)) for n in (n2, n1)],
                       [1.0, -1.0], self.effective_nudge(model, n1, n2))

    def trajectory(self, model: ConvergentRNN, x: Tensor, free: State, y: Tensor, n: float, K: int) -> Processes | None:
        """:func:`trajectory` of one second phase as this algorithm runs it (per sweep with ``nudged_schedule =
        "async"``, so that the processes still sum to the update)."""
        return trajectory(model, x, free, y, n, K, step=self.phase_step(model, free, y, n), zero=self.zero_phase)


class EPRandomSign(EP):
    """One-sided EP with the sign of β drawn per mini-batch from the run's seed: (0, β) or (−β, 0), so
    that the O(β) bias has no fixed direction (Scellier & Bengio 2017; Laborieux et al. 2021)

    :class:`EP` with ``random_sign = True``.
    """

    def __init__(self, beta: float = 0.1, **kwargs: Any):
        super().__init__(beta, random_sign=True, **kwargs)


class EPNegative(EP):
    """EP with the nudge −β: (∂Φ/∂θ(s*) − ∂Φ/∂θ(s^−β))/β (s* after K more free steps with zero_phase); bias
    O(β), opposite to ep's (Laborieux et al. 2021)

    :class:`EP` with ``variant = "negative"``.
    """

    def __init__(self, beta: float = 0.1, **kwargs: Any):
        super().__init__(beta, variant="negative", **kwargs)


class EPCentered(EP):
    """Centered EP: nudges −β and +β from s*, (∂Φ/∂θ(s^β) − ∂Φ/∂θ(s^−β))/2β; bias O(β²) (Laborieux
    et al. 2021; Scellier et al. 2023)

    :class:`EP` with ``variant = "centered"``.
    """

    def __init__(self, beta: float = 0.1, **kwargs: Any):
        super().__init__(beta, variant="centered", **kwargs)


#: The registered variants of :class:`EP`: subclasses that only fix its nudges (``variant``,
#: ``random_sign``), not its step.
EP_VARIANTS = (EPRandomSign, EPNegative, EPCentered)


def trajectory(model: ConvergentRNN, x: Tensor, free: State, y: Tensor, nudge: complex,
               K: int, step: Callable[..., State] | None = None, zero: bool = False) -> Processes | None:
    """The per-step differences of one second phase from ``s_*`` with ``nudge``: neurons
    ``s_{t+1} − s_t`` (batch mean) and ``∂Φ/∂θ(s_{t+1}) − ∂Φ/∂θ(s_t)`` (batch sum), ``(K, …)`` each;
    None for a nudge of 0 (``s_*`` stays put: every difference is 0) unless ``zero`` (its K steps are run:
    ``zero_phase``). Φ's parameters only
    (:meth:`~harness.api.model.ConvergentRNN.phi_groups`). ``step(x, state, y, nudge)``: the second
    phase's step (default the model's, nudged; coupled learning clamps the output instead)."""
    if nudge == 0 and not zero:
        return None
    groups = model.phi_groups()
    neurons: dict[str, list[Tensor]] = {n: [] for n in model.layer_names}
    weights: dict[str, list[Tensor]] = {process_key(g, i): [] for g, ps in groups.items() for i in range(len(ps))}
    state, prev_g = free, model.dphi_dtheta(x, free)
    for _ in range(K):
        with torch.no_grad():
            new = (model.step if step is None else step)(x, state, y, nudge)  # type: ignore[arg-type]  # complex β: hep.py
        g = model.dphi_dtheta(x, new)
        with torch.no_grad():
            for name, s1, s0 in zip(model.layer_names, new, state):
                neurons[name].append((s1 - s0).mean(0))
            for gname, ps in groups.items():
                for i in range(len(ps)):
                    weights[process_key(gname, i)].append(g[gname][i] - prev_g[gname][i])
        state, prev_g = new, g
    return Processes({k: torch.stack(v) for k, v in neurons.items()},
                     {k: torch.stack(v) for k, v in weights.items()})


def combine(model: ConvergentRNN, batch: int, parts: list[tuple[complex, Processes | None]],
            weights: list[complex], divisor: complex) -> Processes:
    """``Re Σ_k w_k · part_k / divisor`` (weights also divided by the batch): the processes of an
    estimator that combines several second phases. A part that is None counts as zero."""
    out = Processes()
    for what in ("neurons", "weights"):
        total: dict[str, Tensor] = {}
        for (_, part), w in zip(parts, weights):
            if part is None:
                continue
            for key, v in getattr(part, what).items():
                term = v if w == 1.0 else v * w
                total[key] = term if key not in total else total[key] + term
        if not total:  # every part zero (cannot happen with n₁ < n₂, kept for safety)
            raise ValueError("an EP estimator needs at least one nonzero nudge")
        div = divisor * (batch if what == "weights" else 1)
        setattr(out, what, {k: _real(v / div) for k, v in total.items()})
    return out


def _real(t: Tensor) -> Tensor:
    return t.real if t.is_complex() else t
