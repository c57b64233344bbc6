"""Built-in learning algorithms: the EP family (the paper's EP and its successors), truncated BPTT
and recurrent backprop. Each is written once against the model contract (harness/api/model.py) and
updates the parameters through the one update path (harness/api/optimizer.py)."""

from __future__ import annotations

from harness.api.hookspecs import hookimpl

from .bptt import BPTT
from .cep import ContinualEP
from .coupled import Contrastive, CoupledCentered, CoupledLearning, CoupledNegative
from .ep import EP, EPCentered, EPNegative, EPRandomSign
from .hep import HolomorphicEP
from .paired import Paired
from .rbp import RBP
from .richardson import EPRichardson

__all__ = ["BPTT", "EP", "RBP", "ContinualEP", "Contrastive", "CoupledCentered", "CoupledLearning", "CoupledNegative",
           "EPCentered", "EPNegative", "EPRandomSign",
           "EPRichardson", "HolomorphicEP", "Paired", "register_algorithms"]

# EP and BPTT share one stacked step (their free phase is the same dynamics): the capability that
# harness.api.algorithm.shared_step asks for, declared here where both are known.
EP.share = BPTT.share = Paired.of


@hookimpl
def register_algorithms(register):
    # each algorithm declares its parameters and doc on its class, beside its __init__
    register("ep", EP)
    register("ep-random-sign", EPRandomSign)
    register("ep-negative", EPNegative)
    register("ep-centered", EPCentered)
    register("ep-richardson", EPRichardson)
    register("hep", HolomorphicEP)
    register("cep", ContinualEP)
    register("coupled", CoupledLearning)
    register("coupled-negative", CoupledNegative)
    register("coupled-centered", CoupledCentered)
    register("contrastive", Contrastive)
    register("bptt", BPTT)
    register("rbp", RBP)
