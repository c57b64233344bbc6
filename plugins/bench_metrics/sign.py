"""Sign agreement: share of a layer's elements whose total updates agree in sign.

What is compared: the cumulative sums over the K steps, ``Σ_t f(t)`` and
``Σ_t g(t)`` — the update each algorithm actually applies to a weight after
K steps (as the authors' code does), and for neurons the total displacement.
Signs are taken in {−1, 0, +1}: an element agrees when both sums have the
same sign, so two exact zeros agree and an exact zero against a nonzero value
disagrees. The result is a fraction in [0, 1]; higher is better.
"""

from __future__ import annotations

import torch
from torch import Tensor

from harness.api.metric import float64_pair


class SignAgreement:
    """share of elements whose updates summed over the K steps have the same sign (sign in {−1,0,+1}: two
    zeros agree); higher is better"""

    direction = "higher"

    def __call__(self, candidate: Tensor, reference: Tensor) -> float:
        f, g = (p.sum(0) for p in float64_pair(candidate, reference))
        return float((torch.sign(f) == torch.sign(g)).to(torch.float64).mean())
