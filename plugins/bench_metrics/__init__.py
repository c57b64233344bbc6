"""Built-in process metrics: RelMSE (Eq. 67) and sign agreement."""

from __future__ import annotations

from harness.api.hookspecs import hookimpl

from .relmse import RelMSE
from .sign import SignAgreement


@hookimpl
def register_metrics(register):
    register("relmse", RelMSE, doc="Eq. 67: per-element ‖f−g‖/max(‖f‖,‖g‖) with ‖f‖ = RMS over t, "
             "averaged over the layer; both-zero elements count as 0; lower is better")
    register("sign", SignAgreement, doc="share of elements whose updates summed over the K steps have "
             "the same sign (sign in {−1,0,+1}: two zeros agree); higher is better")
