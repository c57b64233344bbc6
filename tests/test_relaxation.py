"""Relaxation schedules (harness.api.relaxation): the asynchronous schedule reaches the synchronous one's
fixed point, and EP's update computed from either is the same to the tolerance."""

import copy

import pytest
import torch

from harness.api.relaxation import relax, residual

D = torch.float64


def nets(registry):
    torch.manual_seed(0)
    yield "P-2h", registry.get("model", "p").build({"hidden": [16, 16], "input_size": 12, "output_size": 4,
                                                    "activation": "tanh", "init": "torch"}), (12,)
    yield "EB-2h", registry.get("model", "eb").build({"hidden": [16, 16], "input_size": 12, "output_size": 4,
                                                      "activation": "tanh", "eps": 0.2, "init": "torch"}), (12,)
    yield "DCHN", registry.get("model", "dchn").build({"input_shape": [3, 8, 8], "channels": [4, 6],
                                                       "padding": [1, 1], "output_size": 4, "init": "torch"}), (3, 8, 8)


def ep_update(registry, model, x, y, state, beta=1e-3, K=10):
    """EP's update from a free fixed point (its direction: ∂Φ/∂θ(s^β_K) − ∂Φ/∂θ(s_*), before 1/β)."""
    return registry.get("algorithm", "ep").build({"beta": beta}).direction(model, x, state, y, K)


@pytest.mark.parametrize("index", [0, 1, 2], ids=["P-2h", "EB-2h", "DCHN"])
def test_async_reaches_the_sync_fixed_point_and_ep_s_update_from_it(registry, index):
    name, model, shape = list(nets(registry))[index]
    model = model.to(torch.device("cpu"), D)
    x = torch.rand(5, *shape, dtype=D, generator=torch.Generator().manual_seed(1))
    y = torch.nn.functional.one_hot(torch.arange(5) % 4, 4).to(D)
    s0 = model.init_state(x)
    tol = 1e-12
    sync = relax(model, x, s0, max_steps=20000, tol=tol, schedule="sync")
    asy = relax(model, x, s0, max_steps=20000, tol=tol, schedule="async")
    assert sync.residual < 1e-10 and asy.residual < 1e-10, (name, sync, asy)
    assert asy.evaluations == 2 * asy.sweeps + 1 and sync.evaluations == sync.sweeps + 1
    gap = max(float((a - b).abs().max()) for a, b in zip(sync.state, asy.state))
    assert gap < 1e-9, (name, gap)
    u1, u2 = ep_update(registry, model, x, y, sync.state), ep_update(registry, model, x, y, asy.state)
    for g in u1:
        for a, b in zip(u1[g], u2[g]):
            assert float((a - b).abs().max()) <= 1e-6 * max(float(a.abs().max()), 1e-12), (name, g)


def test_a_fixed_number_of_steps_and_bad_arguments(registry):
    model = registry.get("model", "p").build({"hidden": [8], "input_size": 6, "output_size": 3}).double()
    x = torch.rand(2, 6, dtype=D)
    out = relax(model, x, model.init_state(x), max_steps=7)
    assert out.sweeps == 7 and out.residual == pytest.approx(residual(model, x, out.state))
    with pytest.raises(ValueError, match="unknown relaxation schedule 'gauss'; known: sync, async"):
        relax(model, x, model.init_state(x), max_steps=3, schedule="gauss")
    with pytest.raises(ValueError, match="max_steps must be at least 1"):
        relax(model, x, model.init_state(x), max_steps=0)


def test_ep_trained_from_the_asynchronous_fixed_point_takes_the_same_step(registry):
    """EP's `schedule = "async"` with a tolerance: the same update as the paper's synchronous free phase
    once both have settled (float64), and the defaults leave run ids alone (quiet)."""
    ep = registry.get("algorithm", "ep")
    torch.manual_seed(0)
    net = registry.get("model", "p").build({"hidden": [12, 12], "input_size": 8, "output_size": 3,
                                            "activation": "tanh", "init": "torch"}).double()
    x = torch.rand(6, 8, dtype=D, generator=torch.Generator().manual_seed(2))
    y = torch.nn.functional.one_hot(torch.arange(6) % 3, 3).to(D)
    models = [copy.deepcopy(net) for _ in range(2)]
    for m, params in zip(models, ({}, {"schedule": "async", "tol": 1e-13})):
        ep.build({"beta": 0.01, "lr": [0.1, 0.1, 0.1], **params}).train_step(m, x, y, T=4000, K=8)
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        assert torch.allclose(a, b, rtol=0, atol=1e-9)
    assert any(not torch.equal(a, b) for a, b in zip(net.parameters(), models[0].parameters()))
    assert {p.name: p.quiet_default for p in ep.params if p.name in ("schedule", "tol")} == \
        {"schedule": True, "tol": True}
    with pytest.raises(ValueError, match="unknown relaxation schedule 'jacobi'"):
        ep.build({"schedule": "jacobi"})


