"""Built-in run kinds, each in its own module: ``gdu``, ``bias``, ``train``, ``speed``,
``relaxation``."""

from __future__ import annotations

from harness.api.hookspecs import hookimpl

from .bias import Bias
from .gdu import GDU
from .relaxation import Relaxation
from .speed import Speed
from .train import MAX_EPOCHS, Train

__all__ = ["GDU", "MAX_EPOCHS", "Bias", "Relaxation", "Speed", "Train", "register_run_kinds"]


@hookimpl
def register_run_kinds(register):
    # each run kind declares its parameters, slots, doc and example on its class, beside its __init__
    register("gdu", GDU)
    register("bias", Bias)
    register("train", Train)
    register("speed", Speed)
    register("relaxation", Relaxation)
