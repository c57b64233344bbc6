"""The model contract: a convergent RNN with static input, described by Φ.

A model is its dynamics ``s_{t+1} = F(x, s_t, θ) − β ∂ℓ/∂s(s_t, y)`` and its
primitive function ``Φ(x, s, θ)``. EP, BPTT and the GDU analysis are written
once against this class, so any model implementing it gets all of them.

Conventions (the paper's; docs/models.md states its equations):
  * the state is a tuple of tensors, index 0 is the output layer ``s^0``,
    index n the n-th hidden layer counted from the output; every tensor has a
    leading batch dimension; the input ``x`` is clamped, not part of the state;
  * ``ℓ(s, y) = ½‖s^0 − y‖²`` per sample, ``y`` one-hot; a model may replace it
    (:meth:`ConvergentRNN.loss` with :meth:`ConvergentRNN.dloss_ds`), e.g. the
    cross-entropy of a readout ``z = W·s^0 + b`` of Laborieux et al. 2021, whose
    parameters (:attr:`ConvergentRNN.loss_groups`) enter ℓ and not Φ; index 0 is
    then the layer the readout reads;
  * ``Φ`` is per sample (shape ``(batch,)``); ``∂Φ/∂θ`` is summed over the batch;
  * parameter groups are ordered from the input towards the output, as the
    paper's Table 4 lists learning rates.

Fast paths (optional; each has a generic default, so a model that ignores them
works unchanged): :meth:`ConvergentRNN.prepare` precomputes what is constant
during a mini-batch (the clamped input's drive) and returns a :class:`Clamped`
that the algorithms pass in place of ``x``; :meth:`ConvergentRNN.steps` /
``relax(..., output_at=...)`` may skip the layers that cannot reach the output
layer when only that is used (prediction, BPTT's loss); :meth:`dphi_dtheta` and
:meth:`dphi_delta` may use explicit formulas. A model's ``fast`` attribute is
the one switch of its fast paths: ``False`` is the generic path (autograd on Φ,
every layer at every step, the drive recomputed at every step). Every fast path
is tested equal to the generic path (tests/test_fast_paths.py). A suite sets
it with the run key ``fast = false``, which, like ``batch_seeds``, is not part
of a run's id: it changes no result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from harness.api.components import optional_member

State = tuple[Tensor, ...]


@dataclass
class Clamped:
    """A mini-batch's clamped input ``x`` with what a model precomputed from it.

    :meth:`ConvergentRNN.prepare` may return one (e.g. holding the input's drive
    ``W·x + b`` into the first hidden layer, computed once per mini-batch rather
    than at every step); the algorithms then pass it wherever ``x`` goes, and the
    model that made it reads ``cache``. :func:`raw` gives back the tensor ``x``.
    """

    x: Tensor
    cache: dict[str, Any] = field(default_factory=dict)


def raw(x: Tensor | Clamped) -> Tensor:
    """The input tensor itself, whether ``x`` is a tensor or a :class:`Clamped`."""
    return x.x if isinstance(x, Clamped) else x


class ConvergentRNN(nn.Module):
    """Base class of every model plugin.

    Subclasses implement :meth:`init_state`, :meth:`phi` and :meth:`param_groups`;
    the rest, :meth:`step` included (derived from Φ by autograd), has generic
    defaults that a model may replace with faster explicit formulas (the kit
    checks them against the defaults).

    Optional members, each declared below with its type and default (a model sets only those it
    changes): ``layer_names``, ``input_shape`` / ``input_size``, ``derives_from_phi``, ``nudge_scale``,
    ``fast``, ``compile_pays``, ``members`` / ``supports_members``, ``clip_range``, ``step_activation`` /
    ``nudge_in_activation``, ``supports_complex``, ``loss_groups``; the fast paths :meth:`prepare`, :meth:`steps`,
    :meth:`dphi_delta`, :meth:`dphi_dtheta`. The core reads them as plain attributes; where an object
    may not inherit this class it reads them through :func:`capability`, which refuses a name not
    declared here.
    """

    #: Names of the state layers, index 0 = output (e.g. ``("s0", "s1")``).
    layer_names: tuple[str, ...] = ()
    #: The shape of one input, e.g. ``(1, 28, 28)``; ``()``: the model gives :attr:`input_size` (or neither).
    input_shape: tuple[int, ...] = ()
    #: The units of one flat input, where :attr:`input_shape` is not given; ``0``: not declared.
    input_size: int = 0
    #: True when ``F = ∂Φ/∂s`` exactly, so the GDU theorem holds exactly.
    derives_from_phi: bool = True
    #: The nudge actually applied is ``beta * nudge_scale`` (``ε`` for the EB
    #: nets, Eq. 35); EP divides its processes by this effective β.
    nudge_scale: float = 1.0
    #: The switch of every fast path the model has (cached input drive, skipped
    #: layers, explicit ∂Φ/∂θ). ``False`` must give exactly the generic path:
    #: the drive recomputed at every step, every layer updated at every step,
    #: ∂Φ/∂θ by autograd on Φ. Models that have no fast path ignore it.
    fast: bool = False
    #: Number of independent members stacked along a leading *seed* dimension
    #: (0: an ordinary model). Only models with ``supports_members`` accept it;
    #: see :meth:`batch_dim`.
    members: int = 0
    #: True when the model's code broadcasts over a leading seed dimension, so that it accepts ``members``.
    supports_members: bool = False
    #: ``(low, high)``: the generic step clips every unit to it after each step (the EB nets' [0, 1]);
    #: ``None``: no clip, or a step that is not the clipped ∂Φ/∂s even inside the range (the kit then
    #: does not derive it). A clipped model's F is not ∂Φ/∂s everywhere (set ``derives_from_phi``).
    clip_range: tuple[float, float] | None = None
    #: The prototypical nets' step is ``σ(∂Φ/∂s)`` plus the nudge on the output layer, with σ this
    #: function (elementwise), or one function per layer (a tuple in :attr:`layer_names`' order: a
    #: linear output layer beside σ on the others); the kit checks a written step against it by autograd
    #: on Φ, as it checks ``F = ∂Φ/∂s`` for a model that derives from Φ. ``None``: no such claim.
    step_activation: Callable[[Tensor], Tensor] | tuple[Callable[[Tensor], Tensor], ...] | None = None
    #: With :attr:`step_activation`: True when the output's nudge enters inside σ, ``s⁰ ← σ(∂Φ/∂s⁰ +
    #: β·nudge_scale·(y − s⁰))``, so that the step is ``σ(∂(Φ − βℓ)/∂s)`` (the DCHN of Laborieux et al.'s
    #: code); False: ``σ(∂Φ/∂s) + β(y − s⁰)``, the 2019 paper's P nets. Inside, EP's update tends to the
    #: gradient at the fixed point as β → 0 wherever σ is differentiable; outside, a saturated output unit
    #: (σ' = 0) keeps a bias that β does not shrink (results/dchn/).
    nudge_in_activation: bool = False
    #: True when the step is holomorphic in the state (no clip, no max, an analytic σ), so that it
    #: can run on complex states (holomorphic EP; :func:`holomorphic_grad` for Φ's derivatives).
    supports_complex: bool = False
    #: The parameter groups that enter the loss ℓ and not Φ (a readout: the cross-entropy output of
    #: Laborieux et al. 2021), listed in :meth:`param_groups` like the others. EP's update of them is
    #: the EP formula applied to ``Φ − β·ℓ``: ``−∂ℓ/∂θ`` at the nudged state(s) (:func:`nudged_delta`);
    #: BPTT and RBP differentiate ℓ directly; their per-step processes are not defined (:meth:`phi_groups`).
    loss_groups: tuple[str, ...] = ()

    # -- required ----------------------------------------------------------
    def init_state(self, x: Tensor) -> State:
        """The initial state ``s_0`` (zeros) for a batch of inputs."""
        raise NotImplementedError

    def phi(self, x: Tensor, state: State) -> Tensor:
        """The primitive function Φ(x, s, θ), one value per sample."""
        raise NotImplementedError

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Named parameter groups, one per layer of weights, input → output."""
        raise NotImplementedError

    # -- the dynamics, derived from Φ unless the model writes them out ------------
    def step(self, x: Tensor | Clamped, state: State, y: Tensor | None = None, beta: float = 0.0) -> State:
        """One step of the dynamics, nudged towards one-hot ``y`` when ``beta != 0``.

        Generic: :meth:`derived_step`, ``s_{t+1} = ∂Φ/∂s(x, s_t) − β·nudge_scale·∂ℓ/∂s(s_t, y)`` by
        autograd, so a model is its Φ. A model may write the step out (a fast path); the kit checks
        it against the derived one (``F = ∂Φ/∂s`` and the nudge)."""
        return self.derived_step(x, state, y, beta)

    def derived_step(self, x: Tensor | Clamped, state: State, y: Tensor | None = None,
                     beta: float = 0.0) -> State:
        """``∂Φ/∂s(x, s) − β·nudge_scale·∂ℓ/∂s(s, y)``, clipped to :attr:`clip_range` if set.

        In grad mode the result stays in the graph (BPTT differentiates through it, second
        derivatives of Φ included); in no-grad mode it is plain values."""
        graph = torch.is_grad_enabled()
        with torch.enable_grad():
            # a view, not the state itself: the gradient of Φ must not reach the state's own hooks
            # (BPTT's retain_grad would count it as part of ∂L/∂s)
            s = tuple(t.view_as(t) if graph and t.requires_grad else t.detach().requires_grad_() for t in state)
            grads = holomorphic_grad(self.phi(raw(x), s).sum(), s, create_graph=graph, allow_unused=True)
        new = [torch.zeros_like(t) if g is None else (g if graph else g.detach()) for t, g in zip(state, grads)]
        if beta != 0.0 and y is not None:  # −β·scale·∂ℓ/∂s
            new = [t if g is None else t - (beta * self.nudge_scale) * g
                   for t, g in zip(new, self.dloss_ds(state, y))]
        if self.clip_range is not None:
            new = [t.clamp(*self.clip_range) for t in new]
        return tuple(new)

    def forward(self, x: Tensor, state: State, y: Tensor | None = None, beta: float = 0.0) -> State:
        """Same as :meth:`step`; lets ``torch.func.functional_call`` run a step with other parameters."""
        return self.step(x, state, y, beta)

    # -- generic defaults --------------------------------------------------
    def prepare(self, x: Tensor) -> Tensor | Clamped:
        """Precompute what does not change during a mini-batch (generic: nothing).

        Called in the grad mode in which the result will be used (BPTT prepares
        with gradients enabled, so the cached drive stays in the graph). The
        result replaces ``x`` in :meth:`step`, :meth:`steps`, :meth:`relax` and
        :meth:`dphi_dtheta`; it is only valid until the parameters change.
        """
        return x

    def batch_dim(self) -> int:
        """Index of the batch dimension of states and losses (1 when members are stacked)."""
        return 1 if self.members else 0

    def steps(self, x: Tensor | Clamped, state: State, n: int, y: Tensor | None = None, beta: float = 0.0,
              *, output_at: int | None = None) -> State:
        """``n`` steps of the dynamics in the current grad mode.

        ``output_at``: the caller will only use the output layer ``s^0``, and only
        ``output_at ≥ n`` steps after ``state`` (the run continues with the same
        promise). A model may then skip the updates that cannot reach it (the
        layered P nets' other chain, Appendix C.6); the other layers of the result
        are unspecified. The generic default updates everything.
        """
        for _ in range(n):
            state = self.step(x, state, y, beta)
        return state

    def dphi_delta(self, x: Tensor | Clamped, after: State, before: State) -> dict[str, list[Tensor]]:
        """``∂Φ/∂θ(after) − ∂Φ/∂θ(before)`` per group (EP's telescoped update, times β·scale·batch).

        A model may compute it directly (e.g. one matmul for the input weights,
        whose other factor ``x`` is common to both); generic: two :meth:`dphi_dtheta`.
        """
        a, b = self.dphi_dtheta(x, after), self.dphi_dtheta(x, before)
        return {g: [u - v for u, v in zip(a[g], b[g])] for g in a}

    def loss(self, state: State, y: Tensor) -> Tensor:
        """``ℓ = ½‖s^0 − y‖²`` per sample (a model that changes it changes :meth:`dloss_ds` with it)."""
        d = self.batch_dim()
        diff = (state[0] - y).flatten(d + 1)
        return 0.5 * (diff * diff).sum(-1)

    def dloss_ds(self, state: State, y: Tensor) -> tuple[Tensor | None, ...]:
        """``∂ℓ/∂s`` per sample and layer (None where ℓ does not depend on the layer): the nudge is
        ``−β·nudge_scale`` times it. Here that of :meth:`loss`, ``s^0 − y``; the kit checks a model's
        against autograd on its :meth:`loss`."""
        return (state[0] - y,) + (None,) * (len(state) - 1)

    def dloss_dtheta(self, state: State, y: Tensor) -> dict[str, list[Tensor]]:
        """``∂ℓ/∂θ`` summed over the batch for each of :attr:`loss_groups` (autograd on :meth:`loss`)."""
        groups = {g: self.param_groups()[g] for g in self.loss_groups}
        flat = [p for ps in groups.values() for p in ps]
        with torch.enable_grad():
            grads = torch.autograd.grad(self.loss(tuple(s.detach() for s in state), y).sum(), flat,
                                        allow_unused=True)
        out, i = {}, 0
        for name, ps in groups.items():
            out[name] = [torch.zeros_like(p) if g is None else g for g, p in zip(grads[i:i + len(ps)], ps)]
            i += len(ps)
        return out

    def phi_groups(self) -> dict[str, list[nn.Parameter]]:
        """:meth:`param_groups` without :attr:`loss_groups`: the parameters of Φ, whose updates have the
        per-step processes of the GDU theorem (a readout's update has none: it is one direct term)."""
        return {g: ps for g, ps in self.param_groups().items() if g not in self.loss_groups}

    def predict(self, state: State) -> Tensor:
        return self.labels(state[0])

    def labels(self, y: Tensor) -> Tensor:
        """Class indices of output-shaped values (the argmax; inverse of :meth:`target`)."""
        return y.flatten(self.batch_dim() + 1).argmax(-1)

    def target(self, labels: Tensor) -> Tensor:
        """One-hot targets shaped like the output layer."""
        return nn.functional.one_hot(labels, self.num_classes).to(self.dtype)

    def step_gradient_gap(self, x: Tensor, state: State) -> float:
        """``max |step(x, s) − ∂Φ/∂s| / max |∂Φ/∂s|`` at ``state``: 0 up to rounding for a model whose
        ``F = ∂Φ/∂s`` (``derives_from_phi``), which the GDU theorem needs exactly."""
        with torch.enable_grad():
            s = tuple(t.detach().clone().requires_grad_() for t in state)
            grads = torch.autograd.grad(self.phi(x, s).sum(), s, allow_unused=True)
        with torch.no_grad():
            f = self.step(x, state)
        gap = max((float((a - (torch.zeros_like(a) if g is None else g)).abs().max()) for a, g in zip(f, grads)),
                  default=0.0)
        scale = max((float(g.abs().max()) for g in grads if g is not None and g.numel()), default=0.0)
        return gap / max(scale, 1e-30)

    @property
    def compile_pays(self) -> bool | tuple[str, ...]:
        """Where the speed suite measured the compiled training step faster on a CPU (``compile = "auto"``):
        True for every algorithm, or the names of the algorithms for which it is. Default False: nowhere
        (a model sets a class attribute, or a property where it depends on its sizes)."""
        return False

    @property
    def num_classes(self) -> int:
        """Units of the output layer: a subclass sets ``self.num_classes = n`` or overrides this."""
        try:
            return self.__dict__["_num_classes"]
        except KeyError:
            raise NotImplementedError(f"{type(self).__name__} sets no num_classes (assign it in __init__, "
                                      "or define the property)") from None

    @num_classes.setter
    def num_classes(self, value: int) -> None:
        self.__dict__["_num_classes"] = int(value)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def dphi_dtheta(self, x: Tensor | Clamped, state: State) -> dict[str, list[Tensor]]:
        """∂Φ/∂θ summed over the batch, per parameter group (autograd on Φ)."""
        groups = self.param_groups()
        flat = [p for ps in groups.values() for p in ps]
        x = raw(x)
        with torch.enable_grad():
            state = tuple(s.detach() for s in state)
            grads = holomorphic_grad(self.phi(x, state).sum(), flat, allow_unused=True)
        out, i = {}, 0
        for name, ps in groups.items():
            out[name] = [g if g is not None else torch.zeros_like(p) for g, p in zip(grads[i:i + len(ps)], ps)]
            i += len(ps)
        return out

    def relax(self, x: Tensor | Clamped, state: State, steps: int, y: Tensor | None = None,
              beta: float = 0.0, *, output_at: int | None = None) -> State:
        """Run ``steps`` steps of the dynamics without recording a graph (see :meth:`steps`)."""
        with torch.no_grad():
            return self.steps(x, state, steps, y, beta, output_at=output_at)


