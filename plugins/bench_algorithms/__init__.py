"""Built-in learning algorithms: the EP family (the paper's EP and its successors), truncated BPTT
and recurrent backprop. Each is written once against the model contract (harness/api/model.py) and
updates the parameters through the one update path (harness/api/optimizer.py)."""

from __future__ import annotations

from functools import partial

from harness.api.components import Param
from harness.api.hookspecs import hookimpl
from harness.api.optimizer import optimizer_params

from .bptt import BPTT
from .cep import ContinualEP
from .ep import EP
from .hep import HolomorphicEP
from .paired import Paired
from .rbp import RBP

# EP and BPTT share one stacked step (their free phase is the same dynamics): the capability that
# harness.api.algorithm.shared_step asks for, declared here where both are known.
EP.share = BPTT.share = Paired.of


def _beta(doc: str = "nudging strength β (the EB nets apply βε)") -> Param:
    return Param("beta", float, 0.1, doc)


def _relaxation() -> list[Param]:
    """How EP's free phase reaches its fixed point (harness.api.relaxation); the defaults are the paper's."""
    return [Param("schedule", str, "sync", "free phase: the paper's synchronous steps, or async (even layers, "
                  "then odd ones), T sweeps at most", choices=("sync", "async"), quiet_default=True),
            Param("tol", float, 0.0, "stop the free phase when a sweep moves no unit by tol (0: all T steps)",
                  min=0, quiet_default=True)]


@hookimpl
def register_algorithms(register):
    register("ep", EP, doc="Equilibrium Propagation (Algorithm 1; Scellier & Bengio 2017): free phase T steps, "
             "nudged phase K steps with β, telescoped update divided by the effective nudge β·nudge_scale; "
             "bias O(β)", params=[
                 _beta(), *_relaxation(), *optimizer_params()])
    register("ep-random-sign", partial(EP, random_sign=True), doc="One-sided EP with the sign of β drawn per "
             "mini-batch from the run's seed: (0, β) or (−β, 0), so that the O(β) bias has no fixed "
             "direction (Scellier & Bengio 2017; Laborieux et al. 2021)", params=[
                 _beta(), *_relaxation(), *optimizer_params()])
    register("ep-negative", partial(EP, variant="negative"), doc="EP with the nudge −β: (∂Φ/∂θ(s*) − "
             "∂Φ/∂θ(s^−β))/β; bias O(β), opposite to ep's (Laborieux et al. 2021)", params=[
                 _beta(), *_relaxation(), *optimizer_params()])
    register("ep-centered", partial(EP, variant="centered"), doc="Centered EP: nudges −β and +β from s*, "
             "(∂Φ/∂θ(s^β) − ∂Φ/∂θ(s^−β))/2β; bias O(β²) (Laborieux et al. 2021; Scellier et al. 2023)",
             params=[_beta(), *_relaxation(), *optimizer_params()])
    register("hep", HolomorphicEP, doc="Holomorphic EP (Laborieux & Zenke 2022): N complex nudges "
             "|β|e^{2πik/N}, Re (1/N) Σ_k ∂Φ/∂θ(s^β_k)/β_k, exact up to O(|β|^N); N = 2 is centered EP; "
             "needs a model with supports_complex (tanh or sigmoid, no clip)", params=[
                 _beta("radius |β| of the circle of nudges (the EB nets apply |β|ε)"),
                 Param("N", int, 4, "nudges on the circle (2: centered EP)", min=2, max=64),
                 *optimizer_params(),
             ])
    register("cep", ContinualEP, doc="Continual EP (Ernoult et al. 2020): the weights move at every "
             "nudged step, θ += η(∂Φ/∂θ(s_{t+1}) − ∂Φ/∂θ(s_t))/β; η → 0 is EP", params=[
                 _beta(), *optimizer_params()])
    register("bptt", BPTT, doc="Truncated BPTT (Algorithm 2) through the last K of T steps; "
             "processes are −∇ so they compare with ΔEP", params=optimizer_params())
    register("rbp", RBP, doc="Recurrent backprop (Almeida 1987; Pineda 1987): the gradient at the free "
             "fixed point by the implicit function theorem, its adjoint fixed point iterated", params=[
                 Param("iterations", int | None, None, "adjoint iterations (None: K, BPTT's truncation; "
                       "more: closer to the exact implicit gradient)", min=1, max=10**8),
                 *optimizer_params(),
             ])
