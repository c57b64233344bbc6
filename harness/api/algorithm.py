"""The learning-algorithm contract (EP, BPTT, and whatever a plugin adds).

An algorithm is built from its suite parameters (e.g. β, learning rates) and
works on any :class:`harness.api.model.ConvergentRNN`. ``T`` (first-phase steps)
and ``K`` (second-phase / truncation steps) belong to the run, because the
paper runs EP and BPTT with the same ``T`` and ``K``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from harness.api.components import optional_member
from harness.api.model import ConvergentRNN, per_group
from harness.api.optimizer import DirectionsIn, Update


def process_key(group: str, index: int) -> str:
    """The name of one parameter tensor's process: ``"<group>.<index>"`` (``"W01.0"`` a weight,
    ``"W01.1"`` its bias), the one spelling every algorithm, run kind and the kit use."""
    return f"{group}.{index}"


@dataclass
class Processes:
    """Per-step update processes for ``t = 0 … K−1``, batch-averaged.

    Both are oriented as *updates*: EP gives ``ΔEP(t)``, BPTT gives
    ``−∇BPTT(t)``, so the two compare directly (Theorem 1).
    ``neurons[layer]`` has shape ``(K, *layer_shape)``; ``weights[name]`` has
    shape ``(K, *param_shape)`` with ``name`` = ``"<group>.<index>"`` for each
    tensor of a parameter group (e.g. ``"W01.0"`` for a weight, ``"W01.1"`` for
    its bias).
    """

    neurons: dict[str, Tensor] = field(default_factory=dict)
    weights: dict[str, Tensor] = field(default_factory=dict)

    def to(self, device: str | torch.device) -> Processes:
        return Processes({k: v.to(device) for k, v in self.neurons.items()},
                         {k: v.to(device) for k, v in self.weights.items()})


class Algorithm:
    """The algorithm contract: what the run kinds call, and every optional member with its default.

    Required: :meth:`train_step` and :meth:`processes`. Optional members, declared below with their
    types and defaults (an algorithm defines only those it has): ``stateful``, ``lr``, ``beta``,
    ``random_sign``, ``assumes_fixed_point``, ``algorithms`` (the members of a shared step), ``share``,
    ``use_generator``, ``state_dict`` / ``load_state_dict``, ``start_epoch``, ``check_model``. The
    built-ins inherit this class (through :class:`Learner`); the core reads an algorithm that may not through
    :func:`capability`, which refuses a name not declared here.
    """

    #: The per-layer learning rates, input → output (``None``: none, or not an algorithm's own).
    lr: list[float] | None = None
    #: The nudge β, swept by the ``bias`` kind (``None``: the algorithm has no nudge).
    beta: float | None = None
    #: True when β's sign is drawn per mini-batch from the run's random stream (one-sided EP).
    random_sign: bool = False
    #: True when the update is derived at the free phase's fixed point, so that the ``train`` kind warns
    #: when the free phase of ``T`` steps has not settled.
    assumes_fixed_point: bool = False
    #: The algorithms of the members of a stacked model, one per member, for a step that trains them
    #: together (:func:`shared_step`); ``None``: the step's one algorithm trains every member.
    algorithms: Sequence[Any] | None = None
    #: ``share(algorithms) -> step | None``, one step object that trains the members of a stacked model
    #: each with its own algorithm (``batch_algorithms``), or None when these cannot share one. Run kinds
    #: ask :func:`shared_step`, naming no algorithm.
    share: ClassVar[Callable[[Sequence[Any]], Any] | None] = None
    #: ``use_generator(generator)``: the run's random stream for what the algorithm draws (``None``: it
    #: draws nothing).
    use_generator: Callable[[torch.Generator], None] | None = None
    #: ``state_dict() -> dict``: what a stateful algorithm saves in the run's epoch checkpoints
    #: (``None``: nothing), given back to ``load_state_dict(state)`` on a resume.
    state_dict: Callable[[], dict] | None = None
    #: ``load_state_dict(state)``: restores what :attr:`state_dict` saved (``None``: nothing to restore).
    load_state_dict: Callable[[dict], None] | None = None
    #: ``start_epoch(epoch, epochs)``: the train kind's call before each epoch (1-based), for what moves
    #: with the epochs (a learning-rate schedule); ``None``: nothing does.
    start_epoch: Callable[[int, int], None] | None = None
    #: ``check_model(model)`` raises ``ValueError`` for a model the algorithm cannot train; ``bench
    #: validate`` calls it on the run's model built on the meta device (``None``: it trains any model).
    check_model: Callable[[ConvergentRNN], None] | None = None

    @property
    def stateful(self) -> bool:
        """True when a step depends on more than the model and the batch (an optimizer's moments, a random
        stream): such a step is not replayed as a CUDA graph nor batched across seeds, and its
        :attr:`state_dict` goes into the run's epoch checkpoints. Default False."""
        return False

    def train_step(self, model: ConvergentRNN, x: Tensor, y: Tensor, *, T: int, K: int) -> dict[str, Tensor]:
        """Update the model's parameters in place on one mini-batch (one-hot ``y``).

        Returns a few tensors for logging (e.g. ``{"loss": ...}``), left on the
        device: callers decide when to synchronise. No host synchronisation
        (``.item()``, ``.cpu()``) inside: the step may be replayed as a CUDA graph.
        With seeds stacked along a leading dimension (``model.members``), ``x`` and
        ``y`` carry it too and the returned values are per member.
        """
        raise NotImplementedError

    def processes(self, model: ConvergentRNN, x: Tensor, y: Tensor, *, T: int, K: int) -> Processes:
        """The per-step processes of the paper on one mini-batch."""
        raise NotImplementedError


