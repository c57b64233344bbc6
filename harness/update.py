"""One update path for every algorithm: θ ← θ + c · d, per parameter.

An algorithm estimates, per parameter group, an update direction ``d`` (EP: the telescoped
``∂Φ/∂θ(s^β_K) − ∂Φ/∂θ(s_*)``; BPTT: the gradient of the loss) and a coefficient ``c`` (EP:
``lr / (β·nudge_scale·batch)``; BPTT: ``−lr``); :func:`apply_update` applies them, in place and
without a graph. EP, BPTT and their paired step (one coefficient per stacked member) all go
through it, and so do the CUDA-graph and batched paths, which call the algorithms' steps.
"""

from __future__ import annotations

from typing import Union

import torch
from torch import Tensor

from .model import ConvergentRNN

#: Per group, one direction per parameter (``None``: the parameter got none, e.g. unused).
Directions = dict[str, list[Union[Tensor, None]]]
#: Per group, a float for every parameter, or one tensor per parameter broadcasting against
#: it (e.g. shaped ``(S, 1, …)``: a coefficient per stacked member).
Coefficients = dict[str, Union[float, list[Tensor]]]


def apply_update(model: ConvergentRNN, directions: Directions, coefficients: Coefficients) -> None:
    """``p += c · d`` for every parameter of ``model.param_groups()`` that has a direction."""
    with torch.no_grad():
        for name, params in model.param_groups().items():
            c = coefficients[name]
            for j, (p, d) in enumerate(zip(params, directions[name])):
                if d is None:
                    continue
                if isinstance(c, (int, float)):
                    p.add_(d, alpha=c)
                else:
                    p.addcmul_(d, c[j])


def by_group(model: ConvergentRNN, flat: list[Tensor | None]) -> Directions:
    """A flat list over ``model.param_groups()`` (e.g. ``torch.autograd.grad``'s) as :data:`Directions`."""
    out, i = {}, 0
    for name, params in model.param_groups().items():
        out[name] = list(flat[i:i + len(params)])
        i += len(params)
    return out
