"""Coupled learning (``coupled``; Stern et al. 2021, Scellier et al. 2023): the output clamped, not nudged.

Proved here in float64: its second phase is the definition (the output held at s⁰ + n(y − s⁰) from the free
state, the other layers stepping with it); its update is EP's formula over the clamps, and its processes sum
to it; on EB-1h, whose F = ∂Φ/∂s, centered EP's error against the implicit gradient shrinks as β² while
coupled learning's stays at a floor (it is not a gradient estimator; a small EB net, one batch); it refuses a model without an output
layer."""

from __future__ import annotations

import copy

import pytest
import torch

from bench_algorithms.coupled import Contrastive, CoupledCentered, CoupledLearning
from bench_algorithms.ep import EPCentered
from bench_algorithms.rbp import RBP
from bench_models import EBNet, PNet
from bench_models.dchn import DCHN

D = torch.float64


def net_and_batch(cls=EBNet, **kw):
    torch.manual_seed(0)
    m = cls(hidden=[8], input_size=6, output_size=3, activation="tanh", **kw).to(D)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(5, 6, generator=g, dtype=D)
    return m, x, m.target(torch.randint(0, 3, (5,), generator=g)).to(D)


def test_the_second_phase_holds_the_output_at_its_clamp_while_the_rest_steps():
    m, x, y = net_and_batch(PNet)
    free = m.relax(x, m.init_state(x), 40)
    alg = CoupledLearning(beta=0.3)
    got = alg.second_phase(m, x, free, y, 0.3, K=6)
    out = free[0] + 0.3 * (y - free[0])  # s⁰ − n·∂ℓ/∂s⁰ for the squared error
    state = free
    with torch.no_grad():
        for _ in range(6):
            state = (out, *m.step(x, (out, *state[1:]))[1:])
    assert torch.equal(got[0], out)
    assert all(torch.equal(a, b) for a, b in zip(got, state))


def test_its_update_is_eps_formula_over_the_clamps_and_its_processes_sum_to_it():
    m, x, y = net_and_batch()
    alg = CoupledCentered(beta=0.2, lr=[0.1, 0.1])
    free = m.relax(x, m.init_state(x), 200)
    before, after = (alg.second_phase(m, x, free, y, n, K=15) for n in (-0.2, 0.2))
    a, b = m.dphi_dtheta(x, after), m.dphi_dtheta(x, before)
    want = {g: [(u - v) / (0.4 * 5) for u, v in zip(a[g], b[g])] for g in a}  # no nudge_scale: a clamp
    trained = copy.deepcopy(m)
    alg.train_step(trained, x, y, T=200, K=15)
    for (g, ps), (_, qs) in zip(m.param_groups().items(), trained.param_groups().items()):
        for i, (p, q) in enumerate(zip(ps, qs)):
            torch.testing.assert_close(q - p, 0.1 * want[g][i], rtol=1e-10, atol=1e-13)
    processes = alg.processes(m, x, y, T=200, K=15)
    for g, ps in m.param_groups().items():
        for i in range(len(ps)):
            torch.testing.assert_close(processes.weights[f"{g}.{i}"].sum(0), want[g][i], rtol=1e-10, atol=1e-13)


def test_unlike_ep_it_does_not_tend_to_the_gradient():
    """A small EB net (F = ∂Φ/∂s) at an exact fixed point: centered EP's relative error against the implicit gradient falls
    100× per decade of β; coupled learning's does not move (measured: 0.825 at β = 10⁻², 10⁻³, 10⁻⁴)."""
    m, x, y = net_and_batch(EBNet, eps=0.2)
    free, grad = RBP(iterations=3000).gradient(m, x, y, T=3000, K=2000)
    ref = torch.cat([-v.flatten() for vs in grad.values() for v in vs])
    errors = {}
    for cls in (EPCentered, CoupledCentered):
        errors[cls.__name__] = []
        for beta in (1e-3, 1e-4):
            alg = cls(beta=beta)
            n1, n2 = alg.nudges()
            d = alg.direction(m, m.prepare(x), free, y, 2000, (n1, n2))
            got = torch.cat([v.flatten() / (alg.effective_nudge(m, n1, n2) * 5) for vs in d.values() for v in vs])
            errors[cls.__name__].append(float((got - ref).norm() / ref.norm()))
    ep, cl = errors["EPCentered"], errors["CoupledCentered"]
    assert 80 < ep[0] / ep[1] < 125 and ep[1] < 1e-6, errors
    assert cl[1] > 0.1 and 0.9 < cl[0] / cl[1] < 1.1, errors


def test_it_refuses_a_readout_in_the_loss_and_random_sign():
    with pytest.raises(ValueError, match="coupled learning clamps the output layer; DCHN has none"):
        CoupledLearning(beta=0.1).check_model(DCHN(loss="cross_entropy", channels=[2, 2], input_shape=[3, 8, 8],
                                                   padding=[1, 1]))
    with pytest.raises(ValueError, match="coupled learning has no random_sign"):
        CoupledLearning(beta=0.1, random_sign=True)
    with pytest.raises(ValueError, match="contrastive learning clamps the output to the target"):
        Contrastive(beta=0.5)


def test_contrastive_learning_clamps_the_output_to_the_target():
    m, x, y = net_and_batch(PNet)
    free = m.relax(x, m.init_state(x), 40)
    alg = Contrastive()
    assert alg.nudges() == (0.0, 1.0)
    torch.testing.assert_close(alg.second_phase(m, x, free, y, 1.0, K=3)[0], y, rtol=0, atol=1e-15)  # s⁰ − (s⁰ − y)
