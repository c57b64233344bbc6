"""The metric contract: compares two processes of one layer.

A metric says which direction is better, so tables and checks can tell a
regression from an improvement.
"""

from __future__ import annotations

from typing import Protocol

from torch import Tensor


class ProcessMetric(Protocol):
    #: "lower" or "higher": which values are better.
    direction: str

    def __call__(self, candidate: Tensor, reference: Tensor) -> float:
        """Compare two processes of shape ``(K, *element_shape)`` (time first)."""
