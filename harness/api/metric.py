"""The metric contract: compares two processes of one layer.

A metric says which direction is better, so tables and checks can tell a
regression from an improvement.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor


class ProcessMetric(Protocol):
    #: "lower" or "higher": which values are better.
    direction: str

    def __call__(self, candidate: Tensor, reference: Tensor) -> float:
        """Compare two processes of shape ``(K, *element_shape)`` (time first)."""


def float64_pair(candidate: Tensor, reference: Tensor) -> tuple[Tensor, Tensor]:
    """Both processes detached and in float64, after checking that their shapes agree (what
    every metric needs before it compares them)."""
    if candidate.shape != reference.shape:
        raise ValueError(f"processes differ in shape: {tuple(candidate.shape)} vs {tuple(reference.shape)}")
    return candidate.detach().to(torch.float64), reference.detach().to(torch.float64)
