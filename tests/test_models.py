"""The built-in models: F = ∂Φ/∂s where the paper says so, explicit ∂Φ/∂θ = autograd, shapes, init."""

from __future__ import annotations

import math

import pytest
import torch

from bench_models import EBNet, PConvNet, PNet, ToyModel
from bench_models.activations import ACTIVATIONS
from harness.api.model import ConvergentRNN

D = torch.float64


def _random_state(model, x, lo=-1.0, hi=1.0, gen=None):
    return tuple(lo + (hi - lo) * torch.rand(s.shape, dtype=D, generator=gen) for s in model.init_state(x))


def _grad_phi_s(model, x, state):
    state = tuple(s.clone().requires_grad_() for s in state)
    return torch.autograd.grad(model.phi(x, state).sum(), state)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_derivatives_match_autograd(name):
    act = ACTIVATIONS[name]
    x = torch.linspace(-2, 2, 401, dtype=D)
    x = x[(x - 0).abs().gt(1e-3) & (x - 1).abs().gt(1e-3) & (x - 2).abs().gt(1e-3)]  # the hard sigmoids' kinks
    x.requires_grad_()
    (g,) = torch.autograd.grad(act(x).sum(), x)
    assert torch.allclose(act.df(x), g, atol=1e-12)
    assert torch.allclose(act(x), act.core(act.scale * x + act.shift), atol=1e-12)  # what a fast path folds


def test_half_hard_sigmoid_is_laborieux_et_al_s():
    """model_utils.py's my_hard_sig of Laborieux et al.'s code, (1 + hardtanh(x − 1)) / 2."""
    x = torch.linspace(-3, 4, 701, dtype=D)
    want = (1 + torch.nn.functional.hardtanh(x - 1)) / 2
    assert torch.allclose(ACTIVATIONS["half_hard_sigmoid"](x), want, atol=1e-15)


def test_paper_sigmoid_is_shifted_and_rescaled():
    act = ACTIVATIONS["sigmoid"]
    assert act(torch.tensor(0.5, dtype=D)).item() == pytest.approx(0.5)
    assert act(torch.tensor(1.0, dtype=D)).item() == pytest.approx(1 / (1 + math.exp(-2)))


EB_CASES = [
    dict(kind="toy", bias=False, activation="tanh"),
    dict(kind="toy", bias=True, activation="sigmoid"),
    dict(kind="eb", hidden=[7], bias=True, activation="tanh"),
    dict(kind="eb", hidden=[7, 6], bias=False, activation="sigmoid"),
    dict(kind="eb", hidden=[7, 6, 5], bias=True, activation="tanh"),
]


def _make(case):
    case = dict(case)
    kind = case.pop("kind")
    if kind == "toy":
        return ToyModel(input_size=6, hidden_size=7, output_size=4, eps=0.3, **case).to(D)
    return EBNet(input_size=6, output_size=4, eps=0.3, **case).to(D)


