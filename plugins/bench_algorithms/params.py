"""Suite parameters that several algorithms declare alike (each algorithm's ``params`` calls them)."""

from __future__ import annotations

from harness.api.components import Param

#: ``warm_from``: what a warm start carries to the next mini-batch.
WARM_FROM = ("free", "second_phase")
#: ``warm_reset``: when a warm start begins from zero again.
WARM_RESET = ("never", "epoch")


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
                  "step's state (warm_from), not from zero; prediction and evaluation still start from zero; a "
                  "stateful step (not batched across seeds, not graphed)", quiet_default=True),
            Param("warm_from", str, "free", "with warm_start, the state carried to the next mini-batch: the free "
                  "state (free), or where the step's second phase with the larger nudge n₂ ended (second_phase: "
                  "Scellier et al. 2023's code, which leaves its layers there; for the negative variants, whose "
                  "n₂ is 0, theirs with zero_phase)", choices=WARM_FROM,
                  quiet_default=True),
            Param("warm_reset", str, "never", "with warm_start, also start each epoch's first mini-batch from "
                  "zero (epoch: Scellier et al. 2023's code, whose state resets when the batch size changes, as "
                  "it does at every epoch's smaller last training and test batches)",
                  choices=WARM_RESET, quiet_default=True),
            Param("zero_phase", bool, False, "a nudge of 0 runs its K steps (or sweeps) from the free state, as "
                  "the other nudge does (coupled learning: with the output held at the free output), instead of "
                  "taking the free state itself (Scellier et al. 2023's code); "
                  "the same where the free phase has settled; no effect on the centered variants",
                  quiet_default=True)]
