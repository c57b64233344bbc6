"""Built-in learning algorithms: Equilibrium Propagation and truncated BPTT."""

from __future__ import annotations

from harness.components import Param
from harness.hookspecs import hookimpl

from .bptt import BPTT
from .ep import EP


@hookimpl
def register_algorithms(register):
    register("ep", EP, doc="Equilibrium Propagation (Algorithm 1): free phase T steps, nudged phase K "
             "steps, telescoped update divided by the effective nudge β·nudge_scale", params=[
                 Param("beta", float, 0.1, "nudging strength β (the EB nets apply βε)"),
                 Param("lr", list[float] | None, None,
                       "learning rates, one per parameter group, input → output (needed to train)", min=0),
             ])
    register("bptt", BPTT, doc="Truncated BPTT (Algorithm 2) through the last K of T steps; "
             "processes are −∇ so they compare with ΔEP", params=[
                 Param("lr", list[float] | None, None,
                       "learning rates, one per parameter group, input → output (needed to train)", min=0),
             ])
