"""One update path for every algorithm: θ ← θ + c · d, per parameter.

An algorithm estimates, per parameter group, an update direction ``d`` (EP: the telescoped
``∂Φ/∂θ(s^β_K) − ∂Φ/∂θ(s_*)``; BPTT: the gradient of the loss) and a coefficient ``c`` (EP:
``lr / (β·nudge_scale·batch)``; BPTT: ``−lr``); :func:`apply_update` applies them, in place and
without a graph. EP, BPTT and their paired step (one coefficient per stacked member) all go
through it, and so do the CUDA-graph and batched paths, which call the algorithms' steps.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from harness.api.model import ConvergentRNN

#: Per group, one direction per parameter (``None``: the parameter got none, e.g. unused).
Directions = dict[str, list[Tensor | None]]
#: What an update reads: :data:`Directions`, or any mapping of sequences like it (read-only, so that
#: directions that are never ``None``, EP's ``dict[str, list[Tensor]]``, are accepted as they are).
DirectionsIn = Mapping[str, Sequence[Tensor | None]]
#: Per group, a float for every parameter, or one tensor per parameter broadcasting against
#: it (e.g. shaped ``(S, 1, …)``: a coefficient per stacked member).
Coefficients = dict[str, float | list[Tensor]]


def apply_update(model: ConvergentRNN, directions: DirectionsIn, coefficients: Coefficients) -> None:
    """``p += c · d`` for every parameter of ``model.param_groups()`` that has a direction."""
    with torch.no_grad():
        for name, params in model.param_groups().items():
            c = coefficients[name]
            for j, (p, d) in enumerate(zip(params, directions[name])):
                if d is None:
                    continue
                if isinstance(c, (int, float)):
                    if torch.compiler.is_compiling():
                        # torch 2.13's inductor rewrites add(p, mm(a, b), alpha=c) as addmm(p, a, b),
                        # dropping c (post_grad.py's addmm pattern; results/speed/compile_check.py)
                        p.add_(d * c)
                    else:
                        p.add_(d, alpha=c)
                else:
                    p.addcmul_(d, c[j])


def by_group(model: ConvergentRNN, flat: list[Tensor | None]) -> Directions:
    """A flat list over ``model.param_groups()`` (e.g. ``torch.autograd.grad``'s) as :data:`Directions`."""
    out, i = {}, 0
    for name, params in model.param_groups().items():
        out[name] = list(flat[i:i + len(params)])
        i += len(params)
    return out


#: The optimizers an algorithm's update can go through (``plain`` SGD is the paper's and the default).
OPTIMIZERS = ("sgd", "adam")
#: How the learning rates move over the epochs: constant (the paper's), or a cosine from the suite's rates
#: at epoch 1 down to ``lr_floor`` after the last epoch (torch's CosineAnnealingLR with T_max = epochs,
#: or ``lr_period``, stepped per epoch: Laborieux et al. 2021's and Scellier et al. 2023's codes).
LR_SCHEDULES = ("constant", "cosine")


def cosine_lr(lr: float, floor: float, epoch: int, epochs: int) -> float:
    """The rate of ``epoch`` (1-based) on a cosine of half-period ``epochs`` from ``lr`` (epoch 1) towards
    ``floor``: torch's CosineAnnealingLR with T_max = ``epochs`` in closed form, which past T_max rises
    again (Laborieux et al. 2021's command anneals over 100 of its 120 epochs)."""
    return floor + (lr - floor) * (1 + math.cos(math.pi * (epoch - 1) / epochs)) / 2


class Update:
    """How an algorithm's estimate becomes a parameter change: the paper's plain SGD, or ``torch.optim``.

    An algorithm gives, per group, its direction ``d`` and the factor ``k`` such that ``k·d`` is its
    estimate of −∇L (EP: ``1/(n₂−n₁)·scale·batch``; BPTT: −1), and the per-group learning rates. Plain
    SGD (no momentum, no weight decay) applies ``p += (lr·k)·d`` through :func:`apply_update`, exactly as
    before optimizers existed (bit-identical). Otherwise ``p.grad = −k·d`` and a ``torch.optim``
    optimizer with one parameter group per layer (its learning rate) takes the step; its state
    (momentum, Adam's moments) lives here and goes into the run's checkpoint (:meth:`state_dict`).
    """

    def __init__(self, optimizer: str = "sgd", momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, adam_betas: tuple[float, float] | list[float] = (0.9, 0.999),
                 adam_eps: float = 1e-8, lr_schedule: str = "constant", lr_floor: float = 0.0,
                 lr_period: int | None = None):
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; known: {', '.join(OPTIMIZERS)}")
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"unknown lr_schedule {lr_schedule!r}; known: {', '.join(LR_SCHEDULES)}")
        if lr_floor and lr_schedule == "constant":
            raise ValueError("lr_floor is the end of a cosine lr_schedule; set lr_schedule = \"cosine\"")
        if lr_period is not None and lr_schedule == "constant":
            raise ValueError("lr_period is the T_max of a cosine lr_schedule; set lr_schedule = \"cosine\"")
        if lr_period is not None and lr_period < 1:
            raise ValueError(f"lr_period must be >= 1 epoch, got {lr_period}")
        self.lr_schedule, self.lr_floor, self.lr_period = lr_schedule, float(lr_floor), lr_period
        self.epoch, self.epochs = 1, 1  # where the schedule stands (start_epoch)
        if optimizer == "adam" and momentum:
            raise ValueError("momentum is an option of sgd; adam takes adam_betas")
        if nesterov and not momentum:
            raise ValueError("nesterov needs momentum > 0")
        if len(adam_betas) != 2:
            raise ValueError(f"adam_betas takes two values (β₁, β₂), got {list(adam_betas)}")
        if optimizer != "adam" and (tuple(adam_betas) != (0.9, 0.999) or adam_eps != 1e-8):
            raise ValueError("adam_betas and adam_eps are options of adam; this update is sgd (set "
                             "optimizer = \"adam\" or leave them out)")
        self.optimizer, self.momentum, self.weight_decay = optimizer, float(momentum), float(weight_decay)
        beta1, beta2 = adam_betas  # two values, checked above
        self.nesterov, self.adam_betas, self.adam_eps = bool(nesterov), (beta1, beta2), float(adam_eps)
        # one optimizer per model (the speed kind trains several copies with one algorithm; C-EP's
        # processes train a copy): its state never leaks from one model to another
        self._opts: weakref.WeakKeyDictionary[ConvergentRNN, torch.optim.Optimizer] = weakref.WeakKeyDictionary()
        self._last: torch.optim.Optimizer | None = None
        self._pending: dict | None = None

    @property
    def plain(self) -> bool:
        """The paper's SGD: stateless, so steps may be batched, paired and replayed as a CUDA graph (a
        scheduled rate changes between epochs: a graph would keep the first one)."""
        return (self.optimizer == "sgd" and not self.momentum and not self.weight_decay
                and self.lr_schedule == "constant")

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Where the learning-rate schedule stands: epoch ``epoch`` (1-based) of ``epochs``."""
        self.epoch, self.epochs = int(epoch), int(epochs)

    def rates(self, lrs: dict[str, float]) -> dict[str, float]:
        """The suite's per-group rates at the current epoch of the schedule."""
        if self.lr_schedule == "constant":
            return lrs
        period = self.lr_period or self.epochs
        return {name: cosine_lr(lr, self.lr_floor, self.epoch, period) for name, lr in lrs.items()}

    def __call__(self, model: ConvergentRNN, directions: DirectionsIn, factors: dict[str, float | list[Tensor]],
                 lrs: dict[str, float]) -> None:
        lrs = self.rates(lrs)
        if self.plain:
            apply_update(model, directions, {name: _times(lrs[name], k) for name, k in factors.items()})
            return
        opt = self._optimizer(model, lrs)
        for group, name in zip(opt.param_groups, model.param_groups()):
            group["lr"] = lrs[name]  # the schedule's rate of this epoch (the same rate when constant)
        with torch.no_grad():
            for name, params in model.param_groups().items():
                k = factors[name]
                for j, (p, d) in enumerate(zip(params, directions[name])):
                    p.grad = None if d is None else (d * (-k) if isinstance(k, (int, float)) else d * -k[j])
        opt.step()
        opt.zero_grad(set_to_none=True)

    def _optimizer(self, model: ConvergentRNN, lrs: dict[str, float]) -> torch.optim.Optimizer:
        opt = self._opts.get(model)
        if opt is None:
            groups = [{"params": params, "lr": lrs[name]} for name, params in model.param_groups().items()]
            if self.optimizer == "sgd":
                opt = torch.optim.SGD(groups, lr=0.0, momentum=self.momentum,
                                      weight_decay=self.weight_decay, nesterov=self.nesterov)
            else:
                opt = torch.optim.Adam(groups, lr=0.0, betas=self.adam_betas, eps=self.adam_eps,
                                       weight_decay=self.weight_decay)
            if self._pending is not None:  # a resumed run: the state saved with its checkpoint
                opt.load_state_dict(self._pending)
                self._pending = None
            self._opts[model] = opt
        self._last = opt
        return opt

    def state_dict(self) -> dict:
        """The state of the optimizer of the model trained last (empty for plain SGD, or before the
        first step)."""
        if self._last is None:
            return dict(self._pending or {})
        return self._last.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (applied when the next model's optimizer is built)."""
        self._pending = dict(state) if state else None
        self._opts.clear()
        self._last = None


def _times(lr: float, k: float | list[Tensor]) -> float | list[Tensor]:
    return lr * k if isinstance(k, (int, float)) else [lr * t for t in k]


def optimizer_params() -> list:
    """The suite parameters of :class:`Update`, shared by every algorithm that trains. All but ``lr``
    came after results were stored and default to the paper's plain SGD: ``quiet_default`` keeps
    them out of run ids while at their defaults (those runs are the same as before)."""
    from harness.api.components import Param

    return [
        Param("lr", list[float] | None, None,
              "learning rates, one per parameter group, input → output (needed to train)", min=0),
        Param("optimizer", str, "sgd", "sgd (the paper's, with momentum = weight_decay = 0: plain SGD) or "
              "adam, through torch.optim, one parameter group per layer", choices=OPTIMIZERS, quiet_default=True),
        Param("momentum", float, 0.0, "SGD momentum", min=0, max=0.999999, quiet_default=True),
        Param("nesterov", bool, False, "Nesterov momentum (SGD, needs momentum > 0)", quiet_default=True),
        Param("weight_decay", float, 0.0, "L2 weight decay (torch.optim's)", min=0, quiet_default=True),
        Param("adam_betas", list[float], [0.9, 0.999], "Adam's β₁, β₂", min=0, max=0.999999, quiet_default=True),
        Param("adam_eps", float, 1e-8, "Adam's ε", min=0, quiet_default=True),
        Param("lr_schedule", str, "constant", "constant (the paper's), or cosine: from lr at epoch 1 towards "
              "lr_floor, stepped per epoch (T_max = the run's epochs)", choices=LR_SCHEDULES, quiet_default=True),
        Param("lr_floor", float, 0.0, "where a cosine lr_schedule ends", min=0, quiet_default=True),
        Param("lr_period", int | None, None, "the cosine's T_max in epochs (None: the run's epochs); past it the "
              "rate rises again, as torch's CosineAnnealingLR", min=1, max=10**5, quiet_default=True),
    ]
