"""The step counts every run of a convergent RNN has, declared once with their one constraint: T
steps of the first (free) phase, and K steps of EP's second phase or of BPTT's truncation, the last
K of the T. Run kinds declare them with :func:`step_params` and check them with :func:`check_steps`."""

from __future__ import annotations

import dataclasses

from harness.api.components import Param

#: Upper bound of T and K: 10⁸ steps is days of compute for the smallest net (the paper's largest T
#: is 30,000); a larger value is a typo, refused before it hangs a run.
MAX_STEPS = 10**8

T = Param("T", int, min=1, max=MAX_STEPS, doc="first-phase steps (to the steady state)")
K = Param("K", int, min=1, max=MAX_STEPS, doc="second-phase / truncation steps (the last K of the T)")
BATCH_SIZE = Param("batch_size", int, 20, min=1, max=10**7, doc="mini-batch size (the paper: 20)")


def step_params(t_doc: str | None = None, k_doc: str | None = None) -> list[Param]:
    """``T`` and ``K``, with a kind's own wording of what they are for."""
    return [dataclasses.replace(T, doc=t_doc) if t_doc else T, dataclasses.replace(K, doc=k_doc) if k_doc else K]


def batch_size(doc: str | None = None) -> Param:
    return dataclasses.replace(BATCH_SIZE, doc=doc) if doc else BATCH_SIZE


def check_steps(T: int, K: int, who: str) -> None:
    """BPTT truncated to K steps and EP's K-step second phase both need ``0 < K <= T``."""
    if not 0 < K <= T:
        raise ValueError(f"{who} needs 0 < K <= T, got T={T}, K={K}")