def nudged_delta(model: ConvergentRNN, x: Tensor | Clamped, after: State, before: State, y: Tensor,
                 nudges: tuple[float, float]) -> dict[str, list[Tensor]]:
    """``∂Φ_{n₂}/∂θ(after) − ∂Φ_{n₁}/∂θ(before)`` with ``Φ_n = Φ − n·nudge_scale·ℓ``: EP's update
    before its factor ``1 / ((n₂ − n₁)·nudge_scale·batch)``, where ``after`` and ``before`` are the
    states of nudges ``n₂`` and ``n₁``. For Φ's parameters ℓ changes nothing (:meth:`dphi_delta`); the
    :attr:`~ConvergentRNN.loss_groups` get ``−n₂·scale·∂ℓ/∂θ(after) + n₁·scale·∂ℓ/∂θ(before)``."""
    delta = model.dphi_delta(x, after, before)
    for n, state, sign in ((nudges[1], after, -1.0), (nudges[0], before, 1.0)):
        if n == 0 or not model.loss_groups:
            continue
        k = sign * n * model.nudge_scale
        for g, grads in model.dloss_dtheta(state, y).items():
            delta[g] = [d + k * v for d, v in zip(delta[g], grads)]
    return delta


def layer_activations(model: ConvergentRNN) -> tuple[Callable[[Tensor], Tensor], ...] | None:
    """:attr:`~ConvergentRNN.step_activation` as one function per layer (None: the model claims none)."""
    act = model.step_activation
    if act is None or isinstance(act, tuple):
        return act
    return (act,) * len(model.layer_names)


