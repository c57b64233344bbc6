"""The model contract: a convergent RNN with static input, described by Φ.

A model is its dynamics ``s_{t+1} = F(x, s_t, θ) − β ∂ℓ/∂s(s_t, y)`` and its
primitive function ``Φ(x, s, θ)``. EP, BPTT and the GDU analysis are written
once against this class, so any model implementing it gets all of them.

Conventions (the paper's, see ../shared/paper/SPEC.md):
  * the state is a tuple of tensors, index 0 is the output layer ``s^0``,
    index n the n-th hidden layer counted from the output; every tensor has a
    leading batch dimension; the input ``x`` is clamped, not part of the state;
  * ``ℓ(s, y) = ½‖s^0 − y‖²`` per sample, ``y`` one-hot;
  * ``Φ`` is per sample (shape ``(batch,)``); ``∂Φ/∂θ`` is summed over the batch;
  * parameter groups are ordered from the input towards the output, as the
    paper's Table 4 lists learning rates.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

State = tuple[Tensor, ...]


class ConvergentRNN(nn.Module):
    """Base class of every model plugin.

    Subclasses implement :meth:`init_state`, :meth:`step`, :meth:`phi` and
    :meth:`param_groups`; the rest has generic defaults that a model may
    replace with faster explicit formulas (tested equal to the defaults).
    """

    #: Names of the state layers, index 0 = output (e.g. ``("s0", "s1")``).
    layer_names: tuple[str, ...] = ()
    #: True when ``F = ∂Φ/∂s`` exactly, so the GDU theorem holds exactly.
    derives_from_phi: bool = True
    #: The nudge actually applied is ``beta * nudge_scale`` (``ε`` for the EB
    #: nets, Eq. 35); EP divides its processes by this effective β.
    nudge_scale: float = 1.0

    # -- required ----------------------------------------------------------
    def init_state(self, x: Tensor) -> State:
        """The initial state ``s_0`` (zeros) for a batch of inputs."""
        raise NotImplementedError

    def step(self, x: Tensor, state: State, y: Tensor | None = None, beta: float = 0.0) -> State:
        """One step of the dynamics, nudged towards one-hot ``y`` when ``beta != 0``."""
        raise NotImplementedError

    def phi(self, x: Tensor, state: State) -> Tensor:
        """The primitive function Φ(x, s, θ), one value per sample."""
        raise NotImplementedError

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Named parameter groups, one per layer of weights, input → output."""
        raise NotImplementedError

    def forward(self, x: Tensor, state: State, y: Tensor | None = None, beta: float = 0.0) -> State:
        """Same as :meth:`step`; lets ``torch.func.functional_call`` run a step with other parameters."""
        return self.step(x, state, y, beta)

    # -- generic defaults --------------------------------------------------
    def loss(self, state: State, y: Tensor) -> Tensor:
        """``ℓ = ½‖s^0 − y‖²`` per sample."""
        diff = (state[0] - y).flatten(1)
        return 0.5 * (diff * diff).sum(1)

    def predict(self, state: State) -> Tensor:
        return state[0].flatten(1).argmax(1)

    def target(self, labels: Tensor) -> Tensor:
        """One-hot targets shaped like the output layer."""
        return nn.functional.one_hot(labels, self.num_classes).to(self.dtype)

    @property
    def num_classes(self) -> int:
        raise NotImplementedError

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def dphi_dtheta(self, x: Tensor, state: State) -> dict[str, list[Tensor]]:
        """∂Φ/∂θ summed over the batch, per parameter group (autograd on Φ)."""
        groups = self.param_groups()
        flat = [p for ps in groups.values() for p in ps]
        with torch.enable_grad():
            state = tuple(s.detach() for s in state)
            grads = torch.autograd.grad(self.phi(x, state).sum(), flat, allow_unused=True)
        out, i = {}, 0
        for name, ps in groups.items():
            out[name] = [g if g is not None else torch.zeros_like(p) for g, p in zip(grads[i:i + len(ps)], ps)]
            i += len(ps)
        return out

    def relax(self, x: Tensor, state: State, steps: int, y: Tensor | None = None,
              beta: float = 0.0) -> State:
        """Run ``steps`` steps of the dynamics without recording a graph."""
        with torch.no_grad():
            for _ in range(steps):
                state = self.step(x, state, y, beta)
        return state


def param_group_names(model: ConvergentRNN) -> list[str]:
    return list(model.param_groups())


def per_group(values: Sequence[float] | None, model: ConvergentRNN, what: str) -> dict[str, float]:
    """Match a list of per-layer values (e.g. learning rates) to the model's groups."""
    names = param_group_names(model)
    if values is None:
        raise ValueError(f"{what} is required: one value per parameter group {names}")
    if len(values) != len(names):
        raise ValueError(f"{what} has {len(values)} values but the model has {len(names)} "
                         f"parameter groups {names} (input → output); give one per group")
    return dict(zip(names, values))
