"""Prototypical (P) layered nets: ``s^n_{t+1} = σ(W s^{n+1} + Wᵀ s^{n−1} + b)``, dt = 1.

``dt < 1`` makes the step leaky, ``s ← s + dt·(F(s) − s)`` with ``F`` the dt = 1 step (nudge
included): the authors' public code steps its P nets so, with dt = 0.2 by default since a refactor of
2019-11-04 (its first public version stepped them at dt = 1; results/table1/authors_code_history.md),
where the paper's equations have dt = 1. The fixed points are the same; reaching them takes more steps.

``Φ = Σ s^lower·W·s^upper + Σ b·s`` gives ``F ≈ ∂Φ/∂s`` only when ``σ`` is
ignored, so ``derives_from_phi`` is False and the GDU theorem holds only
approximately (the paper's Appendix C.4; docs/models.md). The nudge adds ``β (y − s^0)``.

Fast paths (``fast = True``; see :class:`DenseRNN` for the cached drive):

* the two chains (Appendix C.6): ``s^n_{t+1}`` depends only on ``s^{n±1}_t``
  (and on the clamped input), so the layers with ``n + t`` even and those with
  ``n + t`` odd evolve independently. When the caller promises to use only
  the output layer ``output_at`` steps later (:meth:`steps`), only the chain
  that reaches ``s^0`` then is updated: layer ``n`` at the step producing time
  ``t`` when ``n ≡ output_at − t (mod 2)``. ``s^0`` at ``output_at`` (hence
  the predictions, BPTT's loss and its gradients) is the same as with every
  layer updated; the other layers are stale. Not used with a nudge: ``β(y −
  s^0_t)`` feeds ``s^0_t`` into ``s^0_{t+1}`` and joins the chains, and EP's
  ``∂Φ/∂θ(s_*) = s^n_* s^{n+1}_*ᵀ`` pairs one layer of each chain, so EP needs
  both (its free phase is not shortened).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor

from harness.api.components import Param
from harness.api.model import Clamped, State, raw

from .activations import ACTIVATIONS
from .dense import DenseRNN, layered_edges
from .init import init_param


class PNet(DenseRNN):
    """Layered prototypical net (Appendix C.4), dt = 1 (or leaky); F ≈ ∂Φ/∂s ignoring σ"""

    params: ClassVar[tuple[Param, ...]] = (
        Param("hidden", list[int], [512], "hidden layer sizes, listed input → output", min=1, max=10**7),
        Param("input_size", int, 784, "input units", min=1, max=10**7),
        Param("output_size", int, 10, "output units (classes)", min=1, max=10**7),
        Param("activation", str, "tanh", "σ", choices=tuple(ACTIVATIONS)),
        Param("bias", bool, True, "one bias per layer, entering Φ as b·s"),
        init_param(),
        Param("dt", float, 1.0, "step size: s ← s + dt·(F(s) − s); 1 is the paper's P dynamics, 0.2 "
              "the authors' code's default (same fixed points, slower to reach)", min=1e-6, max=1.0,
              quiet_default=True),
    )
    example: ClassVar[dict | None] = {"hidden": [7, 5], "input_size": 6, "output_size": 3}

    derives_from_phi = False
    nudge_scale = 1.0

    def __init__(self, hidden: Sequence[int] = (512,), input_size: int = 784, output_size: int = 10,
                 activation: str = "tanh", bias: bool = True, init: str = "glorot", fast: bool = True,
                 dt: float = 1.0):
        if not 0.0 < dt <= 1.0:
            raise ValueError(f"dt must be in (0, 1], got {dt}")
        sizes = [int(output_size)] + [int(h) for h in reversed(list(hidden))]
        super().__init__(sizes, input_size, layered_edges(len(sizes)), activation, bias, init, fast=fast)
        self.dt = float(dt)
        if self.dt == 1.0:  # s ← σ(∂Φ/∂s) + nudge, checked by the kit (a leaky step, dt < 1, is not)
            self.step_activation = self.act

    def _leak(self, state: State, new: list[Tensor]) -> State:
        """``s + dt·(new − s)``; at dt = 1 the new state itself (the same tensors, the same bits)."""
        if self.dt == 1.0:
            return tuple(new)
        return tuple(torch.lerp(s, n, self.dt) for s, n in zip(state, new))

    @property
    def compile_pays(self) -> tuple[str, ...]:
        """Where the speed suite measured torch.compile of the step faster (results/speed/): P-1h's EP
        step, 1.4× (its BPTT 1.05×; P-2h and P-3h, whose steps are their 512×512 products, 1.0–1.06×)."""
        return ("ep",) if len(self.sizes) == 2 else ()

    def prepare(self, x: Tensor) -> Tensor | Clamped:
        """Fast path: also fold σ's affine part (``σ(x) = core(scale·x + shift)``) into the cache:
        ``pre[n] = scale·(input drive + b_n) + shift``, so a step is matmuls with ``alpha = scale``
        accumulated onto ``pre[n]``, then ``core``."""
        c = super().prepare(x)
        if isinstance(c, Clamped):
            sc, sh = self.act.scale, self.act.shift
            ref = c.cache["ax"]
            c.cache["pre"] = [d * sc + sh if d is not None
                              else torch.full((size,), sh, dtype=ref.dtype, device=ref.device)
                              for d, size in zip(c.cache["drive"], self.sizes)]
        return c

    def _plan(self) -> list[list[tuple[Tensor, int]]]:
        """Per layer, the (matrix, neighbour) pairs of its drive, looked up once per call of
        :meth:`steps` rather than at every step (``Wᵀ`` views made once too)."""
        plan: list[list[tuple[Tensor, int]]] = []
        for n in range(len(self.sizes)):
            terms = [(self.w[g].mT, up) for g, up in self._from_above[n]]
            terms += [(self.w[g], lo) for g, lo in self._from_below[n]]
            plan.append(terms)
        return plan

    def _fast_step(self, pre: list[Tensor], plan: list[list[tuple[Tensor, int]]], state: State,
                   y: Tensor | None, beta: float, parity: int | None) -> State:
        """One step from the cached ``pre``: per updated layer, matmuls accumulated with ``alpha =
        scale`` onto ``pre[n]``, then σ's core (in place when no graph is recorded)."""
        sc, core, core_ = self.act.scale, self.act.core, self.act.core_
        inplace = not torch.is_grad_enabled()
        new = list(state)
        for n, terms in enumerate(plan):
            if parity is not None and n % 2 != parity:
                continue  # the other chain: cannot reach the output at `output_at`
            out = pre[n]
            for w, j in terms:
                out = (torch.baddbmm if self.members else torch.addmm)(out, state[j], w, alpha=sc)
            new[n] = core_(out) if inplace and out is not pre[n] else core(out)
        if beta != 0.0 and y is not None:
            new[0] = new[0] + beta * (y - state[0])
        return self._leak(state, new)

    def step(self, x: Tensor | Clamped, state: State, y: Tensor | None = None, beta: float = 0.0) -> State:
        if self.fast and isinstance(x, Clamped):
            return self._fast_step(x.cache["pre"], self._plan(), state, y, beta, None)
        new = [self.act(d) for d in self.drives(state, self.flat_input(raw(x)))]
        if beta != 0.0 and y is not None:
            new[0] = new[0] + beta * (y - state[0])
        return self._leak(state, new)

    def steps(self, x: Tensor | Clamped, state: State, n: int, y: Tensor | None = None, beta: float = 0.0,
              *, output_at: int | None = None) -> State:
        if not (self.fast and isinstance(x, Clamped)):
            return super().steps(x, state, n, y, beta, output_at=output_at)
        pre, plan = x.cache["pre"], self._plan()
        # with dt < 1 a layer's next state depends on its own: the two chains are joined
        if output_at is None or (beta != 0.0 and y is not None) or self.dt != 1.0:
            for _ in range(n):
                state = self._fast_step(pre, plan, state, y, beta, None)
            return state
        if output_at < n:
            raise ValueError(f"output_at = {output_at} must be at least the number of steps {n}")
        for i in range(n):
            # the step produces time i + 1; the output at `output_at` needs layers n ≡ output_at − (i + 1)
            state = self._fast_step(pre, plan, state, None, 0.0, (output_at - i - 1) % 2)
        return state

    def phi(self, x: Tensor, state: State) -> Tensor:
        return self.coupling(state, self.flat_input(raw(x)))

    def explicit_dphi_dtheta(self, x: Tensor | Clamped, state: State) -> dict[str, list[Tensor]]:
        """Explicit ``s^lower ᵀ s^upper`` (and ``Σ s^n`` for biases)."""
        return self.coupling_grads([s.detach() for s in state], self._ax(x), 1.0)

    def dphi_delta(self, x: Tensor | Clamped, after: State, before: State) -> dict[str, list[Tensor]]:
        if not self.fast:
            return super().dphi_delta(x, after, before)
        return self.coupling_delta([s.detach() for s in after], [s.detach() for s in before], self._ax(x), 1.0)