def capability(model: object, name: str) -> Any:
    """A model's optional member ``name`` (declared on :class:`ConvergentRNN`): its own value, else, for
    an object that does not inherit the class, the declared default. Refuses an undeclared name."""
    return optional_member(ConvergentRNN, model, name)


def holomorphic_grad(out: Tensor, inputs: Sequence[Tensor], **kwargs: Any) -> tuple[Tensor | None, ...]:
    """``∂out/∂inputs`` by autograd; for a complex ``out`` (a holomorphic function of complex inputs),
    the complex derivative: autograd returns its conjugate (PyTorch's convention for a real loss)."""
    if not out.is_complex():
        return torch.autograd.grad(out, inputs, **kwargs)
    grads = torch.autograd.grad(out, inputs, grad_outputs=torch.ones_like(out), **kwargs)
    return tuple(None if g is None else g.conj_physical() for g in grads)


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


def stack_members(models: Sequence[ConvergentRNN]) -> ConvergentRNN:
    """One model running ``len(models)`` independent copies along a leading seed dimension.

    Each parameter becomes the stack of the members' parameters (shape ``(S, …)``);
    the model must declare ``supports_members`` (its code broadcasts over the
    leading dimension). Member ``i`` of the result behaves exactly as ``models[i]``.
    """
    import copy

    first = models[0]
    if not first.supports_members:
        raise ValueError(f"{type(first).__name__} cannot stack seed members (supports_members is False)")
    stacked = copy.deepcopy(first)
    named = [dict(m.named_parameters()) for m in models]
    for name, _ in first.named_parameters():
        prefix, _, leaf = name.rpartition(".")
        module = stacked.get_submodule(prefix) if prefix else stacked
        setattr(module, leaf, nn.Parameter(torch.stack([n[name].detach() for n in named])))
    stacked.members = len(models)
    return stacked


def member_state(model: ConvergentRNN, i: int) -> dict[str, Tensor]:
    """The ``state_dict`` of member ``i`` of a stacked model (loads into an ordinary one)."""
    return {k: v[i].detach().clone() for k, v in model.state_dict().items()}
