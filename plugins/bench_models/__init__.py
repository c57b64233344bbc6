"""Built-in models: the paper's toy model, EB and P fully connected nets, P-conv."""

from __future__ import annotations

from harness.api.hookspecs import hookimpl

from .conv import PConvNet
from .dchn import DCHN
from .energy import EBNet, ToyModel
from .prototypical import PNet

__all__ = ["DCHN", "EBNet", "PConvNet", "PNet", "ToyModel", "register_models"]


@hookimpl
def register_models(register):
    # each model declares its parameters, doc and example on its class, beside its __init__
    register("toy", ToyModel)
    register("eb", EBNet)
    register("p", PNet)
    register("pconv", PConvNet)
    register("dchn", DCHN)