def test_asynchronous_second_phases_are_sweeps_and_reach_the_synchronous_nudged_state(registry):
    """``nudged_schedule = "async"`` (Scellier et al. 2023's code): each of the K steps of a second phase is
    one sweep (even layers, then odd ones) of the nudged step, or of coupled learning's clamped one; with K
    large both schedules reach the same nudged fixed point, so EP's update is the synchronous one (float64);
    the processes still sum to the update; the default leaves run ids alone (quiet)."""
    from bench_algorithms.coupled import CoupledCentered
    from bench_algorithms.ep import EPCentered
    from harness.api.relaxation import async_sweep

    torch.manual_seed(0)
    net = registry.get("model", "eb").build({"hidden": [10, 8], "input_size": 6, "output_size": 3,
                                             "activation": "tanh", "eps": 0.3, "init": "torch"}).double()
    x = torch.rand(5, 6, dtype=D, generator=torch.Generator().manual_seed(2))
    y = torch.nn.functional.one_hot(torch.arange(5) % 3, 3).to(D)
    free = net.relax(x, net.init_state(x), 3000)
    sweeping = EPCentered(beta=0.05, nudged_schedule="async")
    state = free
    for _ in range(4):  # the definition, by hand
        state = async_sweep(lambda xx, s: net.step(xx, s, y, 0.05), x, state)
    assert all(torch.equal(a, b) for a, b in zip(sweeping.second_phase(net, x, free, y, 0.05, K=4), state))
    coupled = CoupledCentered(beta=0.05, nudged_schedule="async").second_phase(net, x, free, y, 0.05, K=4)
    assert torch.equal(coupled[0], free[0] + 0.05 * (y - free[0]))  # the clamp held through the sweeps
    sync, both = EPCentered(beta=0.05), {}
    for name, alg in (("sync", sync), ("async", sweeping)):
        n1, n2 = alg.nudges()
        both[name] = alg.direction(net, x, free, y, 3000, (n1, n2))
    for g in both["sync"]:
        for a, b in zip(both["sync"][g], both["async"][g]):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    processes = sweeping.processes(net, x, y, T=3000, K=6)
    n1, n2 = sweeping.nudges()
    direct = sweeping.direction(net, x, free, y, 6, (n1, n2))
    for g, ds in direct.items():
        for i, d in enumerate(ds):
            torch.testing.assert_close(processes.weights[f"{g}.{i}"].sum(0), d / ((n2 - n1) * net.nudge_scale * 5),
                                       rtol=1e-10, atol=1e-13)
    from bench_algorithms.richardson import EPRichardson

    richardson = EPRichardson(beta=0.05, nudged_schedule="async", lr=[1.0, 1.0, 1.0])  # processes = its step
    summed = richardson.processes(net, x, y, T=3000, K=6)
    trained = copy.deepcopy(net)
    richardson.train_step(trained, x, y, T=3000, K=6)
    for (g, ps), qs in zip(net.param_groups().items(), trained.param_groups().values()):
        for i, (p, q) in enumerate(zip(ps, qs)):
            torch.testing.assert_close(q - p, summed.weights[f"{g}.{i}"].sum(0), rtol=1e-9, atol=1e-12)
    assert next(p for p in registry.get("algorithm", "ep").params if p.name == "nudged_schedule").quiet_default
    with pytest.raises(ValueError, match="unknown nudged_schedule 'gauss'"):
        EPCentered(beta=0.1, nudged_schedule="gauss")


def test_errors_measured_after_asynchronous_sweeps(registry):
    """The train kind's ``eval_schedule = "async"`` (Scellier et al. 2023's inference): each prediction
    is the model's after eval_T asynchronous sweeps from zero; the default is the paper's synchronous
    steps, quiet, and a wrong value is refused."""
    from bench_runs.train import Train, error_and_unpredicted

    torch.manual_seed(0)
    net = registry.get("model", "p").build({"hidden": [12, 12], "input_size": 8, "output_size": 3,
                                            "activation": "tanh", "init": "torch"}).double()
    x = torch.rand(30, 8, dtype=D, generator=torch.Generator().manual_seed(4))
    labels = torch.arange(30) % 3
    by_hand = {}
    for schedule in ("sync", "async"):
        states = [relax(net, x[i:i + 7], net.init_state(x[i:i + 7]), max_steps=3, schedule=schedule).state
                  for i in range(0, 30, 7)]
        wrong = sum(int((net.predict(s) != labels[i:i + 7]).sum()) for s, i in zip(states, range(0, 30, 7)))
        by_hand[schedule] = 100.0 * wrong / 30
        assert error_and_unpredicted(net, x, labels, 3, 7, schedule)[0] == [by_hand[schedule]]
    assert by_hand["sync"] != by_hand["async"]  # three sweeps are not three steps: the check bites
    assert next(p for p in registry.get("run_kind", "train").params if p.name == "eval_schedule").quiet_default
    with pytest.raises(ValueError, match="unknown eval_schedule 'gauss'"):
        Train(T=3, K=1, eval_schedule="gauss")
