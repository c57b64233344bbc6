"""Energy-based (EB) models: ``F`` is exactly ``∂Φ/∂s`` (the paper's Appendix C.2–C.3; docs/models.md).

``Φ = ½(1−ε) Σ‖s^n‖² + ε Σ_edges σ(s^lower)·W·σ(s^upper) + ε Σ b_n·σ(s^n)``,
so ``s^n_{t+1} = (1−ε) s^n + ε σ'(s^n) ⊙ (Σ W σ(·) + b_n)``, including on the
output layer (the authors' code omits ``σ'(s^0)``; the paper has it). The
nudge adds ``β ε (y − s^0)``, hence ``nudge_scale = ε``. With ``clip`` the
state is clipped to [0, 1] after every step, as in the paper's training;
then ``F`` no longer derives from ``Φ`` and ``derives_from_phi`` is False.
``clip_grad`` says how autograd (BPTT) differentiates the clip: ``exact``
(zero gradient where the clip is active, as ``clamp`` and the authors' code)
or ``straight_through`` (gradient 1 everywhere, the values still clipped).
It changes nothing the forward pass computes, so EP is unaffected.
``output_sigma_prime = False`` drops the factor ``σ'(s^0)`` from the output layer's step, as the
authors' code does (results/table1/authors_code_check.md): the step is then not ``∂Φ/∂s`` on that
layer, while ``Φ``'s dependence on ``θ`` (hence EP's ``∂Φ/∂θ``) is unchanged; the GDU theorem, which needs
``F = ∂Φ/∂s``, then does not hold exactly even without the clip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor

from harness.api.components import Param
from harness.api.model import Clamped, State, raw

from .activations import ACTIVATIONS
from .dense import INPUT, DenseRNN, layered_edges
from .init import init_param

#: How autograd differentiates the clip to [0, 1] (see the module docstring).
CLIP_GRADS = ("exact", "straight_through")


class EnergyBased(DenseRNN):
    def __init__(self, sizes: Sequence[int], input_size: int, edges, *, activation: str, eps: float,
                 clip: bool, bias: bool, init: str, bias_groups=None, fast: bool = True,
                 clip_grad: str = "exact", output_sigma_prime: bool = True):
        super().__init__(sizes, input_size, edges, activation, bias, init, bias_groups, fast=fast)
        if clip_grad not in CLIP_GRADS:
            raise ValueError(f"unknown clip_grad {clip_grad!r}; known: {', '.join(CLIP_GRADS)}")
        self.eps = float(eps)
        self.clip = bool(clip)
        self.clip_grad = clip_grad
        self.nudge_scale = self.eps
        self.output_sigma_prime = bool(output_sigma_prime)
        self.derives_from_phi = not self.clip and self.output_sigma_prime
        # the kit checks a step with a clip_range against clip(∂Φ/∂s); without σ'(s^0) the step is not
        # that, so the range is left unset and what depends on the clip itself reads ``clip``
        self.clip_range = (0.0, 1.0) if self.clip and self.output_sigma_prime else None

    def input_activation(self, x: Tensor) -> Tensor:
        return self.act(self.flat_input(x))

    def step(self, x: Tensor | Clamped, state: State, y: Tensor | None = None, beta: float = 0.0) -> State:
        eps = self.eps
        if self.fast and isinstance(x, Clamped):
            # σ and σ' (up to a constant factor k) from one evaluation; the input's part of the drive
            # comes from the cache; the update is one fused multiply-add
            consts = x.cache.get("consts")
            if consts is None or consts["leak"].dtype != state[0].dtype:
                # 0-dim tensors of the state's dtype: a Python float would be wrapped and cast at every op
                # (filled on the device, no host copy: capturable in a CUDA graph)
                ref = state[0]
                consts = x.cache["consts"] = {"leak": ref.new_full((), 1 - eps),
                                              "shift": ref.new_full((), self.act.shift)}
            both = [self._sigma_both(s, consts) for s in state]
            a = [f for f, _, _ in both]
            cached = x.cache["drive"]
            new = [torch.addcmul(s * consts["leak"], g, self.fast_drive(n, a, cached), value=eps * k)
                   if n or self.output_sigma_prime
                   else torch.add(s * consts["leak"], self.fast_drive(n, a, cached), alpha=eps)
                   for n, (s, (_, g, k)) in enumerate(zip(state, both))]
        else:
            ax = self.act(self.flat_input(raw(x)))
            a = [self.act(s) for s in state]
            drives = self.drives(a, ax)
            new = [(1 - eps) * s + eps * (self.act.df(s) * d if n or self.output_sigma_prime else d)
                   for n, (s, d) in enumerate(zip(state, drives))]
        if beta != 0.0 and y is not None:
            new[0] = new[0] + (beta * eps) * (y - state[0])
        if self.clip:
            new = [self._clip(s) for s in new]
        return tuple(new)

    def _clip(self, s: Tensor) -> Tensor:
        """``s`` clipped to [0, 1]; with ``straight_through`` its gradient is the identity's. The
        value is the clamp's exactly (``s − s.detach()`` is an exact zero)."""
        c = s.clamp(0, 1)
        if self.clip_grad == "straight_through" and s.requires_grad:
            return c.detach() + (s - s.detach())
        return c

    def _sigma_both(self, s: Tensor, consts: dict[str, Tensor]) -> tuple[Tensor, Tensor, float]:
        """``(σ(s), g, k)`` with ``σ'(s) = k·g``, in few operations (same values as ``f``, ``df``
        up to rounding)."""
        act = self.act
        if act.name == "sigmoid":  # σ' = 4σ(1 − σ) = 4(σ − σ²)
            f = act.core(torch.add(consts["shift"], s, alpha=act.scale))
            return f, torch.addcmul(f, f, f, value=-1.0), act.scale
        if act.name == "tanh":  # σ' = 1 − σ²
            f = torch.tanh(s)
            return f, 1 - f * f, 1.0
        return act.f(s), act.df(s), 1.0

    def phi(self, x: Tensor, state: State) -> Tensor:
        ax = self.act(self.flat_input(raw(x)))
        a = [self.act(s) for s in state]
        sq = sum((s * s).sum(-1) for s in state)
        return 0.5 * (1 - self.eps) * sq + self.eps * self.coupling(a, ax)

    def explicit_dphi_dtheta(self, x: Tensor | Clamped, state: State) -> dict[str, list[Tensor]]:
        """Explicit ``ε σ(s^lower)ᵀ σ(s^upper)`` (and ``ε Σ σ(s^n)`` for biases)."""
        a = [self.act(s.detach()) for s in state]
        return self.coupling_grads(a, self._ax(x), self.eps)

    def dphi_delta(self, x: Tensor | Clamped, after: State, before: State) -> dict[str, list[Tensor]]:
        if not self.fast:
            return super().dphi_delta(x, after, before)
        a1 = [self.act(s.detach()) for s in after]
        a0 = [self.act(s.detach()) for s in before]
        return self.coupling_delta(a1, a0, self._ax(x), self.eps)


