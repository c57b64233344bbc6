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

from typing import Sequence

import torch
from torch import Tensor, nn

from harness.model import ConvergentRNN, State

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
    """Shared parameters and connectivity of the fully connected models."""

    def __init__(self, sizes: Sequence[int], input_size: int, edges: Sequence[tuple[str, int, int]],
                 activation: str, bias: bool, init: str, bias_groups: dict[int, str] | None = None):
        super().__init__()
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

    @property
    def num_classes(self) -> int:
        return self.sizes[0]

    def init_state(self, x: Tensor) -> State:
        return tuple(torch.zeros(x.shape[0], n, dtype=x.dtype, device=x.device) for n in self.sizes)

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
            out[n] = v if out[n] is None else out[n] + v

        for group, lower, upper in self.edges:
            w = self.w[group]
            add(lower, (ax if upper == INPUT else a[upper]) @ w.t())
            if upper != INPUT:
                add(upper, a[lower] @ w)
        for n in self.bias_groups:
            add(n, self.b[f"s{n}"])
        return [o if o is not None else torch.zeros_like(a[n]) for n, o in enumerate(out)]

    def coupling(self, a: Sequence[Tensor], ax: Tensor) -> Tensor:
        """``Σ_edges a_lower · W · a_upper + Σ b · a`` per sample."""
        total = a[0].new_zeros(a[0].shape[0])
        for group, lower, upper in self.edges:
            up = ax if upper == INPUT else a[upper]
            total = total + ((a[lower] @ self.w[group]) * up).sum(1)
        for n in self.bias_groups:
            total = total + a[n] @ self.b[f"s{n}"]
        return total

    def coupling_grads(self, a: Sequence[Tensor], ax: Tensor, scale: float) -> dict[str, list[Tensor]]:
        """∂(scale · coupling)/∂θ summed over the batch, per group (explicit, no autograd)."""
        out: dict[str, list[Tensor]] = {}
        for group, lower, upper in self.edges:
            up = ax if upper == INPUT else a[upper]
            out[group] = [scale * (a[lower].t() @ up)]
        for n, group in self.bias_groups.items():
            out[group].append(scale * a[n].sum(0))
        return out
