"""Built-in models: the paper's toy model, EB and P fully connected nets, P-conv."""

from __future__ import annotations

from harness.api.components import Param
from harness.api.hookspecs import hookimpl

from .activations import ACTIVATIONS
from .conv import PConvNet
from .energy import CLIP_GRADS, EBNet, ToyModel
from .init import INITS
from .prototypical import PNet

ACT = tuple(ACTIVATIONS)


def _init() -> Param:
    return Param("init", str, "glorot", "weight init: glorot (paper; zero biases) or torch "
                 "(PyTorch default ±1/√fan_in, as the authors' code)", choices=INITS)


@hookimpl
def register_models(register):
    register("toy", ToyModel, doc="Toy EB model of Appendix C.2: input, hidden, output all connected, "
             "no lateral connections; F = ∂Φ/∂s exactly", params=[
                 Param("input_size", int, 10, "input units", min=1, max=10**7),
                 Param("hidden_size", int, 50, "hidden units", min=1, max=10**7),
                 Param("output_size", int, 5, "output units (classes)", min=1, max=10**7),
                 Param("activation", str, "tanh", "σ", choices=ACT),
                 Param("eps", float, 0.08, "Euler step ε of the energy dynamics"),
                 Param("bias", bool, False, "biases (not in the paper's equations)"),
                 _init(),
             ], example={"input_size": 6, "hidden_size": 7, "output_size": 3})
    register("eb", EBNet, doc="Layered energy-based net (Appendix C.3); F = ∂Φ/∂s exactly unless clip",
             params=[
                 Param("hidden", list[int], [512], "hidden layer sizes, listed input → output", min=1, max=10**7),
                 Param("input_size", int, 784, "input units", min=1, max=10**7),
                 Param("output_size", int, 10, "output units (classes)", min=1, max=10**7),
                 Param("activation", str, "tanh", "σ", choices=ACT),
                 Param("eps", float, 0.08, "Euler step ε; the nudge is βε(y − s⁰)"),
                 Param("clip", bool, False, "clip neurons to [0, 1] after each step (paper's training); "
                       "breaks F = ∂Φ/∂s"),
                 Param("bias", bool, True, "one bias per layer, entering Φ as ε b·σ(s)"),
                 _init(),
                 Param("clip_grad", str, "exact", "how BPTT differentiates the clip: exact (zero where "
                       "it clips, as clamp and the authors' code) or straight_through (identity); the "
                       "clipped values are the same, EP is unaffected", choices=CLIP_GRADS),
             ], example={"hidden": [7, 5], "input_size": 6, "output_size": 3})
    register("p", PNet, doc="Layered prototypical net (Appendix C.4), dt = 1 (or leaky); F ≈ ∂Φ/∂s ignoring σ",
             params=[
                 Param("hidden", list[int], [512], "hidden layer sizes, listed input → output", min=1, max=10**7),
                 Param("input_size", int, 784, "input units", min=1, max=10**7),
                 Param("output_size", int, 10, "output units (classes)", min=1, max=10**7),
                 Param("activation", str, "tanh", "σ", choices=ACT),
                 Param("bias", bool, True, "one bias per layer, entering Φ as b·s"),
                 _init(),
                 Param("dt", float, 1.0, "step size: s ← s + dt·(F(s) − s); 1 is the paper's P dynamics, 0.2 "
                       "the authors' code's default (same fixed points, slower to reach)", min=1e-6, max=1.0,
                       quiet_default=True),
             ], example={"hidden": [7, 5], "input_size": 6, "output_size": 3})
    register("pconv", PConvNet, doc="Prototypical conv net (Appendix D): conv–maxpool layers, then FC",
             params=[
                 Param("input_shape", list[int], [1, 28, 28], "channels, height, width of the input", min=1, max=10**7),
                 Param("channels", list[int], [32, 64], "feature maps of each conv layer, input → output",
                       min=1, max=10**7),
                 Param("kernel", int, 5, "square kernel size (stride 1)", min=1, max=999),
                 Param("pool", int, 2, "max-pool size and stride", min=1, max=999),
                 Param("output_size", int, 10, "output units (classes)", min=1, max=10**7),
                 Param("activation", str, "hard_sigmoid", "σ", choices=ACT),
                 Param("bias", bool, True, "one bias per layer (per channel for conv layers)"),
                 _init(),
                 Param("padding", int, 0, "zero padding of each convolution (the paper's P-conv: 0)", min=0, max=999,
                       quiet_default=True),
             ], example={"input_shape": [1, 12, 12], "channels": [2, 3], "kernel": 3, "output_size": 3})
    register("dchn", PConvNet, doc="Deep convolutional Hopfield network (Laborieux et al. 2021; Scellier et al. "
             "2023): 3x3 convolutions, each followed by 2x2 max-pooling, then a dense output; hard sigmoid; "
             "written as Φ like P-conv. Defaults: the authors' CIFAR-10 net (their code's command: channels "
             "128-256-512-512, paddings 1-1-1-0) on 3x32x32 inputs; a CPU-sized one: channels = [16, 32], "
             "padding = [1, 1]",
             params=[
                 Param("input_shape", list[int], [3, 32, 32], "channels, height, width of the input", min=1, max=10**7),
                 Param("channels", list[int], [128, 256, 512, 512], "feature maps of each conv layer, input → "
                       "output (default: the VGG-like widths)", min=1, max=10**7),
                 Param("kernel", int, 3, "square kernel size (stride 1)", min=1, max=999),
                 Param("padding", list[int], [1, 1, 1, 0], "zero padding of each convolution, input → output "
                       "(the authors' CIFAR-10 command: 1 1 1 0, so that the last pooling leaves 1x1 maps)",
                       min=0, max=999),
                 Param("pool", int, 2, "max-pool size and stride", min=1, max=999),
                 Param("output_size", int, 10, "output units (classes)", min=1, max=10**7),
                 Param("activation", str, "hard_sigmoid", "σ", choices=ACT),
                 Param("bias", bool, True, "one bias per layer (per channel for conv layers)"),
                 _init(),
             ], example={"input_shape": [3, 8, 8], "channels": [3, 4], "padding": [1, 0], "output_size": 3})
