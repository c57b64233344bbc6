"""Fully connected convergent RNNs described as a graph of weight edges.

The toy model, the layered energy-based nets and the layered prototypical
nets differ only in which layers are connected and in the form of ``F``; the
edge list below lets one implementation of the connectivity serve all three.
An edge ``(group, lower, upper)`` holds a weight ``W`` of shape
``(size[lower], size[upper])`` so that ``W · a[upper]`` drives layer
``lower`` and ``Wᵀ · a[lower]`` drives ``upper``. ``upper = INPUT`` is the
clamped input ``x``. Layers are numbered as in the paper: 0 is the output.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from harness.api.model import Clamped, ConvergentRNN, State, raw

from .activations import get_activation
from .init import init_bias, init_weight

INPUT = -1


def layered_edges(num_layers: int) -> list[tuple[str, int, int]]:
    """Edges of a layered net with ``num_layers`` state layers, ordered input → output."""
    edges = []
    for n in reversed(range(num_layers)):
        upper = n + 1 if n + 1 < num_layers else INPUT
        up_name = str(n + 1)
        sep = "" if n + 1 < 10 else "_"
        edges.append((f"W{n}{sep}{up_name}", n, upper))
    return edges


class DenseRNN(ConvergentRNN):
    """Shared parameters and connectivity of the fully connected models.

    Fast paths (``fast = True``, the default; ``False`` is the generic path):
    :meth:`prepare` caches the input edges' drive ``W·x + b`` (and every
    layer's bias) once per mini-batch, :meth:`fast_drive` adds only the
    state-dependent terms at each step, and ``∂Φ/∂θ`` uses explicit formulas
    (:meth:`explicit_dphi_dtheta`, :meth:`coupling_delta`).

    Seed members: with ``members = S`` every parameter carries a leading
    dimension ``S`` (:func:`harness.api.model.stack_members` of S models), the state
    is ``(S, batch, units)`` and the same code runs S independent models with
    batched matmuls; an input may be shared ``(batch, in)`` or per member.
    """

    supports_members = True
    #: whether every unit is clipped to [0, 1] after each step (the EB nets set it; a clip is not holomorphic)
    clip: bool = False

    def __init__(self, sizes: Sequence[int], input_size: int, edges: Sequence[tuple[str, int, int]],
                 activation: str, bias: bool, init: str, bias_groups: dict[int, str] | None = None,
                 fast: bool = True):
        super().__init__()
        self.fast = bool(fast)
        self.sizes = list(sizes)
        self.input_size = int(input_size)
        self.edges = list(edges)
        self.act = get_activation(activation)
        self.layer_names = tuple(f"s{n}" for n in range(len(self.sizes)))
        self.w = nn.ParameterDict()
        for group, lower, upper in self.edges:
            fan_in = self.input_size if upper == INPUT else self.sizes[upper]
            w = nn.Parameter(torch.empty(self.sizes[lower], fan_in))
            init_weight(w, fan_in=fan_in, fan_out=self.sizes[lower], how=init)
            self.w[group] = w
        # Each layer's bias joins the group of the weight that feeds it from upstream.
        self.bias_groups: dict[int, str] = {}
        self.b = nn.ParameterDict()
        if bias:
            if bias_groups is None:
                bias_groups = {}
                for group, lower, _ in self.edges:
                    bias_groups.setdefault(lower, group)
            for n, group in bias_groups.items():
                b = nn.Parameter(torch.empty(self.sizes[n]))
                fan_in = sum(self.w[g].shape[1] for g, lo, _ in self.edges if lo == n)
                init_bias(b, fan_in=fan_in, how=init)
                self.b[f"s{n}"] = b
                self.bias_groups[n] = group
        # per layer: (weight, upper) of hidden edges feeding it from above, (weight, lower) from below
        self._from_above: list[list[tuple[str, int]]] = [[] for _ in self.sizes]
        self._from_below: list[list[tuple[str, int]]] = [[] for _ in self.sizes]
        for group, lower, upper in self.edges:
            if upper != INPUT:
                self._from_above[lower].append((group, upper))
                self._from_below[upper].append((group, lower))

    @property  # type: ignore[misc]  # read-only here (the base's setter is for models that assign it)
    def num_classes(self) -> int:
        return self.sizes[0]

    @property
    def supports_complex(self) -> bool:  # type: ignore[override]  # computed here, from the activation and clip
        """tanh and the paper's sigmoid are analytic; the hard sigmoid and a clip are not (``clip``, not
        ``clip_range``, which an EB net without σ'(s⁰) leaves unset though it clips)."""
        return self.act.name in ("tanh", "sigmoid") and not self.clip

    def init_state(self, x: Tensor) -> State:
        x = raw(x)
        lead = (self.members, x.shape[-2]) if self.members else (x.shape[0],)
        return tuple(torch.zeros(*lead, n, dtype=x.dtype, device=x.device) for n in self.sizes)

    def flat_input(self, x: Tensor) -> Tensor:
        """``x`` as ``(batch, input_size)`` (or ``(S, batch, input_size)`` with members)."""
        return x if self.members or x.dim() == 2 else x.flatten(1)

    def _bias(self, b: Tensor) -> Tensor:
        return b.unsqueeze(-2) if self.members else b

    def times_wt(self, a: Tensor, w: Tensor) -> Tensor:
        """``a · Wᵀ``. With members, while a graph is recorded, it is computed as ``(W · aᵀ)ᵀ``: the
        same numbers, but autograd then gives W's gradient in W's own layout rather than transposed,
        which makes BPTT's update of stacked weights much cheaper on a CPU (5 members of P-1h,
        one thread: 9.3 → 6.1 ms per training step, measured)."""
        if self.members and torch.is_grad_enabled():
            return (w @ a.mT).mT.contiguous()
        return a @ w.mT

    # -- fast paths ------------------------------------------------------------
    def input_activation(self, x: Tensor) -> Tensor:
        """What the input edges multiply: ``x`` (P nets) or ``σ(x)`` (EB nets)."""
        return self.flat_input(x)

    def prepare(self, x: Tensor) -> Tensor | Clamped:
        """Fast path: cache ``σ(x)`` and, per layer, the input edges' ``W·σ(x)`` plus the bias."""
        if not self.fast:
            return x
        ax = self.input_activation(raw(x))
        drive: list[Tensor | None] = [None] * len(self.sizes)
        for group, lower, upper in self.edges:
            if upper == INPUT:
                v = self.times_wt(ax, self.w[group])
                d = drive[lower]
                drive[lower] = v if d is None else d + v
        for n in self.bias_groups:
            b = self._bias(self.b[f"s{n}"])
            d = drive[n]
            drive[n] = b if d is None else d + b
        return Clamped(raw(x), {"ax": ax, "drive": drive})

    def fast_drive(self, n: int, a: Sequence[Tensor], cached: Sequence[Tensor | None]) -> Tensor:
        """Layer ``n``'s drive from the cached input part and the neighbours' activations."""
        out = cached[n]
        for group, upper in self._from_above[n]:
            w = self.w[group]
            if out is not None and not self.members:
                out = torch.addmm(out, a[upper], w.t())
            else:
                v = self.times_wt(a[upper], w)
                out = v if out is None else out + v
        for group, lower in self._from_below[n]:
            w = self.w[group]
            if out is not None and not self.members:
                out = torch.addmm(out, a[lower], w)
            else:
                v = a[lower] @ w
                out = v if out is None else out + v
        return out if out is not None else torch.zeros_like(a[n])

    def dphi_dtheta(self, x: Tensor | Clamped, state: State) -> dict[str, list[Tensor]]:
        if not self.fast:
            return ConvergentRNN.dphi_dtheta(self, x, state)
        return self.explicit_dphi_dtheta(x, state)

    def explicit_dphi_dtheta(self, x: Tensor | Clamped, state: State) -> dict[str, list[Tensor]]:
        """Subclasses give the explicit formula; the default is autograd on Φ."""
        return ConvergentRNN.dphi_dtheta(self, x, state)

    def _ax(self, x: Tensor | Clamped) -> Tensor:
        return x.cache["ax"] if isinstance(x, Clamped) else self.input_activation(x)

    def coupling_delta(self, a1: Sequence[Tensor], a0: Sequence[Tensor], ax: Tensor,
                       scale: float) -> dict[str, list[Tensor]]:
        """``coupling_grads(a1) − coupling_grads(a0)``; the input edges need one matmul, not two."""
        out: dict[str, list[Tensor]] = {}
        for group, lower, upper in self.edges:
            if upper == INPUT:
                g = (a1[lower] - a0[lower]).mT @ ax
            else:
                g = a1[lower].mT @ a1[upper] - a0[lower].mT @ a0[upper]
            out[group] = [g.mul_(scale) if scale != 1.0 else g]
        for n, group in self.bias_groups.items():
            g = (a1[n] - a0[n]).sum(-2)
            out[group].append(g.mul_(scale) if scale != 1.0 else g)
        return out

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        groups: dict[str, list[nn.Parameter]] = {}
        for group, _, _ in self.edges:
            groups[group] = [self.w[group]]
        for n, group in self.bias_groups.items():
            groups[group].append(self.b[f"s{n}"])
        return groups

    def drives(self, a: Sequence[Tensor], ax: Tensor) -> list[Tensor]:
        """``Σ W a_upper + Σ Wᵀ a_lower + b`` for every layer, batched."""
        out: list[Tensor | None] = [None] * len(self.sizes)

        def add(n: int, v: Tensor) -> None:
            o = out[n]
            out[n] = v if o is None else o + v

        for group, lower, upper in self.edges:
            w = self.w[group]
            add(lower, (ax if upper == INPUT else a[upper]) @ w.mT)
            if upper != INPUT:
                add(upper, a[lower] @ w)
        for n in self.bias_groups:
            add(n, self._bias(self.b[f"s{n}"]))
        return [o if o is not None else torch.zeros_like(a[n]) for n, o in enumerate(out)]

    def coupling(self, a: Sequence[Tensor], ax: Tensor) -> Tensor:
        """``Σ_edges a_lower · W · a_upper + Σ b · a`` per sample."""
        total = a[0].new_zeros(a[0].shape[:-1])
        for group, lower, upper in self.edges:
            up = ax if upper == INPUT else a[upper]
            total = total + ((a[lower] @ self.w[group]) * up).sum(-1)
        for n in self.bias_groups:
            total = total + (a[n] * self._bias(self.b[f"s{n}"])).sum(-1)
        return total

    def coupling_grads(self, a: Sequence[Tensor], ax: Tensor, scale: float) -> dict[str, list[Tensor]]:
        """∂(scale · coupling)/∂θ summed over the batch, per group (explicit, no autograd)."""
        out: dict[str, list[Tensor]] = {}
        for group, lower, upper in self.edges:
            up = ax if upper == INPUT else a[upper]
            out[group] = [scale * (a[lower].mT @ up)]
        for n, group in self.bias_groups.items():
            out[group].append(scale * a[n].sum(-2))
        return out
