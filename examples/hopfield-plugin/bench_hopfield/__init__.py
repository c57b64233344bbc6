"""bench-hopfield: an example third-party model plugin for eqprop-bench.

Installed next to eqprop-bench, it registers the model ``hopfield`` through the
``bench`` entry-point group (see pyproject.toml); EP, BPTT, the GDU analysis
and training then work on it unchanged.
"""

from __future__ import annotations

from harness import Param, hookimpl

from .model import ACTIVATIONS, HopfieldNet

__all__ = ["HopfieldNet", "register_models"]
__version__ = "0.1.0"


@hookimpl
def register_models(register):
    register("hopfield", HopfieldNet,
             doc="EB net with symmetric lateral connections within its hidden layer; F = ∂Φ/∂s exactly",
             params=[
                 Param("input_size", int, 20, "input units", min=1, max=10**7),
                 Param("hidden_size", int, 64, "hidden units (laterally connected)", min=1, max=10**7),
                 Param("output_size", int, 10, "output units (classes)", min=1, max=10**7),
                 Param("activation", str, "tanh", "σ", choices=tuple(ACTIVATIONS)),
                 Param("eps", float, 0.2, "Euler step ε; the nudge is βε(y − s⁰)"),
                 Param("lateral", float, 0.5, "initial lateral weights, relative to the Glorot bound"),
                 Param("bias", bool, True, "biases b1 (hidden) and b0 (output), entering Φ as ε b·σ(s)"),
             ])
