"""P-conv (Appendix D): prototypical convolutional net, conv–pool layers then one FC layer.

State (paper's labels): ``s0`` the output, ``h0`` the conv layer next to the
classifier (flattened into it), ``h1`` … up to the one fed by the input.
Upward: ``P(W * h^{n+1} + b)`` (convolution then max-pooling); downward:
unpooling with the *current* argmax indices of ``W * h^{n+1}``, then the
transposed convolution (flipped kernel) — exactly ``∂/∂h^{n+1}`` of
``h^n • P(W * h^{n+1})`` (Lemma 5). ``Φ = s0·(W_fc F(h0) + b) +
Σ h^n • P(W * h^{n+1} + b)``; ``F ≈ ∂Φ/∂s`` ignoring σ, so the theorem is
approximate here.

Fast paths (``fast = True``; ``False`` is the generic path): :meth:`prepare`
caches the input's ``P(W * x + b)`` with its argmax indices (the drive of the
layer fed by the input, constant during a mini-batch), and ``∂Φ/∂θ`` uses
explicit formulas (unpool with the current indices, then the convolution's
weight gradient; EP's difference needs one weight gradient for the input
convolution, whose indices are the same at both ends). The two-chain trick of
the layered P nets does not apply: the downward term into ``h^{n+1}`` is
unpooled with the argmax indices of ``W * h^{n+1}``, so a layer's update
depends on its own previous value.

Seed members (:func:`harness.api.model.stack_members`): with ``members = S`` every
parameter has a leading dimension ``S``; the state is ``(S, B, 10)`` for ``s0``
and ``(S, B, C, H, W)`` for the conv layers, and an input is shared,
``(B, *input_shape)`` or ``(B, flat)``, or one batch per member, ``(S, B, …)``.
The members are folded into the channels, ``(B, S·C, H, W)``, and run as one
grouped convolution (``groups = S``; kernels ``(S·Cout, Cin, k, k)``), as one
grouped transposed convolution and one grouped weight gradient; pooling and
unpooling act per channel anyway, and the FC layer is a batched matmul. A
shared input needs no grouping: one convolution with every member's kernels.
The conv layers' states are laid out ``(B, S, C, H, W)`` in memory, so folding
them is a view. Without members (``members = 0``) nothing is folded or grouped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as Fn
import torch.nn.grad
from torch import Tensor, nn

from harness.api.components import Param
from harness.api.model import Clamped, ConvergentRNN, State, raw

from .activations import ACTIVATIONS, get_activation
from .init import init_bias, init_param, init_weight

#: Where the output's nudge enters the step (``nudge_in_activation``): outside σ as the 2019 paper's P
#: nets, or inside as the DCHN of Laborieux et al.'s code.
NUDGES = ("outside", "inside")
#: The loss: the paper's ½‖s⁰ − y‖² on an output layer in the state, or the cross-entropy of a readout
#: ``z = W_fc·flatten(h⁰) + b_fc`` outside Φ (Laborieux et al. 2021; ``fc`` is then a loss group).
LOSSES = ("squared_error", "cross_entropy")


#: The output layer's activation: σ like every layer, or linear (Scellier et al. 2023's DCHN).
OUTPUTS = ("sigma", "linear")


def output_param() -> Param:
    """The ``output`` parameter of the conv nets (quiet: σ leaves every run id as it was)."""
    return Param("output", str, "sigma", "the output layer's step: sigma, s⁰ ← σ(W·h⁰ + b) like every layer; "
                 "linear, s⁰ ← W·h⁰ + b (plus the nudge), Scellier et al. 2023's DCHN output (not with the "
                 "cross-entropy readout, which has no output layer)", choices=OUTPUTS, quiet_default=True)


def loss_param() -> Param:
    """The ``loss`` parameter of the conv nets (quiet: the squared error leaves every run id as it was)."""
    return Param("loss", str, "squared_error", "squared_error: the paper's ½‖s⁰ − y‖², s⁰ an output layer in "
                 "the state and in Φ; cross_entropy: Laborieux et al. 2021's readout z = W_fc·h⁰ + b_fc, in ℓ = "
                 "CE(z, y) and not in Φ, nudging h⁰ by β·W_fcᵀ(y − softmax(z)); predicts argmax z",
                 choices=LOSSES, quiet_default=True)


def _identity(x: Tensor) -> Tensor:
    return x


class PConvNet(ConvergentRNN):
    """Prototypical conv net (Appendix D): conv–maxpool layers, then FC"""

    params: ClassVar[tuple[Param, ...]] = (
        Param("input_shape", list[int], [1, 28, 28], "channels, height, width of the input", min=1, max=10**7),
        Param("channels", list[int], [32, 64], "feature maps of each conv layer, input → output",
              min=1, max=10**7),
        Param("kernel", int, 5, "square kernel size (stride 1)", min=1, max=999),
        Param("pool", int, 2, "max-pool size and stride", min=1, max=999),
        Param("output_size", int, 10, "output units (classes)", min=1, max=10**7),
        Param("activation", str, "hard_sigmoid", "σ", choices=tuple(ACTIVATIONS)),
        Param("bias", bool, True, "one bias per layer (per channel for conv layers)"),
        init_param(),
        Param("padding", int, 0, "zero padding of each convolution (the paper's P-conv: 0)", min=0, max=999,
              quiet_default=True),
        loss_param(),
        output_param(),
    )
    example: ClassVar[dict | None] = {"input_shape": [1, 12, 12], "channels": [2, 3], "kernel": 3, "output_size": 3}

    derives_from_phi = False
    nudge_scale = 1.0
    supports_members = True
    #: torch.compile of the step, measured by the speed suite (results/speed/): BPTT 1.2× faster, EP 0.7×
    compile_pays = ("bptt",)

    def __init__(self, input_shape: Sequence[int] = (1, 28, 28), channels: Sequence[int] = (32, 64),
                 kernel: int = 5, pool: int = 2, output_size: int = 10,
                 activation: str = "hard_sigmoid", bias: bool = True, init: str = "glorot",
                 fast: bool = True, padding: int | Sequence[int] = 0, nudge: str = "outside",
                 loss: str = "squared_error", output: str = "sigma"):
        super().__init__()
        self.fast = bool(fast)
        if nudge not in NUDGES:
            raise ValueError(f"nudge must be one of {', '.join(NUDGES)}, got {nudge!r}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
        if output == "linear" and loss == "cross_entropy":
            raise ValueError("output = \"linear\" is the output layer's step; with loss = \"cross_entropy\" there "
                             "is no output layer (the readout is linear already): leave output out")
        #: the cross-entropy readout: no output layer in the state; ``fc`` enters ℓ only
        self.cross_entropy = loss == "cross_entropy"
        self.loss_groups = ("fc",) if self.cross_entropy else ()
        self._h = 0 if self.cross_entropy else 1  # index of h⁰ in the state
        self.nudge_in_activation = nudge == "inside"
        self.input_shape = tuple(int(v) for v in input_shape)
        self.kernel, self.pool = int(kernel), int(pool)
        self.act = get_activation(activation)
        nconv = len(channels)
        pads = [int(padding)] * nconv if isinstance(padding, int) else [int(p) for p in padding]
        if len(pads) != nconv:
            raise ValueError(f"padding lists {len(pads)} values for {nconv} conv layers: give one per layer "
                             "(input → output) or one number for all")
        self.padding: dict[str, int] = {}  # conv{n} -> its zero padding
        # channels are listed input → output; conv{n} produces h^n (n = 0 next to the classifier).
        chans = [self.input_shape[0]] + [int(c) for c in channels]  # input → output
        side = self.input_shape[1:]
        self.conv_shapes: list[tuple[int, ...]] = []  # (C, H, W) of h^n, input → output order
        self.w = nn.ParameterDict()
        self.b = nn.ParameterDict()
        self.group_order: list[str] = []
        for i in range(nconv):
            n = nconv - 1 - i
            cin, cout = chans[i], chans[i + 1]
            self.padding[f"conv{n}"] = pads[i]
            side = tuple((d + 2 * pads[i] - self.kernel + 1) // self.pool for d in side)
            if min(side) < 1:
                raise ValueError(f"input {self.input_shape} is too small for {nconv} conv layers of kernel "
                                 f"{self.kernel}, padding {pads} and pool {self.pool}")
            self.conv_shapes.append((cout, *side))
            w = nn.Parameter(torch.empty(cout, cin, self.kernel, self.kernel))
            init_weight(w, fan_in=cin * self.kernel ** 2, fan_out=cout * self.kernel ** 2, how=init)
            self.w[f"conv{n}"] = w
            if bias:
                b = nn.Parameter(torch.empty(cout))
                init_bias(b, fan_in=cin * self.kernel ** 2, how=init)
                self.b[f"conv{n}"] = b
            self.group_order.append(f"conv{n}")
        self.nconv = nconv
        self.h_shapes = list(reversed(self.conv_shapes))  # h0, h1, ...
        flat = self.h_shapes[0][0] * self.h_shapes[0][1] * self.h_shapes[0][2]
        wfc = nn.Parameter(torch.empty(int(output_size), flat))
        init_weight(wfc, fan_in=flat, fan_out=int(output_size), how=init)
        self.w["fc"] = wfc
        if bias:
            bfc = nn.Parameter(torch.empty(int(output_size)))
            init_bias(bfc, fan_in=flat, how=init)
            self.b["fc"] = bfc
        self.group_order.append("fc")
        self.output_size = int(output_size)
        self.layer_names = (() if self.cross_entropy else ("s0",)) + tuple(f"h{n}" for n in range(nconv))
        #: the output layer's σ: the net's own, or the identity (a linear output)
        self.out_act = self.act if output == "sigma" else _identity
        # s ← σ(∂Φ/∂s) + nudge, checked by the kit (per layer where the output is linear)
        self.step_activation = self.act if output == "sigma" else (self.out_act,) + (self.act,) * nconv
        self._sample_numel = math.prod(self.input_shape)

    @property  # type: ignore[misc]  # read-only here (the base's setter is for models that assign it)
    def num_classes(self) -> int:
        return self.output_size

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {g: [self.w[g]] + ([self.b[g]] if g in self.b else []) for g in self.group_order}

    # -- seed members: folded into the channels ------------------------------------
    def _per_member(self, x: Tensor) -> bool:
        """Whether a stacked model's input holds one batch per member, ``(S, B, sample)``, rather
        than one shared batch ``(B, sample)``; a sample is ``input_shape`` or flat."""
        sample = tuple(x.shape[2:])
        return bool(self.members) and (sample == self.input_shape or sample == (self._sample_numel,))

    def _fold(self, h: Tensor) -> Tensor:
        """``(S, B, C, H, W)`` → ``(B, S·C, H, W)``, what a grouped convolution takes (identity
        without members). A view when ``h`` is an :meth:`_unfold` result, as the states are."""
        return h.transpose(0, 1).flatten(1, 2) if self.members else h

    def _folds(self, hs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """:meth:`_fold` of each conv layer's state."""
        return tuple(self._fold(h) for h in hs) if self.members else hs

    def _unfold(self, h: Tensor) -> Tensor:
        """``(B, S·C, H, W)`` → ``(S, B, C, H, W)``, a view (identity without members)."""
        return h.unflatten(1, (self.members, -1)).transpose(0, 1) if self.members else h

    def _kernel(self, n: int) -> Tensor:
        """``conv{n}``'s weight as ``conv2d`` takes it: members stacked into the output channels,
        ``(S·Cout, Cin, k, k)``; ``conv_transpose2d`` with ``groups = S`` takes the same."""
        w = self.w[f"conv{n}"]
        return w.flatten(0, 1) if self.members else w

    def _fc(self, h0: Tensor) -> Tensor:
        """``W_fc F(h0) + b`` (batched over the members)."""
        out = h0.flatten(-3) @ self.w["fc"].mT
        if "fc" in self.b:
            out = out + (self.b["fc"].unsqueeze(-2) if self.members else self.b["fc"])
        return out

    def init_state(self, x: Tensor | Clamped) -> State:
        x = raw(x)
        B = x.shape[1] if self._per_member(x) else x.shape[0]
        kw: dict[str, Any] = {"dtype": x.dtype, "device": x.device}
        if not self.members:
            out = () if self.cross_entropy else (torch.zeros(B, self.output_size, **kw),)
            return out + tuple(torch.zeros(B, *shape, **kw) for shape in self.h_shapes)
        S = self.members  # conv layers laid out (B, S, C, H, W) in memory, so that _fold is a view
        out = () if self.cross_entropy else (torch.zeros(S, B, self.output_size, **kw),)
        return out + tuple(torch.zeros(B, S, *shape, **kw).transpose(0, 1) for shape in self.h_shapes)

    def _image(self, x: Tensor) -> Tensor:
        """The input as ``conv2d`` takes it: ``(B, C, H, W)``; one batch per member is folded,
        ``(B, S·C, H, W)``; a shared batch stays as it is (one convolution with every member's
        kernels gives the folded output)."""
        if self._per_member(x):
            return self._fold(x.reshape(*x.shape[:2], *self.input_shape))
        return x.reshape(x.shape[0], *self.input_shape)

    def _up(self, n: int, below: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``P(W_n * below + b)``, the argmax indices and the pre-pool map (all folded)."""
        w, b = self._kernel(n), self.b[f"conv{n}"] if f"conv{n}" in self.b else None
        if b is not None and self.members:
            b = b.flatten()
        z = Fn.conv2d(below, w, b, padding=self.padding[f"conv{n}"], groups=below.shape[1] // w.shape[1])
        p, idx = Fn.max_pool2d(z, self.pool, return_indices=True)
        return p, idx, z

    def prepare(self, x: Tensor) -> Tensor | Clamped:
        """Fast path: the input layer's ``P(W * x + b)``, indices and pre-pool map, once per batch."""
        if not self.fast:
            return x
        img = self._image(raw(x))
        return Clamped(raw(x), {"img": img, "up": self._up(self.nconv - 1, img)})

    def _ups(self, x: Tensor | Clamped, fh: tuple[Tensor, ...]) -> list[tuple[Tensor, Tensor, Tensor]]:
        """:meth:`_up` of every conv layer, given the folded hidden layers ``fh``."""
        if self.fast and isinstance(x, Clamped):
            top = self.nconv - 1
            return [self._up(n, fh[n + 1]) for n in range(top)] + [x.cache["up"]]
        img = self._image(raw(x))
        return [self._up(n, fh[n + 1] if n + 1 < self.nconv else img) for n in range(self.nconv)]

    def _nudged(self, pre: Tensor, nudge: Tensor | None, act: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """σ(pre + nudge) (inside: the step of Φ − βℓ) or σ(pre) + nudge (outside: the paper's P nets)."""
        act = self.act if act is None else act
        if nudge is None:
            return act(pre)
        return act(pre + nudge) if self.nudge_in_activation else act(pre) + nudge

    def step(self, x: Tensor | Clamped, state: State, y: Tensor | None = None, beta: float = 0.0) -> State:
        hs = state[self._h:]
        fh = self._folds(hs)
        ups = self._ups(x, fh)
        new: list[Tensor] = []
        top: Tensor | None = None  # the cross-entropy's nudge of h⁰, −β·∂CE/∂h⁰ (nothing above h⁰ in Φ)
        if self.cross_entropy:
            if beta != 0.0 and y is not None:
                g = self.dloss_ds(state, y)[0]
                assert g is not None  # ℓ depends on h⁰
                top = self._fold(-beta * g)
        else:
            s0 = state[0]
            new.append(self._nudged(self._fc(hs[0]), beta * (y - s0) if beta != 0.0 and y is not None else None,
                                    self.out_act))
        for n in range(self.nconv):
            if n == 0:
                if self.cross_entropy:
                    new.append(self._unfold(self._nudged(ups[0][0], top)))
                    continue
                down = self._fold((s0 @ self.w["fc"]).reshape(hs[0].shape))
            else:
                _, idx, z = ups[n - 1]
                unpooled = Fn.max_unpool2d(fh[n - 1], idx, self.pool,  # type: ignore[arg-type]  # int: stub omits it
                                           output_size=z.shape[-2:])
                down = Fn.conv_transpose2d(unpooled, self._kernel(n - 1), padding=self.padding[f"conv{n - 1}"],
                                           groups=self.members or 1)
            new.append(self._unfold(self.act(ups[n][0] + down)))
        return tuple(new)

    def phi(self, x: Tensor, state: State) -> Tensor:
        img = self._image(raw(x))
        hs = state[self._h:]
        fh = self._folds(hs)
        total = torch.zeros(hs[0].shape[:-3], dtype=hs[0].dtype, device=hs[0].device) if self.cross_entropy \
            else (state[0] * self._fc(hs[0])).sum(-1)
        for n in range(self.nconv):
            p, _, _ = self._up(n, fh[n + 1] if n + 1 < self.nconv else img)
            total = total + (hs[n] * self._unfold(p)).flatten(-3).sum(-1)
        return total

    # -- the cross-entropy readout (loss = "cross_entropy") --------------------------
    def loss(self, state: State, y: Tensor) -> Tensor:
        """ℓ per sample: ½‖s⁰ − y‖², or the cross-entropy ``−Σ y·log softmax(z)`` of the readout z."""
        if not self.cross_entropy:
            return super().loss(state, y)
        return -(y * torch.log_softmax(self._fc(state[0]), -1)).sum(-1)

    def dloss_ds(self, state: State, y: Tensor) -> tuple[Tensor | None, ...]:
        """∂ℓ/∂s; for the cross-entropy ``W_fcᵀ(softmax(z) − y)`` on h⁰, nothing on the other layers."""
        if not self.cross_entropy:
            return super().dloss_ds(state, y)
        h0 = state[0]
        g = (torch.softmax(self._fc(h0), -1) - y) @ self.w["fc"]
        return (g.reshape(h0.shape),) + (None,) * (len(state) - 1)

    def predict(self, state: State) -> Tensor:
        return self.labels(self._fc(state[0])) if self.cross_entropy else super().predict(state)

    # -- explicit ∂Φ/∂θ (fast path) ------------------------------------------------
    def _conv_grads(self, n: int, h: Tensor, up: tuple[Tensor, Tensor, Tensor], below: Tensor) -> list[Tensor]:
        """∂(h • P(W * below + b))/∂(W, b): unpool ``h`` (folded) with the indices, then the weight
        gradient (per member: grouped as the convolution was)."""
        _, idx, z = up
        g = Fn.max_unpool2d(h, idx, self.pool,  # type: ignore[arg-type]  # an int kernel: torch's stub omits it
                            output_size=z.shape[-2:])
        w = self._kernel(n)
        # convolution_backward is not autocast: under bfloat16 autocast the states are bfloat16 and the
        # clamped input float32, so both go in the weight's dtype (where the update accumulates)
        below, g = below.to(w.dtype), g.to(w.dtype)
        out = [torch.nn.grad.conv2d_weight(below, w.shape, g, padding=self.padding[f"conv{n}"],
                                           groups=below.shape[1] // w.shape[1])
               .view_as(self.w[f"conv{n}"])]
        if f"conv{n}" in self.b:
            out.append(g.sum((0, 2, 3)).view_as(self.b[f"conv{n}"]))
        return out

    def _fc_grads(self, s0: Tensor, h0: Tensor) -> list[Tensor]:
        out = [s0.mT @ h0.flatten(-3)]
        if "fc" in self.b:
            out.append(s0.sum(-2))
        return out

    def _no_fc(self) -> list[Tensor]:
        """∂Φ/∂θ of the cross-entropy readout: zero (it is in ℓ, not Φ)."""
        return [torch.zeros_like(p) for p in self.param_groups()["fc"]]

    def _belows(self, x: Tensor | Clamped, fh: tuple[Tensor, ...]) -> list[Tensor]:
        img = x.cache["img"] if isinstance(x, Clamped) else self._image(raw(x))
        return [fh[n + 1] if n + 1 < self.nconv else img for n in range(self.nconv)]

    def dphi_dtheta(self, x: Tensor | Clamped, state: State) -> dict[str, list[Tensor]]:
        if not self.fast:
            return ConvergentRNN.dphi_dtheta(self, x, state)
        state = tuple(s.detach() for s in state)
        with torch.no_grad():
            fh = self._folds(state[self._h:])
            ups, belows = self._ups(x, fh), self._belows(x, fh)
            out = {f"conv{n}": self._conv_grads(n, fh[n], ups[n], belows[n]) for n in range(self.nconv)}
            out["fc"] = self._fc_grads(state[0], state[1]) if not self.cross_entropy else self._no_fc()
        return {g: out[g] for g in self.group_order}

    def dphi_delta(self, x: Tensor | Clamped, after: State, before: State) -> dict[str, list[Tensor]]:
        if not self.fast:
            return super().dphi_delta(x, after, before)
        a = tuple(s.detach() for s in after)
        b = tuple(s.detach() for s in before)
        with torch.no_grad():
            top = self.nconv - 1
            fa, fb = self._folds(a[self._h:]), self._folds(b[self._h:])
            ua, ub = self._ups(x, fa), self._ups(x, fb)
            ba, bb = self._belows(x, fa), self._belows(x, fb)
            out = {}
            for n in range(self.nconv):
                if n == top:  # same input, same indices: one weight gradient of the difference
                    out[f"conv{n}"] = self._conv_grads(n, fa[n] - fb[n], ua[n], ba[n])
                else:
                    ga = self._conv_grads(n, fa[n], ua[n], ba[n])
                    gb = self._conv_grads(n, fb[n], ub[n], bb[n])
                    out[f"conv{n}"] = [u - v for u, v in zip(ga, gb)]
            if self.cross_entropy:
                out["fc"] = self._no_fc()
            else:
                ga, gb = self._fc_grads(a[0], a[1]), self._fc_grads(b[0], b[1])
                out["fc"] = [u - v for u, v in zip(ga, gb)]
        return {g: out[g] for g in self.group_order}
