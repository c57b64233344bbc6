"""The cross-entropy output (Laborieux et al. 2021): a readout ``z = W_fc·h⁰ + b_fc`` in ℓ, not in Φ.

What is proved here, in float64 on a small DCHN at an exact fixed point (residual ~1e-16):
* ℓ is torch's cross-entropy, and BPTT's gradient is autograd of torch's cross-entropy through the
  unrolled steps;
* EP's update, readout included, tends to the implicit gradient (RBP, autograd at the fixed point) as
  β → 0, with the orders the theory gives: O(β) one-sided, O(β²) centered;
* the kit refuses a model whose ``dloss_ds`` is not the derivative of its ``loss``; C-EP and holomorphic
  EP refuse a readout in ℓ with a message saying what to use.
"""

from __future__ import annotations

import pytest
import torch

from bench_algorithms.bptt import BPTT
from bench_algorithms.cep import ContinualEP
from bench_algorithms.ep import EP, EPCentered
from bench_algorithms.rbp import RBP
from bench_models.dchn import DCHN
from harness.api.model import stack_members
from harness.conformance import check_model

B, CLASSES, T, K = 6, 5, 300, 200


def small(seed: int = 0, **kw) -> DCHN:
    torch.manual_seed(seed)
    return DCHN(input_shape=[3, 8, 8], channels=[4, 6], padding=[1, 1], output_size=CLASSES, init="torch",
                loss="cross_entropy", **kw).double()


@pytest.fixture(scope="module")
def case():
    m = small()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(B, 3, 8, 8, generator=g, dtype=torch.float64)
    labels = torch.randint(0, CLASSES, (B,), generator=g)
    y = torch.nn.functional.one_hot(labels, CLASSES).double()
    free, grad = RBP(iterations=400).gradient(m, x, y, T=T, K=K)
    return m, x, labels, y, free, grad


def flat(d: dict[str, list[torch.Tensor]], groups=None) -> torch.Tensor:
    return torch.cat([v.flatten() for g, vs in d.items() if groups is None or g in groups for v in vs])


def test_the_state_has_no_output_layer_and_the_readout_is_a_loss_group(case):
    m = case[0]
    assert m.layer_names == ("h0", "h1")
    assert m.loss_groups == ("fc",)
    assert list(m.param_groups()) == ["conv1", "conv0", "fc"]  # the readout's own learning rate: the last
    assert list(m.phi_groups()) == ["conv1", "conv0"]


def test_loss_is_torch_cross_entropy_and_predict_the_readouts_argmax(case):
    m, x, labels, y, free, _ = case
    z = free[0].flatten(1) @ m.w["fc"].T + m.b["fc"]
    torch.testing.assert_close(m.loss(free, y), torch.nn.functional.cross_entropy(z, labels, reduction="none"),
                               rtol=1e-14, atol=1e-14)
    assert torch.equal(m.predict(free), z.argmax(1))


def test_the_free_phase_reaches_an_exact_fixed_point(case):
    m, x, _, _, free, _ = case
    with torch.no_grad():
        residual = max(float((a - b).abs().max()) for a, b in zip(m.step(x, free), free))
    assert residual < 1e-12  # so that RBP's implicit gradient is the gradient EP's limit is compared with


