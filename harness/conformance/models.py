"""The model checks: the contract (state, step, Φ, groups, nudge), F = ∂Φ/∂s or the derived
step, the fast paths, the GDU theorem in float64, and one EP and one BPTT step."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from harness.api.components import Component, Registry, member_problems
from harness.api.model import ConvergentRNN, layer_activations

from .base import (
    D64,
    MAX_RELAX_STEPS,
    THEOREM_BETA,
    THEOREM_K,
    THEOREM_RELMSE,
    TOL_EXACT,
    TOL_SETTLED,
    CheckFailed,
    CheckResult,
    CheckSkipped,
    _Checks,
    _maxdiff,
    _scale,
    _seeded,
    _shape,
)
from .build import _build, _registered, as_component, example_params, start_checks


# -- models --------------------------------------------------------------------
class _ModelKit:
    """The state shared by the model checks (the built model, inputs, states)."""

    B = 3

    def __init__(self, comp: Component, params: dict[str, Any], registry: Registry | None,
                 input_shape: tuple[int, ...] | None, seed: int):
        self.comp, self.params, self.registry, self.seed = comp, params, registry, seed
        self.input_shape = input_shape
        self.model: ConvergentRNN | None = None
        self.gen = torch.Generator().manual_seed(1234 + seed)

    # helpers
    def build(self) -> ConvergentRNN:
        with _seeded(self.seed):
            return _build(self.comp, self.params)

    def data(self, model: ConvergentRNN, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        g = torch.Generator().manual_seed(99 + self.seed)
        assert self.input_shape is not None  # given, or set by the "builds" check that every other needs
        x = torch.rand(self.B, *self.input_shape, generator=g).to(dtype)
        labels = torch.randint(0, model.num_classes, (self.B,), generator=g)
        return x, model.target(labels).to(dtype)

    def random_state(self, model: ConvergentRNN, x: Tensor, offset: int = 0) -> tuple[Tensor, ...]:
        g = torch.Generator().manual_seed(7 + offset + self.seed)
        return tuple((torch.rand(s.shape, generator=g) * 1.2 - 0.1).to(x.dtype) for s in model.init_state(x))

    def case64(self) -> tuple[ConvergentRNN, Tensor, Tensor, tuple[Tensor, ...]]:
        """A float64 copy of the model, a batch (x, one-hot y) and a random state: the numerical checks' case."""
        m = self.model64()
        x, y = self.data(m, D64)
        return m, x, y, self.random_state(m, x)

    def model64(self) -> ConvergentRNN:
        assert self.model is not None  # set by the "builds" check that every other needs
        return copy.deepcopy(self.model).to(D64)

    def algorithm(self, name: str, params: dict[str, Any]):
        return _registered(self.registry, "algorithm", name, params)

    # checks
    def builds(self):
        model = self.build()
        if not isinstance(model, ConvergentRNN):
            raise CheckFailed(f"the factory returned {type(model).__name__}, expected a subclass of "
                              f"harness.api.model.ConvergentRNN (EP, BPTT and the GDU analysis use its "
                              f"step/phi/param_groups contract)")
        self.model = model
        names = model.layer_names
        if not isinstance(names, tuple) or not names or not all(isinstance(n, str) for n in names):
            raise CheckFailed(f"layer_names must be a non-empty tuple of strings (index 0 = output layer), "
                              f"found {names!r}")
        if len(set(names)) != len(names):
            raise CheckFailed(f"layer_names must be distinct, found {names!r}")
        if not isinstance(model.num_classes, int) or model.num_classes < 1:
            raise CheckFailed(f"num_classes must be a positive int, found {model.num_classes!r}")
        problems = member_problems(ConvergentRNN, model)
        if problems:
            raise CheckFailed(f"{type(model).__name__}: {'; '.join(problems)}; set each to the type that "
                              f"harness.api.model.ConvergentRNN declares")
        if self.input_shape is None:
            shape = model.input_shape or ((model.input_size,) if model.input_size else None)
            if shape is None:
                raise CheckFailed("cannot tell the shape of one input: give the model an `input_shape` "
                                  "(tuple) or `input_size` (int) attribute, or pass input_shape=... to the kit")
            self.input_shape = tuple(int(v) for v in shape)
        nparams = sum(p.numel() for p in model.parameters())
        return (f"{type(model).__name__}: layers {', '.join(names)}, {nparams} parameters, "
                f"input shape {self.input_shape}, {model.num_classes} classes")

    def state(self):
        m = self.model
        x, _ = self.data(m, m.dtype)
        s = m.init_state(x)
        if not isinstance(s, tuple):
            raise CheckFailed(f"init_state must return a tuple of tensors (one per layer), found "
                              f"{type(s).__name__}")
        if len(s) != len(m.layer_names):
            raise CheckFailed(f"init_state returned {len(s)} tensors but layer_names has {len(m.layer_names)} "
                              f"entries {m.layer_names}; they must match one to one (index 0 = output)")
        for name, t in zip(m.layer_names, s):
            if not isinstance(t, Tensor):
                raise CheckFailed(f"init_state: layer {name!r} is {type(t).__name__}, expected a tensor")
            if t.dim() < 2 or t.shape[0] != self.B:
                raise CheckFailed(f"init_state: layer {name!r} has shape {_shape(t)}; expected the batch "
                                  f"({self.B}) as leading dimension, then the layer's shape")
            if t.dtype != x.dtype or t.device != x.device:
                raise CheckFailed(f"init_state: layer {name!r} is {t.dtype} on {t.device}, expected the "
                                  f"input's {x.dtype} on {x.device} (build states with dtype=x.dtype, "
                                  f"device=x.device)")
            if bool(t.any()):
                raise CheckFailed(f"init_state: layer {name!r} is not zero; s_0 must be zeros (the paper's "
                                  f"initial state, which EP and BPTT both start from)")
        out0 = s[0].flatten(1).shape[1]
        if not m.loss_groups and out0 != m.num_classes:
            raise CheckFailed(f"the output layer {m.layer_names[0]!r} has {out0} units but num_classes is "
                              f"{m.num_classes}; ℓ = ½‖s⁰ − y‖² needs one output unit per class")
        return ", ".join(f"{n} {_shape(t)}" for n, t in zip(m.layer_names, s)) + ", zeros"

    def step_shapes(self):
        m = self.model
        x, y = self.data(m, m.dtype)
        s = self.random_state(m, x)
        with torch.no_grad():
            for label, new in (("step(x, s)", m.step(x, s)), ("step(x, s, y, β=0.5)", m.step(x, s, y, 0.5))):
                if not isinstance(new, tuple) or len(new) != len(s):
                    raise CheckFailed(f"{label} returned {type(new).__name__} of length "
                                      f"{len(new) if isinstance(new, (tuple, list)) else '?'}; expected a tuple "
                                      f"of {len(s)} tensors like init_state ({', '.join(m.layer_names)})")
                for name, a, b in zip(m.layer_names, s, new):
                    if not isinstance(b, Tensor) or b.shape != a.shape or b.dtype != a.dtype:
                        found = f"{_shape(b)} {b.dtype}" if isinstance(b, Tensor) else type(b).__name__
                        raise CheckFailed(f"{label} changed layer {name!r}: found {found}, expected "
                                          f"{_shape(a)} {a.dtype} as the state it was given; a step must "
                                          f"keep every layer's shape and dtype")
                    if not bool(torch.isfinite(b).all()):
                        raise CheckFailed(f"{label} gave non-finite values in layer {name!r} from a state in "
                                          f"[-0.1, 1.1]")
        return "step keeps every layer's shape and dtype, free and nudged"

    def nudge(self):
        m, x, y, s = self.case64()
        beta = 0.1
        with torch.no_grad():
            free, nudged = m.step(x, s), m.step(x, s, y, beta)
            same = m.step(x, s, y, 0.0)
        for name, a, b in zip(m.layer_names, free, same):
            if _maxdiff(a, b) > TOL_EXACT * _scale(a):
                raise CheckFailed(f"step(x, s, y, β=0) differs from step(x, s) on layer {name!r} "
                                  f"(max |difference| {_maxdiff(a, b):.3g}); β = 0 must be the free dynamics")
        with torch.enable_grad():
            sg = tuple(t.clone().requires_grad_() for t in s)
            dl = torch.autograd.grad(m.loss(sg, y).sum(), sg, allow_unused=True)
        scale = float(m.nudge_scale)
        if m.nudge_in_activation and m.step_activation is None:
            raise CheckFailed("nudge_in_activation = True says the nudge enters inside σ, but step_activation is "
                              "None, so there is no σ to check it against: declare the step's σ as "
                              "step_activation, or set nudge_in_activation = False")
        act = layer_activations(m) if m.nudge_in_activation else None
        if act is not None:  # the nudge inside σ: σ(∂Φ/∂s − β·scale·∂ℓ/∂s) − σ(∂Φ/∂s), by autograd on Φ
            with torch.no_grad():
                inside = [f(a) - f(b) for f, a, b in zip(act, m.derived_step(x, s, y, beta), m.derived_step(x, s))]
        for i, (name, f, n, g) in enumerate(zip(m.layer_names, free, nudged, dl)):
            g = torch.zeros_like(f) if g is None else g
            expected = -beta * scale * g if act is None else inside[i]
            found = n - f
            if _maxdiff(found, expected) > TOL_EXACT * max(_scale(expected), 1e-3):
                denom = float((g * g).sum())
                implied = float(-(found * g).sum() / (beta * denom)) if denom > 0 else float("nan")
                raise CheckFailed(
                    f"the nudge on layer {name!r} is not −β·nudge_scale·∂ℓ/∂s: step(x, s, y, β) − step(x, s) "
                    f"differs from it by up to {_maxdiff(found, expected):.3g} (β = {beta}, nudge_scale = "
                    f"{scale}" + (f"; the nudge found corresponds to a scale of {implied:.4g}" if denom > 0
                                  and math.isfinite(implied) else "") +
                    "). EP divides its updates by β·nudge_scale, so set nudge_scale to the factor the step "
                    "applies (e.g. ε for the EB nets), and nudge only the output layer")
        if act is not None:
            return f"step(x, s, y, β) − step(x, s) = σ(∂Φ/∂s − β·{scale:g}·∂ℓ/∂s) − σ(∂Φ/∂s) on every layer (inside σ)"
        return f"step(x, s, y, β) − step(x, s) = −β·{scale:g}·∂ℓ/∂s on every layer"

    def loss(self):
        """ℓ per sample; ``dloss_ds`` equals autograd of ``loss`` (the nudge's source); ``loss_groups`` name
        parameter groups that ℓ depends on and Φ does not; ``predict`` gives class indices."""
        m, x, y, s = self.case64()
        with torch.enable_grad():
            sg = tuple(t.clone().requires_grad_() for t in s)
            per_sample = m.loss(sg, y)
            if per_sample.shape != (self.B,):
                raise CheckFailed(f"loss(s, y) has shape {_shape(per_sample)}; expected one value per sample "
                                  f"({self.B},)")
            ref = torch.autograd.grad(per_sample.sum(), sg, allow_unused=True)
        for name, got, want in zip(m.layer_names, m.dloss_ds(s, y), ref):
            want = None if want is None or not bool(want.any()) else want
            got = None if got is None or not bool(got.any()) else got
            if (got is None) != (want is None) or (got is not None and want is not None and
                                                    _maxdiff(got, want) > TOL_EXACT * max(_scale(want), 1.0)):
                raise CheckFailed(f"dloss_ds on layer {name!r} differs from autograd of loss (the nudge is "
                                  f"−β·nudge_scale·dloss_ds): a model that changes loss changes dloss_ds with it")
        groups = m.param_groups()
        for g in m.loss_groups:
            if g not in groups:
                raise CheckFailed(f"loss_groups names {g!r}, which is not a parameter group ({', '.join(groups)})")
            with torch.enable_grad():
                used = torch.autograd.grad(m.loss(s, y).sum(), groups[g], allow_unused=True)
                in_phi = torch.autograd.grad(m.phi(x, s).sum(), groups[g], allow_unused=True)
            if all(u is None for u in used):
                raise CheckFailed(f"loss_groups names {g!r}, but the loss does not depend on it")
            if any(v is not None and bool(v.any()) for v in in_phi):
                raise CheckFailed(f"loss_groups names {g!r}, but Φ depends on it: a loss group is a readout "
                                  "that enters ℓ only")
        with torch.no_grad():
            pred = m.predict(s)
        if pred.shape != (self.B,) or pred.dtype != torch.int64 or bool((pred < 0).any()) \
                or bool((pred >= m.num_classes).any()):
            raise CheckFailed(f"predict(s) gave {_shape(pred)} {pred.dtype}; expected ({self.B},) class indices in "
                              f"[0, {m.num_classes})")
        readout = f"; readout {', '.join(m.loss_groups)} in ℓ only" if m.loss_groups else ""
        return f"ℓ per sample, dloss_ds = autograd of loss{readout}"

    def determinism(self):
        a, b = self.build(), self.build()
        sa, sb = a.state_dict(), b.state_dict()
        if list(sa) != list(sb):
            raise CheckFailed(f"building twice gave different parameter names: {list(sa)} vs {list(sb)}")
        for k in sa:
            if sa[k].shape != sb[k].shape or not torch.equal(sa[k], sb[k]):
                raise CheckFailed(
                    f"building twice with the same seed (seed_everything({self.seed})) gave different values "
                    f"for {k!r} (max |difference| {_maxdiff(sa[k].float(), sb[k].float()):.3g}); initialise "
                    f"only from torch's global generator (torch.manual_seed), never from time, os.urandom or "
                    f"an unseeded generator, so runs are reproducible and EP/BPTT runs share their init")
        x, y = self.data(a, a.dtype)
        s = self.random_state(a, x)
        with torch.no_grad():
            outs = [a.step(x, s, y, 0.5), b.step(x, s, y, 0.5), a.step(x, s, y, 0.5)]
        for name, u, v, w in zip(a.layer_names, *outs):
            if not (torch.equal(u, v) and torch.equal(u, w)):
                raise CheckFailed(f"step is not deterministic: two equal models (or one model twice) give "
                                  f"different next states on layer {name!r}; a step must depend only on "
                                  f"(x, s, y, β) and the parameters")
        return f"same seed, same {len(sa)} tensors and same steps"

    def param_groups(self):
        m = self.model
        groups = m.param_groups()
        if not isinstance(groups, dict) or not groups:
            raise CheckFailed(f"param_groups() must return a non-empty dict name -> list of parameters, "
                              f"found {groups!r}")
        names = {id(p): n for n, p in m.named_parameters()}
        where: dict[int, list[str]] = {}
        for g, ps in groups.items():
            if not isinstance(ps, (list, tuple)) or not ps:
                raise CheckFailed(f"parameter group {g!r} is {ps!r}; every group is a non-empty list of "
                                  f"parameters")
            for p in ps:
                if id(p) not in names:
                    raise CheckFailed(f"parameter group {g!r} holds a tensor of shape {_shape(p)} that is not "
                                      f"a parameter of the model (register it as an nn.Parameter attribute)")
                where.setdefault(id(p), []).append(g)
        for n, p in m.named_parameters():
            gs = where.get(id(p), [])
            if p.requires_grad and not gs:
                raise CheckFailed(f"parameter {n!r} (shape {_shape(p)}) is trainable but in no parameter group; "
                                  f"EP and BPTT only update what param_groups() lists: add it to a group, or "
                                  f"make it a buffer")
            if len(gs) > 1:
                raise CheckFailed(f"parameter {n!r} appears {len(gs)} times in param_groups() (groups "
                                  f"{', '.join(gs)}); each parameter belongs to exactly one group, or it is "
                                  f"updated twice")
        return f"{len(groups)} group(s) ({', '.join(groups)}) cover the {len(names)} parameter tensors once each"

    def phi(self):
        m, x, _, s = self.case64()
        with torch.no_grad():
            v = m.phi(x, s)
        if not isinstance(v, Tensor) or v.shape != (self.B,):
            found = _shape(v) if isinstance(v, Tensor) else type(v).__name__
            raise CheckFailed(f"phi(x, s) must give one value per sample, shape ({self.B},); found {found}")
        if not bool(torch.isfinite(v).all()):
            raise CheckFailed("phi(x, s) is not finite on a state in [-0.1, 1.1]")
        with torch.no_grad():
            one = m.phi(x[1:2], tuple(t[1:2] for t in s))
        if _maxdiff(one[0], v[1]) > TOL_EXACT * _scale(v):
            raise CheckFailed(f"phi is not per sample: Φ of sample 1 alone is {float(one[0]):.6g} but "
                              f"{float(v[1]):.6g} within the batch; do not mix samples (sum over features only)")
        return f"shape ({self.B},), per sample, finite"

    def dphi_dtheta(self):
        m, x, _, s = self.case64()
        got = m.dphi_dtheta(x, s)
        ref = ConvergentRNN.dphi_dtheta(m, x, s)
        if set(got) != set(ref):
            raise CheckFailed(f"dphi_dtheta returned groups {sorted(got)}, expected those of param_groups() "
                              f"{sorted(ref)}")
        worst = 0.0
        for g, rs in ref.items():
            gs = got[g]
            if len(gs) != len(rs):
                raise CheckFailed(f"dphi_dtheta group {g!r} has {len(gs)} tensors, param_groups() has {len(rs)}")
            for i, (a, b) in enumerate(zip(gs, rs)):
                if a.shape != b.shape:
                    raise CheckFailed(f"dphi_dtheta {g!r}[{i}] has shape {_shape(a)}, the parameter has "
                                      f"{_shape(b)}")
                err = _maxdiff(a, b)
                worst = max(worst, err / _scale(b))
                if err > TOL_EXACT * _scale(b):
                    raise CheckFailed(f"dphi_dtheta {g!r}[{i}] differs from the autograd gradient of Φ (summed "
                                      f"over the batch) by up to {err:.3g}; EP's weight updates use it, so fix "
                                      f"the explicit formula or delete it to use the generic autograd default")
        return f"equals autograd of Φ summed over the batch (relative error {worst:.1e})"

    def f_is_grad_phi(self):
        m = self.model64()
        if m.clip_range is not None and m.derives_from_phi:
            raise CheckFailed(f"clip_range = {list(m.clip_range)} but derives_from_phi = True: a clipped F is not "
                              f"∂Φ/∂s where it clips, so the GDU theorem is not exact; set derives_from_phi = False")
        if type(m).step is ConvergentRNN.step:
            return "step derived from Φ (the generic step: ∂Φ/∂s by autograd, the nudge" + \
                (f", the clip to {list(m.clip_range)})" if m.clip_range is not None else ")")
        if not m.derives_from_phi and m.clip_range is not None:
            return self._clipped_step_is_derived(m)
        acts = layer_activations(m)
        if not m.derives_from_phi and acts is not None:
            return self._activated_step_is_derived(m, acts)
        if not m.derives_from_phi:
            raise CheckSkipped("derives_from_phi is False: F is not ∂Φ/∂s, so the GDU theorem holds only "
                               "approximately (measure it with a gdu run)")
        worst = self._step_matches_derived(m, ((0, 0.0), (1, 0.0), (2, 0.0)), lambda name, err, scale, beta: (
            f"F(x, s) = step(x, s) differs from ∂Φ/∂s (autograd of phi) on layer {name!r} by up to "
            f"{err:.3g} (|∂Φ/∂s| up to {scale:.3g}), on random float64 states; "
            f"the model claims derives_from_phi = True. Fix Φ or the step so that F = ∂Φ/∂s, or set "
            f"derives_from_phi = False (the GDU theorem then holds only approximately)"))
        return f"step(x, s) = ∂Φ/∂s on 3 random float64 states (relative error {worst:.1e})"

    def _clipped_step_is_derived(self, m: ConvergentRNN):
        """A hand-written step of a clipped model equals the derived one, clip(∂Φ/∂s + nudge)."""
        clip = m.clip_range
        assert clip is not None  # f_is_grad_phi calls this for a clipped model only
        worst = self._step_matches_derived(m, ((0, 0.0), (1, 0.3), (2, 0.0)), lambda name, err, scale, beta: (
            f"step(x, s, y, β = {beta}) differs from the derived step clip(∂Φ/∂s − β·nudge_scale·∂ℓ/∂s) "
            f"to clip_range {list(clip)} on layer {name!r} by up to {err:.3g}; fix Φ or the "
            f"step, or set clip_range = None if the model's dynamics are not derived from Φ"))
        return (f"step = clip(∂Φ/∂s + nudge) to {list(clip)} on 3 random float64 states (relative error "
                f"{worst:.1e}); clipped, so the GDU theorem is not exact")

    def _activated_step_is_derived(self, m: ConvergentRNN, act: tuple[Callable[[Tensor], Tensor], ...]) -> str:
        """A prototypical step equals σ(∂Φ/∂s) with the model's σ (per layer), plus the nudge on the output;
        or, where the model declares ``nudge_in_activation``, σ(∂Φ/∂s + nudge) = σ(∂(Φ − βℓ)/∂s)."""
        inside = m.nudge_in_activation
        form = "σ(∂Φ/∂s + nudge)" if inside else "σ(∂Φ/∂s) + nudge"

        def want(x, s, y, beta):
            if inside:  # the nudge before σ: σ of the derived step of Φ − βℓ
                return [f(g) for f, g in zip(act, m.derived_step(x, s, y, beta))]
            out = [f(g) for f, g in zip(act, m.derived_step(x, s))]  # σ(∂Φ/∂s), then the nudge −β·scale·∂ℓ/∂s
            if beta:
                out = [o if g is None else o - beta * m.nudge_scale * g for o, g in zip(out, m.dloss_ds(s, y))]
            return out

        # β = 3 pushes output units past σ's bounds, where σ(a + nudge) and σ(a) + nudge differ: with small β
        # and unsaturated units the two forms agree, and a wrong claim would pass
        cases = ((0, 0.0), (1, 0.3), (2, 0.0), (1, 3.0))
        worst = self._step_matches_derived(m, cases, lambda name, err, scale, beta: (
            f"step(x, s, y, β = {beta}) differs from {form} (the model's step_activation applied to "
            f"autograd of phi; nudge_in_activation = {inside}) on layer {name!r} by up to {err:.3g}; fix Φ or "
            f"the step, or set step_activation = None"), want)
        return (f"step = {form} on 3 random float64 states (relative error {worst:.1e}); σ is not the "
                "identity, so the GDU theorem is approximate")

    def _step_matches_derived(self, m: ConvergentRNN, cases, message, want=None) -> float:
        """The written step against :meth:`ConvergentRNN.derived_step` (or ``want(x, s, y, β)``) on random
        float64 states, one ``(state offset, β)`` per case; raises ``message(layer, error, scale, β)`` beyond
        ``TOL_EXACT``; returns the worst relative error."""
        x, y = self.data(m, D64)
        worst = 0.0
        for offset, beta in cases:
            s = self.random_state(m, x, offset)
            with torch.no_grad():
                yb = y if beta else None
                got = m.step(x, s, yb, beta)
                expected = m.derived_step(x, s, yb, beta) if want is None else want(x, s, y, beta)
            for name, a, b in zip(m.layer_names, got, expected):
                err = _maxdiff(a, b)
                worst = max(worst, err / _scale(b))
                if err > TOL_EXACT * _scale(b):
                    raise CheckFailed(message(name, err, _scale(b) if b.numel() else 0.0, beta))
        return worst

    def fast_paths(self):
        """prepare / steps / relax(output_at) / dphi_delta equal the generic step loop and autograd."""
        base, mine = ConvergentRNN, type(self.model)
        own = [n for n, a, b in (("prepare", mine.prepare, base.prepare), ("steps", mine.steps, base.steps),
                                 ("dphi_delta", mine.dphi_delta, base.dphi_delta)) if a is not b]
        if not own:
            raise CheckSkipped("the model keeps the generic prepare / steps / dphi_delta (nothing to compare)")
        ref = self.model64()
        ref.fast = False
        x, y = self.data(ref, D64)
        s = self.random_state(ref, x)
        n, beta = 6, 0.3
        with torch.no_grad():
            expected = s
            for _ in range(n):
                expected = ref.step(x, expected, y, beta)
        variants = [("as built", self.model64())]
        for flag in (True, False):
            m = self.model64()
            m.fast = flag
            variants.append((f"fast={flag}", m))
        for label, m in variants:
            with torch.no_grad():
                xp = m.prepare(x)
                got = m.steps(xp, s, n, y, beta)
                out0 = m.relax(xp, s, n, y, beta, output_at=n)[0]
            for name, a, b in zip(m.layer_names, got, expected):
                if _maxdiff(a, b) > TOL_EXACT * _scale(b):
                    raise CheckFailed(f"{label}: {n} steps through prepare/steps differ from {n} calls of "
                                      f"step(x, s, y, β) on layer {name!r} by {_maxdiff(a, b):.3g}; a fast path "
                                      f"must give the generic result")
            if _maxdiff(out0, expected[0]) > TOL_EXACT * _scale(expected[0]):
                raise CheckFailed(f"{label}: relax(..., output_at={n}) gives an output layer that differs from "
                                  f"the generic steps by {_maxdiff(out0, expected[0]):.3g}; skipping layers may "
                                  f"only skip what cannot reach s⁰ within output_at steps")
            after = got
            delta = m.dphi_delta(xp, after, s)
            a, b = base.dphi_dtheta(ref, x, after), base.dphi_dtheta(ref, x, s)
            for g in a:
                for i, (u, v) in enumerate(zip(a[g], b[g])):
                    want = u - v
                    if g not in delta or _maxdiff(delta[g][i], want) > TOL_EXACT * _scale(want):
                        raise CheckFailed(f"{label}: dphi_delta group {g!r}[{i}] differs from the autograd "
                                          f"∂Φ/∂θ(after) − ∂Φ/∂θ(before); EP's update uses it")
        return (f"overrides {', '.join(own)}; equal to the generic path (float64) for "
                f"{', '.join(label for label, _ in variants)}")

    def settle(self, m: ConvergentRNN, x: Tensor, max_steps: int = MAX_RELAX_STEPS, chunk: int = 100):
        s = m.init_state(x)
        done, residual = 0, float("inf")
        while done < max_steps:
            s = m.relax(x, s, chunk)
            done += chunk
            with torch.no_grad():
                nxt = m.step(x, s)
            residual = max(_maxdiff(a, b) / _scale(a) for a, b in zip(s, nxt))
            if not math.isfinite(residual):
                break
            if residual < TOL_SETTLED:
                return done, residual
        raise CheckFailed(f"the free dynamics did not settle: after {done} steps in float64, max |F(s) − s| = "
                          f"{residual:.3g} (needs < {TOL_SETTLED:g}). The GDU theorem assumes a steady state "
                          f"before the last K steps; make the dynamics contract (smaller initial weights or "
                          f"lateral couplings, a smaller step) or check with parameters for which they do")

    def theorem(self):
        m = self.model64()
        if not m.derives_from_phi:
            raise CheckSkipped("derives_from_phi is False: the GDU theorem is not exact for this model")
        from harness.api.algorithm import Processes

        x, y = self.data(m, D64)
        steady, residual = self.settle(m, x)
        K = THEOREM_K
        T = steady + K
        bptt = self.algorithm("bptt", {}).processes(m, x, y, T=T, K=K)
        relmse = _registered(self.registry, "metric", "relmse", {})

        def compare(beta: float) -> dict[str, float]:
            ep: Processes = self.algorithm("ep", {"beta": beta}).processes(m, x, y, T=T, K=K)
            out = {}
            for what in ("neurons", "weights"):
                a, b = getattr(ep, what), getattr(bptt, what)
                if set(a) != set(b):
                    raise CheckFailed(f"EP and BPTT processes name different {what}: {sorted(a)} vs {sorted(b)}")
                for k in a:
                    if a[k].shape != b[k].shape:
                        raise CheckFailed(f"{what} {k}: EP process {_shape(a[k])} vs BPTT {_shape(b[k])}")
                    out[f"{what}:{k}"] = relmse(a[k], b[k])
            return out

        small = compare(THEOREM_BETA)
        larger = compare(10 * THEOREM_BETA)
        worst_key = max(small, key=small.get)
        ratios = [larger[k] / small[k] for k in small if small[k] > 0]
        ratio = sorted(ratios)[len(ratios) // 2] if ratios else float("nan")
        data = {"T": T, "K": K, "beta": THEOREM_BETA, "steady_steps": steady, "residual": residual,
                "relmse": small, "relmse_10beta": larger, "max_relmse": small[worst_key],
                "median_ratio_10beta": ratio}
        if small[worst_key] >= THEOREM_RELMSE:
            raise CheckFailed(
                f"ΔEP and −∇BPTT differ: RelMSE {small[worst_key]:.3g} on {worst_key} (threshold "
                f"{THEOREM_RELMSE:g}) in float64 with β = {THEOREM_BETA:g}, T = {T} (steady after {steady} steps), "
                f"K = {K}. With F = ∂Φ/∂s the theorem makes them equal up to O(β): check that the nudge is "
                f"−β·nudge_scale·∂ℓ/∂s and that dphi_dtheta is ∂Φ/∂θ")
        n = max(v for k, v in small.items() if k.startswith("neurons"))
        w = max(v for k, v in small.items() if k.startswith("weights"))
        return (f"ΔEP = −∇BPTT in float64: max RelMSE {n:.2e} (neurons), {w:.2e} (weights) at β = "
                f"{THEOREM_BETA:g}, T = {T}, K = {K}; 10× β gives {ratio:.1f}× the error (O(β))"), data

    def train_step(self, name: str):
        assert self.model is not None  # set by the "builds" check that every other needs
        m = copy.deepcopy(self.model)
        x, y = self.data(m, m.dtype)
        groups = m.param_groups()
        params = {"lr": [0.05] * len(groups)}
        alg = self.algorithm(name, params)
        before = {n: p.detach().clone() for n, p in m.named_parameters()}
        out = alg.train_step(m, x, y, T=20, K=5)
        if not isinstance(out, dict) or not all(isinstance(v, Tensor) for v in out.values()):
            raise CheckFailed(f"{name}.train_step returned {out!r}; expected a dict of tensors for logging")
        changed = []
        for n, p in m.named_parameters():
            if not bool(torch.isfinite(p).all()):
                raise CheckFailed(f"after one {name} step (lr 0.05, T = 20, K = 5) parameter {n!r} is not "
                                  f"finite; the dynamics or Φ blow up on a small input")
            if not torch.equal(p.detach(), before[n]):
                changed.append(n)
        if not changed:
            raise CheckFailed(f"one {name} train_step (lr 0.05 per group, T = 20, K = 5) changed no parameter; "
                              f"check that param_groups() returns the model's own nn.Parameters and that "
                              f"{'Φ depends on them' if name == 'ep' else 'the loss depends on them through step'}")
        unchanged = [n for n, _ in m.named_parameters() if n not in changed]
        note = f"; unchanged: {', '.join(unchanged)}" if unchanged else ""
        loss = f", loss {float(out['loss']):.4g}" if "loss" in out and out["loss"].numel() == 1 else ""
        return f"changed {len(changed)} of {len(before)} parameter tensors, all finite{loss}{note}"


def _model_checks(model: Any, params: dict[str, Any] | None = None, *, registry: Registry | None = None,
                 input_shape: Iterable[int] | None = None, seed: int = 0,
                 theorem: bool = True, lazy: bool = False) -> _Checks:
    """Every check of a model, run now or (``lazy``) only planned; see :func:`check_model`."""
    comp = as_component("model", model, registry)
    params = example_params(comp, params)
    kit = _ModelKit(comp, params, registry, tuple(input_shape) if input_shape is not None else None, seed)
    c = start_checks(comp, registry, lazy)
    c.run("builds", kit.builds)
    c.run("state", kit.state, needs=["builds"])
    c.run("step shapes", kit.step_shapes, needs=["state"])
    c.run("determinism", kit.determinism, needs=["step shapes"])
    c.run("param groups", kit.param_groups, needs=["builds"])
    c.run("phi", kit.phi, needs=["step shapes"])
    c.run("loss", kit.loss, needs=["step shapes", "param groups"])
    c.run("nudge", kit.nudge, needs=["step shapes", "loss"])
    c.run("dphi_dtheta", kit.dphi_dtheta, needs=["phi", "param groups"])
    c.run("F = ∂Φ/∂s", kit.f_is_grad_phi, needs=["phi"])
    c.run("fast paths", kit.fast_paths, needs=["step shapes", "dphi_dtheta"])
    if theorem:
        c.run("GDU theorem", kit.theorem, needs=["F = ∂Φ/∂s", "nudge", "dphi_dtheta"])
    c.run("EP train step", lambda: kit.train_step("ep"), needs=["param groups", "step shapes"])
    c.run("BPTT train step", lambda: kit.train_step("bptt"), needs=["param groups", "step shapes"])
    return c


def check_model(model: Any, params: dict[str, Any] | None = None, *, registry: Registry | None = None,
                input_shape: Iterable[int] | None = None, seed: int = 0, theorem: bool = True) -> list[CheckResult]:
    """Every check of a model (a registered name, a Component or a bare factory), built with
    :func:`example_params` and ``params`` over them: declaration, builds, state, step shapes,
    determinism (under ``seed``), param groups, Φ, the loss, the nudge, dΦ/dθ, F = ∂Φ/∂s, the fast paths, the GDU
    theorem (left out with ``theorem=False``), one EP and one BPTT train step. ``input_shape``: the
    input's shape where the model has no ``input_shape`` / ``input_size`` attribute."""
    return _model_checks(model, params, registry=registry, input_shape=input_shape, seed=seed,
                         theorem=theorem).results
