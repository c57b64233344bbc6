"""Weight initialisation: Glorot (the paper, Appendix E) or PyTorch's default.

The authors' public code uses PyTorch's default (uniform ±1/√fan_in for
weights and biases); the paper says Glorot. ``init = "glorot"`` draws weights
from U(±√(6/(fan_in+fan_out))) and sets biases to zero. ``"torch_half"`` halves
PyTorch's bound, ±0.5/√fan_in for weights and biases, as Scellier et al. 2023's
code initialises its DCHNs.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from harness.api.components import Param

INITS = ("glorot", "torch", "torch_half")
#: The bound of the uniform draw relative to 1/√fan_in, for the PyTorch-style inits.
GAINS = {"torch": 1.0, "torch_half": 0.5}


def init_param() -> Param:
    """The ``init`` parameter every built-in model declares."""
    return Param("init", str, "glorot", "weight init: glorot (paper; zero biases), torch (PyTorch default "
                 "±1/√fan_in, as the authors' code) or torch_half (±0.5/√fan_in, weights and biases: Scellier et al. "
                 "2023's code)", choices=INITS)


def init_weight(w: nn.Parameter, fan_in: int, fan_out: int, how: str) -> None:
    """Initialise a weight tensor in place; fans given explicitly (conv kernels included)."""
    with torch.no_grad():
        if how == "glorot":
            bound = math.sqrt(6.0 / (fan_in + fan_out))
        elif how in GAINS:
            bound = GAINS[how] / math.sqrt(fan_in)
        else:
            raise ValueError(f"unknown init {how!r}; known: {', '.join(INITS)}")
        w.uniform_(-bound, bound)


def init_bias(b: nn.Parameter, fan_in: int, how: str) -> None:
    with torch.no_grad():
        if how == "glorot":
            b.zero_()
        elif how in GAINS:
            bound = GAINS[how] / math.sqrt(fan_in)
            b.uniform_(-bound, bound)
        else:
            raise ValueError(f"unknown init {how!r}; known: {', '.join(INITS)}")
