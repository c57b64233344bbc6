"""The linear output layer (``output = "linear"``, Scellier et al. 2023's DCHN): s⁰ ← W·h⁰ + b plus the
nudge, the other layers through σ. The kit checks the step per layer (``step_activation`` as a tuple)
and refuses a wrong claim; EP's update tends to the implicit gradient at the theory's orders."""

from __future__ import annotations

import pytest
import torch

from bench_algorithms.ep import EP, EPCentered
from bench_algorithms.rbp import RBP
from bench_models.dchn import DCHN
from harness.conformance import check_model

B, CLASSES = 6, 5


def small(**kw) -> DCHN:
    torch.manual_seed(0)
    return DCHN(input_shape=[3, 8, 8], channels=[4, 6], padding=[1, 1], output_size=CLASSES, init="torch",
                output="linear", **kw).double()


@pytest.mark.parametrize("nudge", ["inside", "outside"])
def test_the_kit_passes_a_linear_output(nudge):
    results = {r.check: r for r in check_model("dchn", {"output": "linear", "nudge": nudge}, theorem=False)}
    failed = {k: r.message for k, r in results.items() if r.status == "fail"}
    assert not failed, failed
    assert results["F = ∂Φ/∂s"].status == "pass"


def test_the_kit_refuses_sigma_claimed_on_a_linear_output():
    class Wrong(DCHN):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.step_activation = self.act  # claims σ on every layer, the output's included

    results = {r.check: r for r in check_model(Wrong, {"output": "linear"}, theorem=False)}
    assert results["F = ∂Φ/∂s"].status == "fail"
    assert "on layer 's0'" in results["F = ∂Φ/∂s"].message


def test_the_output_is_w_h_plus_b_unclipped():
    m = small()
    x = torch.rand(B, 3, 8, 8, dtype=torch.float64)
    s = tuple(torch.rand_like(t) * 3 for t in m.init_state(x))
    new = m.step(x, s)
    torch.testing.assert_close(new[0], s[1].flatten(1) @ m.w["fc"].T + m.b["fc"], rtol=0, atol=1e-14)
    assert bool(((new[0] < 0) | (new[0] > 1)).any())  # the check bites: a clip would have changed these
    assert not bool(((new[1] >= 0) & (new[1] <= 1)).logical_not().any())  # the hidden layers still clipped


@pytest.mark.parametrize("cls, order", [(EP, 1), (EPCentered, 2)])
def test_ep_update_tends_to_the_gradient_with_a_linear_output(cls, order):
    m = small()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(B, 3, 8, 8, generator=g, dtype=torch.float64)
    y = torch.nn.functional.one_hot(torch.randint(0, CLASSES, (B,), generator=g), CLASSES).double()
    free, grad = RBP(iterations=400).gradient(m, x, y, T=300, K=200)
    with torch.no_grad():
        assert max(float((a - b).abs().max()) for a, b in zip(m.step(x, free), free)) < 1e-12
    ref = torch.cat([-v.flatten() for vs in grad.values() for v in vs])
    errors = []
    for beta in (1e-3, 1e-4):
        alg = cls(beta=beta)
        n1, n2 = alg.nudges()
        d = alg.direction(m, m.prepare(x), free, y, 200, (n1, n2))
        got = torch.cat([v.flatten() / ((n2 - n1) * B) for vs in d.values() for v in vs])
        errors.append(float((got - ref).norm() / ref.norm()))
    assert 10 ** order * 0.8 < errors[0] / errors[1] < 10 ** order * 1.25, errors


def test_a_linear_output_with_the_cross_entropy_readout_is_refused():
    with pytest.raises(ValueError, match="there is no output layer"):
        DCHN(output="linear", loss="cross_entropy")
