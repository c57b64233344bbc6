"""Suite parameters that several algorithms declare alike (each algorithm's ``params`` calls them)."""

from __future__ import annotations

from harness.api.components import Param


def beta_param(doc: str = "nudging strength β (the EB nets apply βε)") -> Param:
    return Param("beta", float, 0.1, doc)


def relaxation_params() -> list[Param]:
    """How EP's free phase reaches its fixed point (harness.api.relaxation); the defaults are the paper's."""
    return [Param("schedule", str, "sync", "free phase: the paper's synchronous steps, or async (even layers, "
                  "then odd ones), T sweeps at most", choices=("sync", "async"), quiet_default=True),
            Param("tol", float, 0.0, "stop the free phase when a sweep moves no unit by tol (0: all T steps)",
                  min=0, quiet_default=True),
            Param("nudged_schedule", str, "sync", "the second phases' K steps: synchronous (the paper's), or K "
                  "asynchronous sweeps (even layers, then odd ones; Scellier et al. 2023's code)",
                  choices=("sync", "async"), quiet_default=True),
            Param("warm_start", bool, False, "in training, start each mini-batch's free phase from the previous "
                  "one's free state, not from zero (Scellier et al. 2023's code carries the last second phase's "
                  "end state instead); prediction and evaluation still start from zero; a stateful step (not "
                  "batched across seeds, not graphed)", quiet_default=True)]
