"""Built-in process metrics: RelMSE (Eq. 67) and sign agreement."""

from __future__ import annotations

from harness.api.hookspecs import hookimpl

from .relmse import RelMSE
from .sign import SignAgreement

__all__ = ["RelMSE", "SignAgreement", "register_metrics"]


@hookimpl
def register_metrics(register):
    # each metric declares its doc on its class (its docstring's first paragraph)
    register("relmse", RelMSE)
    register("sign", SignAgreement)