@pytest.mark.parametrize("case", EB_CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_eb_step_is_gradient_of_phi(case):
    torch.manual_seed(1)
    m = _make(case)
    assert m.derives_from_phi
    x = torch.rand(3, 6, dtype=D)
    s = _random_state(m, x)
    for a, b in zip(m.step(x, s), _grad_phi_s(m, x, s)):
        assert torch.allclose(a, b, atol=1e-13)


def test_eb_output_layer_has_sigma_prime():
    """The paper's output equation has σ'(s⁰); the authors' code omits it."""
    torch.manual_seed(0)
    m = EBNet(hidden=[5], input_size=4, output_size=3, eps=0.5, bias=False).to(D)
    x = torch.rand(2, 4, dtype=D)
    s = _random_state(m, x)
    a1 = torch.tanh(s[1])
    expected = 0.5 * s[0] + 0.5 * (1 - torch.tanh(s[0]) ** 2) * (a1 @ m.w["W01"].t())
    assert torch.allclose(m.step(x, s)[0], expected, atol=1e-14)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("clip", [False, True])
def test_eb_output_sigma_prime_false_drops_the_factor_on_the_output_layer_only(fast, clip):
    """The authors' code's output step, s⁰ ← (1 − ε)s⁰ + ε(W₀₁σ(s¹) + b₀) (+ nudge, clip), with the
    hidden layers' steps unchanged; the model no longer claims F = ∂Φ/∂s, and Φ's θ-gradient is the same."""
    torch.manual_seed(0)
    kw = dict(hidden=[5], input_size=4, output_size=3, activation="sigmoid", eps=0.2, clip=clip, fast=fast)
    paper = EBNet(**kw).to(D)
    authors = EBNet(**kw, output_sigma_prime=False).to(D)
    authors.load_state_dict(paper.state_dict())
    assert paper.derives_from_phi == (not clip) and not authors.derives_from_phi
    assert authors.clip_range is None  # the kit must not check this step against clip(∂Φ/∂s)
    assert authors.supports_complex == paper.supports_complex == (not clip)  # a clip is not holomorphic
    x = torch.rand(2, 4, dtype=D)
    y = torch.eye(3, dtype=D)[[0, 2]]
    s = _random_state(paper, x, -0.2, 1.2)
    for beta in (0.0, 0.5):
        got = authors.step(authors.prepare(x), s, y, beta)
        ref = paper.step(paper.prepare(x), s, y, beta)
        drive = paper.act(s[1]) @ paper.w["W01"].t() + paper.b["s0"]
        out = 0.8 * s[0] + 0.2 * drive + beta * 0.2 * (y - s[0])
        if clip:
            out = out.clamp(0, 1)
        torch.testing.assert_close(got[0], out, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(got[1], ref[1], rtol=0, atol=0)
        assert not torch.allclose(got[0], ref[0])  # σ'(s⁰) < 1 here, so the factor mattered
    for g, ps in paper.dphi_dtheta(x, s).items():
        for a, b in zip(ps, authors.dphi_dtheta(x, s)[g]):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_eb_clip_breaks_the_gradient_form_and_clips():
    m = EBNet(hidden=[5], input_size=4, output_size=3, clip=True).to(D)
    assert not m.derives_from_phi
    x = torch.rand(2, 4, dtype=D)
    s = m.step(x, _random_state(m, x, -3, 3))
    assert all(((t >= 0) & (t <= 1)).all() for t in s)


@pytest.mark.parametrize("fast", [True, False])
def test_eb_clip_grad_exact_and_straight_through(fast):
    """Same clipped values either way; the vector-Jacobian product of one step is the unclipped
    step's, times 1 where the clip is inactive (exact) or everywhere (straight through)."""
    torch.manual_seed(0)
    x = torch.rand(3, 4, dtype=D)
    s0 = _random_state(EBNet(hidden=[5], input_size=4, output_size=3), x, -0.5, 1.5)
    out = {}
    for how in ("exact", "straight_through"):
        torch.manual_seed(1)
        m = EBNet(hidden=[5], input_size=4, output_size=3, activation="sigmoid", eps=0.2, clip=True,
                  clip_grad=how, fast=fast).to(D)
        free = EBNet(hidden=[5], input_size=4, output_size=3, activation="sigmoid", eps=0.2, clip=False,
                     fast=fast).to(D)
        free.load_state_dict(m.state_dict())
        xp = m.prepare(x)
        s = tuple(t.clone().requires_grad_() for t in s0)
        new = m.step(xp, s)
        unclipped = free.step(free.prepare(x), s)
        v = [torch.randn_like(t) for t in new]
        g = torch.autograd.grad(sum((a * b).sum() for a, b in zip(new, v)), s)
        inside = [((u > 0) & (u < 1)).to(D) for u in unclipped]
        weights = inside if how == "exact" else [torch.ones_like(i) for i in inside]
        expected = torch.autograd.grad(sum((u * b * w).sum() for u, b, w in zip(unclipped, v, weights)), s)
        assert all(0 < i.mean() < 1 for i in inside)  # the clip is active somewhere, inactive elsewhere
        for a, b in zip(g, expected):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        out[how] = [t.detach() for t in new]
    for a, b in zip(out["exact"], out["straight_through"]):
        assert torch.equal(a, b)
        assert ((a >= 0) & (a <= 1)).all()


def test_eb_clip_grad_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="unknown clip_grad 'identity'; known: exact, straight_through"):
        EBNet(hidden=[5], input_size=4, output_size=3, clip=True, clip_grad="identity")


@pytest.mark.parametrize("model", [
    lambda: ToyModel(input_size=6, hidden_size=7, output_size=4, eps=0.2),
    lambda: EBNet(hidden=[7, 5], input_size=6, output_size=4, eps=0.2, clip=False),
    lambda: PNet(hidden=[7, 5], input_size=6, output_size=4),
    lambda: PConvNet(input_shape=[1, 10, 10], channels=[2, 3], kernel=3, output_size=4),
], ids=["toy", "eb", "p", "pconv"])
def test_nudge_moves_only_the_output_by_beta_times_scale(model):
    torch.manual_seed(2)
    m = model().to(D)
    x = torch.rand(3, *((1, 10, 10) if isinstance(m, PConvNet) else (6,)), dtype=D)
    s = _random_state(m, x, 0, 1)
    y = m.target(torch.tensor([0, 3, 1]))
    free, nudged = m.step(x, s), m.step(x, s, y, 0.3)
    assert torch.allclose(nudged[0] - free[0], 0.3 * m.nudge_scale * (y - s[0]), atol=1e-14)
    for a, b in zip(free[1:], nudged[1:]):
        assert torch.equal(a, b)


@pytest.mark.parametrize("model", [
    lambda: PNet(hidden=[7, 5], input_size=6, output_size=4, activation="tanh"),
    lambda: PNet(hidden=[7], input_size=6, output_size=4, activation="sigmoid", bias=False),
    lambda: PConvNet(input_shape=[1, 10, 10], channels=[2, 3], kernel=3, output_size=4, activation="tanh"),
    lambda: PConvNet(input_shape=[2, 13, 13], channels=[3, 2], kernel=2, output_size=4, bias=False),
], ids=["p-tanh", "p-sigmoid", "pconv-tanh", "pconv-odd"])
def test_p_step_is_sigma_of_gradient_of_phi(model):
    """The P dynamics are ``σ(∂Φ/∂s)``: for P-conv this checks unpooling with the current argmax
    indices followed by the transposed convolution against autograd (Lemma 5)."""
    torch.manual_seed(3)
    m = model().to(D)
    shape = (m.input_shape if isinstance(m, PConvNet) else (6,))
    x = torch.rand(3, *shape, dtype=D)
    s = _random_state(m, x, -1, 1)
    for a, g in zip(m.step(x, s), _grad_phi_s(m, x, s)):
        assert torch.allclose(a, m.act(g), atol=1e-13)
    assert not m.derives_from_phi


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "generic"])
def test_p_leaky_step_moves_dt_of_the_way_and_keeps_the_fixed_point(fast):
    """dt < 1 (the authors' code's P dynamics): ``s + dt·(F(s) − s)`` with F the paper's dt = 1 step,
    nudge included; the free phase ends at the dt = 1 fixed point, reached in more steps."""
    torch.manual_seed(5)
    paper = PNet(hidden=[7, 5], input_size=6, output_size=4, activation="sigmoid", fast=fast).to(D)
    leaky = PNet(hidden=[7, 5], input_size=6, output_size=4, activation="sigmoid", fast=fast, dt=0.2).to(D)
    leaky.load_state_dict(paper.state_dict())
    x = torch.rand(3, 6, dtype=D)
    y = paper.target(torch.tensor([0, 2, 3]))
    s = _random_state(paper, x, 0, 1)
    xp, xl = paper.prepare(x), leaky.prepare(x)
    for beta in (0.0, 0.5):
        for a, f, s0 in zip(leaky.step(xl, s, y, beta), paper.step(xp, s, y, beta), s):
            assert torch.allclose(a, s0 + 0.2 * (f - s0), atol=1e-14)
    fixed = paper.steps(xp, paper.init_state(x), 200)
    assert max((a - b).abs().max().item() for a, b in zip(paper.step(xp, fixed), fixed)) < 1e-12  # settled
    slow = leaky.steps(xl, leaky.init_state(x), 1000, output_at=1000)  # no chain skipping at dt < 1
    assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(slow, fixed))
    assert not all(torch.allclose(a, b, atol=1e-10) for a, b in zip(leaky.steps(xl, leaky.init_state(x), 20), fixed))
    with pytest.raises(ValueError, match="dt must be in"):
        PNet(hidden=[7], input_size=6, output_size=4, dt=0.0)


