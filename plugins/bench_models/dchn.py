"""The deep convolutional Hopfield network (DCHN) of Laborieux et al. 2021 and Scellier et al. 2023:
P-conv's dynamics and Φ (conv.py) with the authors' CIFAR-10 architecture as its defaults."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from harness.api.components import Param

from .activations import ACTIVATIONS
from .conv import NUDGES, PConvNet, loss_param, output_param
from .init import init_param


class DCHN(PConvNet):
    """Deep convolutional Hopfield network (Laborieux et al. 2021; Scellier et al. 2023): 3x3 convolutions,
    each followed by 2x2 max-pooling, then a dense output; hard sigmoid; written as Φ like P-conv; the
    output's nudge inside σ, as the authors' code. Defaults: the authors' CIFAR-10 net (their code's
    command: channels 128-256-512-512, paddings 1-1-1-0) on 3x32x32 inputs, except the activation: theirs
    is activation = "half_hard_sigmoid"; a CPU-sized one: channels = [16, 32], padding = [1, 1]

    The same net as :class:`PConvNet`, with other defaults, one padding per conv layer, and the nudge
    inside σ: Laborieux et al.'s code steps every layer, the output included, as σ(∂Φ_β/∂s) with
    Φ_β = Φ − βℓ. With the nudge outside σ (P-conv's, the 2019 paper's), EP's update keeps a bias at
    every output unit the hard sigmoid saturates, which no β removes (measured in results/dchn/).
    """

    params: ClassVar[tuple[Param, ...]] = (
        Param("input_shape", list[int], [3, 32, 32], "channels, height, width of the input", min=1, max=10**7),
        Param("channels", list[int], [128, 256, 512, 512], "feature maps of each conv layer, input → "
              "output (default: the VGG-like widths)", min=1, max=10**7),
        Param("kernel", int, 3, "square kernel size (stride 1)", min=1, max=999),
        Param("padding", list[int], [1, 1, 1, 0], "zero padding of each convolution, input → output "
              "(the authors' CIFAR-10 command: 1 1 1 0, so that the last pooling leaves 1x1 maps)",
              min=0, max=999),
        Param("pool", int, 2, "max-pool size and stride", min=1, max=999),
        Param("output_size", int, 10, "output units (classes)", min=1, max=10**7),
        Param("activation", str, "hard_sigmoid", "σ", choices=tuple(ACTIVATIONS)),
        Param("bias", bool, True, "one bias per layer (per channel for conv layers)"),
        init_param(),
        Param("nudge", str, "inside", "where the output's nudge enters the step: inside σ, σ(W s¹ + β(y − s⁰)), "
              "as the authors' code (the step of Φ − βℓ: EP's update tends to the gradient as β → 0), or "
              "outside, σ(W s¹) + β(y − s⁰), as the 2019 paper's P nets (a saturated output unit then keeps a "
              "bias that β does not shrink: results/dchn/)", choices=NUDGES),
        loss_param(),
        output_param(),
    )
    example: ClassVar[dict | None] = {"input_shape": [3, 8, 8], "channels": [3, 4], "padding": [1, 0],
                                      "output_size": 3}

    def __init__(self, input_shape: Sequence[int] = (3, 32, 32), channels: Sequence[int] = (128, 256, 512, 512),
                 kernel: int = 3, padding: int | Sequence[int] = (1, 1, 1, 0), pool: int = 2,
                 output_size: int = 10, activation: str = "hard_sigmoid", bias: bool = True, init: str = "glorot",
                 fast: bool = True, nudge: str = "inside", loss: str = "squared_error", output: str = "sigma"):
        super().__init__(input_shape=input_shape, channels=channels, kernel=kernel, pool=pool,
                         output_size=output_size, activation=activation, bias=bias, init=init, fast=fast,
                         padding=padding, nudge=nudge, loss=loss, output=output)