class EBNet(EnergyBased):
    """Layered energy-based net (Appendix C.3); F = ∂Φ/∂s exactly unless clip

    Layered EB net ``input – hidden… – output``; ``hidden`` listed input → output.
    """

    params: ClassVar[tuple[Param, ...]] = (
        Param("hidden", list[int], [512], "hidden layer sizes, listed input → output", min=1, max=10**7),
        Param("input_size", int, 784, "input units", min=1, max=10**7),
        Param("output_size", int, 10, "output units (classes)", min=1, max=10**7),
        Param("activation", str, "tanh", "σ", choices=tuple(ACTIVATIONS)),
        Param("eps", float, 0.08, "Euler step ε; the nudge is βε(y − s⁰)"),
        Param("clip", bool, False, "clip neurons to [0, 1] after each step (paper's training); "
              "breaks F = ∂Φ/∂s"),
        Param("bias", bool, True, "one bias per layer, entering Φ as ε b·σ(s)"),
        init_param(),
        Param("clip_grad", str, "exact", "how BPTT differentiates the clip: exact (zero where "
              "it clips, as clamp and the authors' code) or straight_through (identity); the "
              "clipped values are the same, EP is unaffected", choices=CLIP_GRADS),
        Param("output_sigma_prime", bool, True, "keep the factor σ'(s⁰) in the output layer's step (the "
              "paper's F = ∂Φ/∂s); false drops it, as the authors' code does", quiet_default=True),
    )
    example: ClassVar[dict | None] = {"hidden": [7, 5], "input_size": 6, "output_size": 3}

    #: torch.compile of the training step, measured correct and faster for EP and BPTT on EB-1h (2.1×)
    #: and EB-2h (1.3–1.4×) by the speed suite (results/speed/): the train kind's compile = "auto" uses it
    compile_pays = True

    def __init__(self, hidden: Sequence[int] = (512,), input_size: int = 784, output_size: int = 10,
                 activation: str = "tanh", eps: float = 0.08, clip: bool = False, bias: bool = True,
                 init: str = "glorot", clip_grad: str = "exact", output_sigma_prime: bool = True,
                 fast: bool = True):
        sizes = [int(output_size)] + [int(h) for h in reversed(list(hidden))]
        super().__init__(sizes, input_size, layered_edges(len(sizes)), activation=activation, eps=eps,
                         clip=clip, bias=bias, init=init, fast=fast, clip_grad=clip_grad,
                         output_sigma_prime=output_sigma_prime)


class ToyModel(EnergyBased):
    """Toy EB model of Appendix C.2: input, hidden, output all connected, no lateral connections; F =
    ∂Φ/∂s exactly

    Appendix C.2: input, hidden and output all connected, no lateral connections.
    """

    params: ClassVar[tuple[Param, ...]] = (
        Param("input_size", int, 10, "input units", min=1, max=10**7),
        Param("hidden_size", int, 50, "hidden units", min=1, max=10**7),
        Param("output_size", int, 5, "output units (classes)", min=1, max=10**7),
        Param("activation", str, "tanh", "σ", choices=tuple(ACTIVATIONS)),
        Param("eps", float, 0.08, "Euler step ε of the energy dynamics"),
        Param("bias", bool, False, "biases (not in the paper's equations)"),
        init_param(),
    )
    example: ClassVar[dict | None] = {"input_size": 6, "hidden_size": 7, "output_size": 3}

    def __init__(self, input_size: int = 10, hidden_size: int = 50, output_size: int = 5,
                 activation: str = "tanh", eps: float = 0.08, bias: bool = False, init: str = "glorot",
                 fast: bool = True):
        edges = [("W1x", 1, INPUT), ("W0x", 0, INPUT), ("W01", 0, 1)]
        super().__init__([int(output_size), int(hidden_size)], input_size, edges, activation=activation,
                         eps=eps, clip=False, bias=bias, init=init, bias_groups={1: "W1x", 0: "W01"}, fast=fast)