def capability(algorithm: object, name: str) -> Any:
    """An algorithm's optional member ``name`` (declared on :class:`Algorithm`): its own value, else, for
    an object that does not inherit the class (a third-party algorithm, a shared step), the declared
    default. Refuses an undeclared name."""
    return optional_member(Algorithm, algorithm, name)


class Learner(Algorithm):
    """What every built-in algorithm that trains shares: per-layer learning rates and the one update
    path (:class:`harness.api.optimizer.Update`: plain SGD, SGD with momentum/weight decay, or Adam).

    ``stateful`` is True when the update has state (momentum, weight decay, Adam): its
    :meth:`state_dict` goes into the run's epoch checkpoint so that a resumed run is exact.
    """

    def __init__(self, lr: list[float] | None = None, **optimizer):
        self.lr = lr
        self.update = Update(**optimizer)
        floor = self.update.lr_floor
        if floor and lr is not None and floor > min(lr):
            raise ValueError(f"lr_floor = {floor:g} is above the smallest learning rate ({min(lr):g}): a cosine "
                             "schedule would raise that rate; lower lr_floor")

    @property
    def stateful(self) -> bool:
        return not self.update.plain

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """The learning-rate schedule's epoch (see :class:`harness.api.optimizer.Update`)."""
        self.update.start_epoch(epoch, epochs)

    def apply(self, model: ConvergentRNN, directions: DirectionsIn, factors: dict) -> None:
        """θ ← θ − lr·(−k·d) through the shared update (``factors``: ``k`` per group)."""
        self.update(model, directions, factors, per_group(self.lr, model, "lr"))

    def use_generator(self, generator: torch.Generator) -> None:
        """The run's random stream for what the algorithm draws (none by default)."""

    def state_dict(self) -> dict:
        return {"update": self.update.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.update.load_state_dict(state.get("update", {}))


def step_log(model: ConvergentRNN, free: tuple[Tensor, ...], y: Tensor) -> dict[str, Tensor]:
    """What a ``train_step`` returns for logging, from the free state: the loss and the error, per
    member when seeds are stacked (else scalars), left on the device."""
    return {"loss": model.loss(free, y).mean(-1).detach(),
            "error": (model.predict(free) != model.labels(y)).to(free[0].dtype).mean(-1)}


def shared_step(algorithms: Sequence[Any]) -> Any | None:
    """One step for the members of a stacked model with these algorithms (their classes' declared
    ``share``), or None when none of them can share one with the others."""
    for cls in dict.fromkeys(type(a) for a in algorithms):
        share = capability(cls, "share")  # declared on Algorithm; a third-party algorithm may lack it
        if share is not None and (step := share(list(algorithms))) is not None:
            return step
    return None