@pytest.mark.parametrize("model", [
    lambda: ToyModel(input_size=6, hidden_size=7, output_size=4, bias=True, init="torch"),
    lambda: EBNet(hidden=[7, 5], input_size=6, output_size=4, activation="sigmoid", init="torch"),
    lambda: PNet(hidden=[7, 5, 4], input_size=6, output_size=4, init="torch"),
], ids=["toy", "eb", "p"])
def test_explicit_dphi_dtheta_equals_autograd(model):
    torch.manual_seed(4)
    m = model().to(D)
    x = torch.rand(3, 6, dtype=D)
    s = _random_state(m, x)
    explicit = m.dphi_dtheta(x, s)
    reference = ConvergentRNN.dphi_dtheta(m, x, s)
    assert list(explicit) == list(reference)
    for g in reference:
        assert len(explicit[g]) == len(reference[g])
        for a, b in zip(explicit[g], reference[g]):
            assert torch.allclose(a, b, atol=1e-13)


def test_parameter_groups_input_to_output_with_biases():
    m = EBNet(hidden=[8, 6], input_size=5, output_size=3)
    groups = m.param_groups()
    assert list(groups) == ["W23", "W12", "W01"]
    # hidden is listed input → output: 5 → 8 → 6 → 3; s2 (8 units) is fed by the input
    assert [tuple(p.shape) for p in groups["W23"]] == [(8, 5), (8,)]
    assert [tuple(p.shape) for p in groups["W12"]] == [(6, 8), (6,)]
    assert [tuple(p.shape) for p in groups["W01"]] == [(3, 6), (3,)]
    assert m.layer_names == ("s0", "s1", "s2")
    assert [s.shape[1] for s in m.init_state(torch.zeros(2, 5))] == [3, 6, 8]
    toy = ToyModel()
    assert list(toy.param_groups()) == ["W1x", "W0x", "W01"]
    assert all(len(ps) == 1 for ps in toy.param_groups().values())
    assert set(id(p) for ps in m.param_groups().values() for p in ps) == set(id(p) for p in m.parameters())