def test_bptt_is_autograd_of_torch_cross_entropy_through_the_unrolled_steps(case):
    m, x, labels, y, _, _ = case
    start = m.relax(m.prepare(x), m.init_state(x), 20)
    _, _, grads = BPTT().direction(m, m.prepare(x), start, y, 15)
    params = [p for ps in m.param_groups().values() for p in ps]
    with torch.enable_grad():
        s = start
        for _ in range(15):
            s = m.step(x, s)
        z = s[0].flatten(1) @ m.w["fc"].T + m.b["fc"]
        want = torch.autograd.grad(torch.nn.functional.cross_entropy(z, labels), params)
    got = [g for gs in grads.values() for g in gs]
    assert all(g is not None for g in got)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_bptt_at_the_fixed_point_equals_rbp_readout_included(case):
    """At an exact fixed point BPTT through K steps is RBP with K adjoint iterations: the readout's
    direct term ∂ℓ/∂θ (RBP adds it; BPTT gets it from autograd) included."""
    m, x, _, y, free, _ = case
    _, _, bptt = BPTT().direction(m, m.prepare(x), free, y, K)
    _, rbp = RBP().gradient(m, x, y, T=T, K=K)
    assert float(flat(rbp, ["fc"]).norm()) > 0
    torch.testing.assert_close(flat(bptt), flat(rbp), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cls, order", [(EP, 1), (EPCentered, 2)])
def test_ep_update_tends_to_the_gradient_with_the_theorys_order(case, cls, order):
    """‖ΔEP(β) + ∇L‖ / ‖∇L‖ shrinks as β^order, for the whole update and for the readout alone
    (−∂ℓ/∂θ at the nudged state(s), Φ − β·ℓ's term)."""
    m, x, _, y, free, grad = case
    ref = {g: [-v for v in vs] for g, vs in grad.items()}
    errors = {"all": [], "readout": []}
    for beta in (1e-3, 1e-4):
        alg = cls(beta=beta)
        n1, n2 = alg.nudges()
        d = alg.direction(m, m.prepare(x), free, y, K, (n1, n2))
        d = {g: [v / ((n2 - n1) * B) for v in vs] for g, vs in d.items()}
        errors["all"].append(float((flat(d) - flat(ref)).norm() / flat(ref).norm()))
        errors["readout"].append(float((flat(d, ["fc"]) - flat(ref, ["fc"])).norm() / flat(ref, ["fc"]).norm()))
    for what, (big, tiny) in errors.items():
        ratio = big / tiny  # one decade of β: 10 for O(β), 100 for O(β²)
        assert 10 ** order * 0.8 < ratio < 10 ** order * 1.25, (what, errors)
        assert tiny < 10 ** (-4 * order + 1), (what, errors)


def test_a_train_step_moves_the_readout_by_its_learning_rate(case):
    m0, x, _, y, _, _ = case
    m = small()
    alg = EPCentered(beta=1e-3, lr=[0.0, 0.0, 0.5])
    before = [p.detach().clone() for p in m.parameters()]
    alg.train_step(m, x, y, T=T, K=K)
    moved = {n for (n, p), b in zip(m.named_parameters(), before) if not torch.equal(p, b)}
    assert moved == {"w.fc", "b.fc"}


def test_stacked_members_give_each_member_its_own_update():
    models = [small(seed) for seed in (0, 1)]
    stacked = stack_members(models)
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, B, 3, 8, 8, generator=g, dtype=torch.float64)
    y = torch.nn.functional.one_hot(torch.randint(0, CLASSES, (2, B), generator=g), CLASSES).double()
    alg = EPCentered(beta=0.1)
    free = stacked.relax(stacked.prepare(x), stacked.init_state(x), 30)
    d = alg.direction(stacked, stacked.prepare(x), free, y, 10)
    for i, m in enumerate(models):
        fi = m.relax(m.prepare(x[i]), m.init_state(x[i]), 30)
        di = alg.direction(m, m.prepare(x[i]), fi, y[i], 10)
        for gname in di:
            for a, b in zip(d[gname], di[gname]):
                torch.testing.assert_close(a[i], b, rtol=1e-10, atol=1e-12)


def test_the_kit_refuses_a_dloss_ds_that_is_not_the_derivative_of_the_loss():
    class Wrong(DCHN):
        def dloss_ds(self, state, y):
            return tuple(None if g is None else 2 * g for g in super().dloss_ds(state, y))

    results = {r.check: r for r in check_model(Wrong, {"loss": "cross_entropy"}, theorem=False)}
    assert results["loss"].status == "fail"
    assert "dloss_ds on layer 'h0' differs from autograd of loss" in results["loss"].message


def test_cep_and_holomorphic_ep_refuse_a_readout_in_the_loss(case):
    from bench_algorithms.hep import HolomorphicEP

    m = case[0]
    with pytest.raises(ValueError, match="C-EP does not train a readout in the loss .*loss_groups \\['fc'\\]"):
        ContinualEP(beta=0.1).check_model(m)
    with pytest.raises(ValueError, match="holomorphic EP does not train a readout in the loss"):
        HolomorphicEP(beta=0.1).check_model(m)