def test_pconv_default_shapes_are_the_papers():
    m = PConvNet()
    assert list(m.param_groups()) == ["conv1", "conv0", "fc"]
    g = m.param_groups()
    assert tuple(g["conv1"][0].shape) == (32, 1, 5, 5)
    assert tuple(g["conv0"][0].shape) == (64, 32, 5, 5)
    assert tuple(g["fc"][0].shape) == (10, 1024)
    assert m.layer_names == ("s0", "h0", "h1")
    flat = torch.rand(2, 784)
    state = m.init_state(flat)
    assert [tuple(s.shape) for s in state] == [(2, 10), (2, 64, 4, 4), (2, 32, 12, 12)]
    a = m.step(flat, state)
    b = m.step(flat.reshape(2, 1, 28, 28), state)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert all(u.shape == v.shape for u, v in zip(a, state))


def test_glorot_and_torch_init_bounds():
    torch.manual_seed(0)
    m = PNet(hidden=[300], input_size=200, output_size=100, init="glorot")
    w = m.w["W12"]
    bound = math.sqrt(6 / (200 + 300))
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
    assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.03)
    assert all((b == 0).all() for b in m.b.values())
    t = PNet(hidden=[300], input_size=200, output_size=100, init="torch")
    assert t.w["W12"].abs().max() <= 1 / math.sqrt(200) and t.w["W12"].abs().max() > 0.95 / math.sqrt(200)
    assert t.b["s1"].abs().max() > 0
    h = PNet(hidden=[300], input_size=200, output_size=100, init="torch_half")  # Scellier et al. 2023's
    bound = 0.5 / math.sqrt(200)
    assert bound * 0.95 < h.w["W12"].abs().max() <= bound and bound * 0.95 < h.b["s1"].abs().max() <= bound
    with pytest.raises(ValueError, match="unknown init"):
        PNet(hidden=[3], input_size=2, output_size=2, init="xavier")


def test_models_follow_device_and_dtype():
    m = EBNet(hidden=[4], input_size=3, output_size=2).to("cpu", torch.float64)
    x = torch.rand(2, 3, dtype=torch.float64)
    s = m.relax(x, m.init_state(x), 3)
    assert all(t.dtype == torch.float64 for t in s)
    assert m.target(torch.tensor([1, 0])).dtype == torch.float64
    assert m.num_classes == 2


def test_num_classes_may_be_assigned_or_a_property():
    class Assigned(ConvergentRNN):
        def __init__(self):
            super().__init__()
            self.num_classes = 4

    class Missing(ConvergentRNN):
        pass

    assert Assigned().num_classes == 4
    with pytest.raises(NotImplementedError, match="Missing sets no num_classes"):
        _ = Missing().num_classes
    assert PNet(hidden=[3], input_size=4, output_size=5).num_classes == 5  # a property of its own
