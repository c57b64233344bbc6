"""The EP family (positive, negative, centered, random-sign, continual, holomorphic EP), recurrent
backprop, and the optimizers of the one update path: each estimator against autograd (BPTT, the
implicit-function gradient) in float64, the orders of their biases, and their training runs."""

import copy
import math

import pytest
import torch

from bench_algorithms.bptt import BPTT
from bench_algorithms.cep import ContinualEP
from bench_algorithms.ep import EP
from bench_algorithms.hep import HolomorphicEP
from bench_algorithms.paired import Paired
from bench_algorithms.rbp import RBP
from bench_algorithms.richardson import EPRichardson
from bench_models import EBNet, PNet, ToyModel
from bench_runs.bias import fit_slope, total_error
from conftest import BLOBS_TRAIN, final_values
from harness.api.algorithm import process_key
from harness.api.model import nudged_delta, per_group
from harness.api.optimizer import apply_update
from harness.run.runner import Runner
from harness.suite.load import load_suite

D = torch.float64
T, K = 4000, 30  # the tiny nets below settle to max|F(s) − s| < 1e-14 in T − K steps


def _batch(model, n=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, model.input_size, generator=g, dtype=D)
    return x, model.target(torch.randint(0, model.num_classes, (n,), generator=g))


@pytest.fixture(scope="module")
def toy():
    torch.manual_seed(0)
    m = ToyModel(input_size=6, hidden_size=7, output_size=3).to(D)
    x, y = _batch(m)
    return m, x, y, BPTT().processes(m, x, y, T=T, K=K)


@pytest.fixture(scope="module")
def eb():
    torch.manual_seed(0)
    m = EBNet(hidden=[7, 5], input_size=6, output_size=3, bias=True).to(D)
    x, y = _batch(m)
    return m, x, y, BPTT().processes(m, x, y, T=T, K=K)


def _errors(algorithm, case, betas):
    m, x, y, ref = case
    return [total_error(algorithm(b).processes(m, x, y, T=T, K=K), ref) for b in betas]


# -- each estimator against autograd, and the order of its bias ------------------------------------------
BETAS = [0.02, 0.04, 0.08]
ORDERS = {  # estimator: (bias order in β, tolerance on the fitted slope)
    "ep": (lambda b: EP(b), 1, 0.1),
    "ep-negative": (lambda b: EP(b, variant="negative"), 1, 0.1),
    "ep-centered": (lambda b: EP(b, variant="centered"), 2, 0.1),
    "ep-richardson": (lambda b: EPRichardson(b), 2, 0.1),
    "hep N=4": (lambda b: HolomorphicEP(b, N=4), 4, 0.2),
}


@pytest.mark.parametrize("case", ["toy", "eb"])
@pytest.mark.parametrize("name", list(ORDERS))
@pytest.mark.slow
def test_each_estimator_converges_to_bptt_at_its_order(name, case, request):
    """Σ_t of the processes (the update applied in training) against −∇BPTT by autograd: the relative
    error shrinks as β^order (Theorem 1 and its successors), and is small at the smallest β."""
    build, order, tol = ORDERS[name]
    errors = _errors(build, request.getfixturevalue(case), BETAS)
    assert fit_slope(BETAS, errors) == pytest.approx(order, abs=tol), errors
    assert errors[0] < 0.01, errors


@pytest.mark.slow
def test_centered_ep_equals_holomorphic_ep_with_two_nudges(eb):
    m, x, y, _ = eb
    for beta in (0.01, 0.3):
        c = EP(beta, variant="centered").processes(m, x, y, T=T, K=K)
        h = HolomorphicEP(beta, N=2).processes(m, x, y, T=T, K=K)
        for what in ("neurons", "weights"):
            for key, v in getattr(c, what).items():
                torch.testing.assert_close(getattr(h, what)[key], v, rtol=1e-9, atol=1e-13)


def test_holomorphic_ep_is_exact_to_rounding_at_finite_beta(toy):
    """With N = 8 nudges the error at |β| = 0.05 is O(β⁸): at float64 rounding, where one-sided EP
    is at 10⁻²."""
    assert _errors(lambda b: HolomorphicEP(b, N=8), toy, [0.05])[0] < 1e-9
    assert _errors(lambda b: EP(b), toy, [0.05])[0] > 1e-3


@pytest.mark.slow
def test_negative_and_positive_biases_are_opposite(toy):
    """One-sided EP's O(β) terms cancel in their mean: (positive + negative)/2 is centered EP."""
    m, x, y, _ = toy
    pos, neg, cen = (EP(0.05, variant=v).processes(m, x, y, T=T, K=K) for v in ("positive", "negative", "centered"))
    for key, c in cen.weights.items():
        torch.testing.assert_close((pos.weights[key] + neg.weights[key]) / 2, c, rtol=1e-9, atol=1e-14)


def test_rbp_processes_equal_bptt_at_a_settled_fixed_point(eb):
    m, x, y, ref = eb
    got = RBP().processes(m, x, y, T=T, K=K)
    for what in ("neurons", "weights"):
        for key, r in getattr(ref, what).items():
            torch.testing.assert_close(getattr(got, what)[key], r, rtol=1e-9, atol=1e-13)


def test_rbp_gradient_is_the_implicit_function_gradient(toy):
    """Iterated to convergence, RBP's gradient equals (∂F/∂θ)ᵀ (I − ∂F/∂sᵀ)⁻¹ ∂L/∂s solved directly
    with the full Jacobian of the step (autograd)."""
    m, x, y, _ = toy
    free, grads = RBP(iterations=3000).gradient(m, x, y, T=T, K=K)
    sizes = [s.numel() for s in free]

    def F(flat):
        parts = flat.split(sizes)
        return torch.cat([t.flatten() for t in m.step(x, tuple(p.view_as(s) for p, s in zip(parts, free)))])

    s = torch.cat([t.flatten() for t in free])
    J = torch.autograd.functional.jacobian(F, s)
    dl = torch.zeros_like(s)
    dl[: sizes[0]] = (free[0] - y).flatten() / x.shape[0]  # ∂(batch mean of ½‖s⁰ − y‖²)/∂s⁰
    mu = torch.linalg.solve(torch.eye(len(s), dtype=D) - J.T, dl)
    flat = [p for ps in m.param_groups().values() for p in ps]
    with torch.enable_grad():
        out = F(s)
        expected = torch.autograd.grad(out, flat, grad_outputs=mu)
    got = [g for gs in grads.values() for g in gs]
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-8, atol=1e-12)


@pytest.mark.slow
def test_continual_ep_tends_to_ep_as_eta_vanishes(eb):
    """η = 0: EP's processes; small η: a difference proportional to η."""
    m, x, y, _ = eb
    ep = EP(0.05).processes(m, x, y, T=T, K=K)

    def gap(eta):
        p = ContinualEP(0.05, lr=None if eta == 0 else [eta] * 3).processes(m, x, y, T=T, K=K)
        return max(float((p.weights[k] - v).abs().max()) for k, v in ep.weights.items())

    assert gap(0) < 1e-12
    g1, g2 = gap(1e-3), gap(1e-4)
    assert g1 > 1e-9 and g1 / g2 == pytest.approx(10, rel=0.05)


def test_continual_ep_moves_the_weights_during_the_second_phase(eb):
    """One C-EP step with η equals K EP-like updates, each seen by the next step (not one update)."""
    m, x, y, _ = eb
    a, b = copy.deepcopy(m), copy.deepcopy(m)
    ContinualEP(0.5, lr=[0.1] * 3).train_step(a, x, y, T=200, K=5)
    EP(0.5, lr=[0.1] * 3).train_step(b, x, y, T=200, K=5)
    diff = [float((p - q).detach().abs().max()) for p, q in zip(a.parameters(), b.parameters())]
    moved = [float((p - q).detach().abs().max()) for p, q in zip(a.parameters(), m.parameters())]
    assert min(moved) > 1e-6 and 0 < max(diff) < 0.1 * max(moved)


# -- refusals ----------------------------------------------------------------------------------------
def test_holomorphic_ep_refuses_a_model_that_is_not_holomorphic():
    m = EBNet(hidden=[5], input_size=6, output_size=3, activation="sigmoid", clip=True).to(D)
    x, y = _batch(m)
    with pytest.raises(ValueError, match="supports_complex = False.*ep-centered"):
        HolomorphicEP(0.1).processes(m, x, y, T=5, K=2)
    assert PNet(hidden=[5], input_size=6, output_size=3, activation="hard_sigmoid").supports_complex is False
    assert PNet(hidden=[5], input_size=6, output_size=3, activation="sigmoid").supports_complex is True


def test_validate_refuses_holomorphic_ep_on_a_clipped_net(registry, suite_file):
    """Found by `bench validate` (the model built on the meta device), not when the run starts; the same
    net without the clip passes."""
    from harness.suite.load import SuiteError, load_suite

    text = """
        name = "hepclip"
        [defaults]
        kind = "train"
        dataset = { name = "blobs", input_size = 6, num_classes = 3, n_train = 20, n_test = 10 }
        algorithm = { name = "hep", beta = 0.1, lr = [0.1, 0.1] }
        T = 5
        K = 2
        [[runs]]
        name = "clipped"
        model = { name = "eb", input_size = 6, output_size = 3, hidden = [5], activation = "sigmoid", clip = true }
    """
    with pytest.raises(SuiteError, match=r"defaults\.algorithm: algorithm 'hep' with model 'eb'"
                                         r".*supports_complex = False.*ep-centered"):
        load_suite(suite_file(text), registry)
    assert len(load_suite(suite_file(text.replace("clip = true", "clip = false"), "ok.toml"), registry).runs) == 1


@pytest.mark.parametrize("make, message", [
    (lambda: EP(0.1, variant="centered", random_sign=True), "centered EP has both sides"),
    (lambda: EP(0.1, variant="sideways"), "unknown EP variant 'sideways'"),
    (lambda: HolomorphicEP(0.1, N=1), "N >= 2"),
    (lambda: RBP(iterations=0), "iterations >= 1"),
    (lambda: BPTT(optimizer="adam", momentum=0.9), "momentum is an option of sgd"),
    (lambda: BPTT(optimizer="rmsprop"), "unknown optimizer 'rmsprop'; known: sgd, adam"),
    (lambda: BPTT(adam_betas=[0.8, 0.99]), "adam_betas and adam_eps are options of adam"),
    (lambda: BPTT(optimizer="adam", adam_betas=[0.9, 0.99, 0.5]), "adam_betas takes two values"),
])
def test_bad_options_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_only_the_papers_plain_ep_and_bptt_pair():
    assert Paired.can_pair([EP(0.1, lr=[1]), BPTT(lr=[1])])
    assert not Paired.can_pair([EP(0.1, variant="centered"), BPTT()])
    assert not Paired.can_pair([EP(0.1, random_sign=True), BPTT()])
    assert "asynchronous second phases" in Paired.why_not([EP(0.2), EP(0.2, nudged_schedule="async"), BPTT()])
    assert "warm_start" in Paired.why_not([EP(0.2, warm_start=True), BPTT()])
    assert "zero_phase" in Paired.why_not([EP(0.2, zero_phase=True), EP(0.2), BPTT()])
    assert not Paired.can_pair([EP(0.1), BPTT(momentum=0.9)])


# -- the one update path -------------------------------------------------------------------------------
def _papers_ep_step(model, x, y, beta, lr, T, K):
    """EP's update as written before optimizers existed: p += (lr · 1/(β·scale·B)) · (∂Φ/∂θ(s^β) − ∂Φ/∂θ(s*))."""
    lrs = per_group(lr, model, "lr")
    with torch.no_grad():
        xp = model.prepare(x)
    free = model.relax(xp, model.init_state(x), T)
    delta = model.dphi_delta(xp, model.relax(xp, free, K, y, beta), free)
    scale = 1.0 / (beta * model.nudge_scale * free[0].shape[model.batch_dim()])
    apply_update(model, delta, {name: lr * scale for name, lr in lrs.items()})


def _papers_bptt_step(model, x, y, lr, T, K):
    lrs = per_group(lr, model, "lr")
    with torch.enable_grad():
        xp = model.prepare(x)
    state = model.relax(xp, model.init_state(x), T - K, output_at=T)
    _, _, grads = BPTT().direction(model, xp, state, y, K, output_at=K)
    apply_update(model, grads, {name: -lr for name, lr in lrs.items()})


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_plain_sgd_is_bit_identical_to_the_papers_update(dtype):
    torch.manual_seed(3)
    m = PNet(hidden=[16], input_size=6, output_size=3, activation="sigmoid").to(dtype)
    x, y = _batch(m, n=8)
    x, y = x.to(dtype), y.to(dtype)
    lr = [0.08, 0.04]
    for ours, papers in ((lambda mm: EP(0.1, lr=lr).train_step(mm, x, y, T=20, K=5),
                          lambda mm: _papers_ep_step(mm, x, y, 0.1, lr, 20, 5)),
                         (lambda mm: BPTT(lr=lr).train_step(mm, x, y, T=20, K=5),
                          lambda mm: _papers_bptt_step(mm, x, y, lr, 20, 5))):
        a, b = copy.deepcopy(m), copy.deepcopy(m)
        for _ in range(3):
            ours(a)
            papers(b)
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_each_model_has_its_own_optimizer_state():
    """One algorithm training two models in turn (the speed kind's fast and generic copies) gives
    each the result it would get alone: momentum buffers do not leak between models."""
    torch.manual_seed(5)
    m = PNet(hidden=[6], input_size=6, output_size=3).to(D)
    x, y = _batch(m)
    shared, alone = EP(0.2, lr=[0.05, 0.05], momentum=0.9), EP(0.2, lr=[0.05, 0.05], momentum=0.9)
    a, b, ref = copy.deepcopy(m), copy.deepcopy(m), copy.deepcopy(m)
    for _ in range(3):
        shared.train_step(a, x, y, T=10, K=4)
        shared.train_step(b, x, y, T=10, K=4)
        alone.train_step(ref, x, y, T=10, K=4)
    for p, q, r in zip(a.parameters(), b.parameters(), ref.parameters()):
        assert torch.equal(p, r) and torch.equal(q, r)


def test_sgd_momentum_and_adam_follow_their_definitions():
    """p.grad = −(the estimate); SGD with momentum μ and weight decay λ: v ← μv + g + λp, p −= lr·v;
    Adam as torch.optim's, both with one learning rate per layer."""
    torch.manual_seed(4)
    m = PNet(hidden=[6], input_size=6, output_size=3).to(D)
    x, y = _batch(m)
    lr, mu, wd = [0.05, 0.02], 0.9, 1e-3
    alg, ref = BPTT(lr=lr, momentum=mu, weight_decay=wd), copy.deepcopy(m)
    bufs = None
    for _ in range(3):
        alg.train_step(m, x, y, T=10, K=4)
        with torch.enable_grad():
            xp = ref.prepare(x)
        _, _, g = BPTT().direction(ref, xp, ref.relax(xp, ref.init_state(x), 6), y, 4)
        grads = [t for ts in g.values() for t in ts]
        params = [(p, rate) for (name, ps), rate in zip(ref.param_groups().items(), lr) for p in ps]
        with torch.no_grad():
            bufs = [g + wd * p for g, (p, _) in zip(grads, params)] if bufs is None else \
                [mu * v + g + wd * p for v, g, (p, _) in zip(bufs, grads, params)]
            for v, (p, rate) in zip(bufs, params):
                p.sub_(rate * v)
    for p, q in zip(m.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)
    adam = EP(0.1, lr=[0.01, 0.01], optimizer="adam")
    before = [p.clone() for p in m.parameters()]
    adam.train_step(m, x, y, T=10, K=4)
    # Adam's first step moves every parameter with a nonzero estimate by about lr (g/|g|)
    steps = torch.cat([(p - b).detach().abs().flatten() for p, b in zip(m.parameters(), before)])
    assert float(steps.max()) == pytest.approx(0.01, rel=1e-3)


# -- training runs, through the runner -----------------------------------------------------------------
SUITE = BLOBS_TRAIN + """
    model = { name = "p", input_size = 12, output_size = 4, hidden = [16], activation = "sigmoid" }

    [[runs]]
    name = "p"
    algorithm = { lr = [0.4, 0.2] }
    grid.algorithm = [{ name = "ep-random-sign", beta = 0.2, momentum = 0.5 },
                      { name = "ep-centered", beta = 0.2 }, { name = "hep", beta = 0.2, N = 3 },
                      { name = "cep", beta = 0.2, lr = [0.05, 0.025] }, { name = "rbp", optimizer = "adam", lr = [0.01, 0.01] },
                      "ep-negative", "bptt"]
"""


@pytest.mark.slow
def test_every_estimator_trains(registry, suite_file, tmp_path):
    suite = load_suite(suite_file(SUITE), registry)
    runner = Runner(suite, registry, tmp_path)
    runner.execute(suite.runs)
    for run in suite.runs:
        assert runner.store(run).status() == "done", (runner.store(run).dir / "error.txt").read_text()
        assert final_values(runner, run)["test_error"] < 30.0, run.id  # chance: 75 %


@pytest.mark.parametrize("entry, name", [(None, "ep-random-sign"),
                                         ('{ name = "ep", beta = 0.2, warm_start = true },', "ep")])
def test_a_stateful_run_resumes_exactly(registry, suite_file, tmp_path, interrupt_ep, entry, name):
    """The drawn signs of β and the momentum buffers, or a warm start's carried free state, go into the
    epoch checkpoint: an interrupted run that resumes ends with the same weights as one that was not
    interrupted."""
    text = SUITE if entry is None else SUITE.replace(
        '{ name = "ep-random-sign", beta = 0.2, momentum = 0.5 },', entry)
    suite = load_suite(suite_file(text), registry)
    run = suite.runs[0]
    assert run.slots["algorithm"]["name"] == name
    assert entry is None or run.slots["algorithm"]["params"]["warm_start"] is True
    whole = Runner(suite, registry, tmp_path / "whole")
    whole.execute([run])
    calls = interrupt_ep(30)  # 20 batches per epoch: in epoch 2
    resumed = Runner(suite, registry, tmp_path / "resumed")
    with pytest.raises(KeyboardInterrupt):
        resumed.execute([run])
    calls["n"] = -10**9
    resumed.execute([run])
    assert final_values(resumed, run)["final_checksum"] == final_values(whole, run)["final_checksum"]


def test_one_diverging_stateful_run_leaves_the_others_of_its_batch(registry, suite_file, tmp_path, poison_run):
    """Stateful runs of a batch_seeds group run one by one; one that blows up is diverged, the others
    are done (not the whole group marked diverged)."""
    text = SUITE.replace("seeds = [0]", "seeds = [0, 1]\n    batch_seeds = true").replace(
        "epochs = 3", "epochs = 2")
    poison_run("ep-random-sign-s0-", after_batches=5)
    suite = load_suite(suite_file(text), registry)
    runs = [r for r in suite.runs if r.slots["algorithm"]["name"] == "ep-random-sign"]
    runner = Runner(suite, registry, tmp_path)
    runner.execute(runs)
    assert [runner.store(r).status() for r in runs] == ["diverged", "done"]


def test_random_sign_draws_both_signs_from_its_stream():
    a, b = EP(0.1, random_sign=True), EP(0.1, random_sign=True)
    a.use_generator(torch.Generator().manual_seed(11))
    b.use_generator(torch.Generator().manual_seed(11))
    signs = [a._draw_sign() for _ in range(40)]
    assert set(signs) == {1.0, -1.0} and signs == [b._draw_sign() for _ in range(40)]
    assert a.nudges(-1.0) == (-0.1, 0.0) and a.nudges(1.0) == (0.0, 0.1)


def test_the_bias_slope_fit():
    betas = [1e-3, 1e-2, 1e-1]
    assert fit_slope(betas, [b ** 2 * 3 for b in betas]) == pytest.approx(2)
    assert fit_slope(betas, [b * 5 for b in betas], (5e-3, 1)) == pytest.approx(1)
    assert math.isnan(fit_slope(betas, [0.0, 0.0, 1.0]))


# -- the bias run kind, through the runner ------------------------------------------------------------
BIAS_SUITE = """
    [defaults]
    kind = "bias"
    dtype = "float64"
    seeds = [0]
    device = "cpu"
    batch_size = 4
    T = 3000
    K = 20
    betas = [0.01, 0.03, 0.1]
    dataset = { name = "random", input_shape = [6], num_classes = 3, n_train = 8, n_test = 8 }
    model = { name = "toy", input_size = 6, hidden_size = 7, output_size = 3 }

    [[runs]]
    name = "toy"
    grid.algorithm = ["ep", "ep-centered", "bptt"]
"""


@pytest.mark.slow
def test_the_bias_kind_measures_each_estimators_order(registry, suite_file, tmp_path):
    suite = load_suite(suite_file(BIAS_SUITE), registry)
    runner = Runner(suite, registry, tmp_path)
    runner.execute(suite.runs)
    slopes = {}
    for run in suite.runs:
        name = run.slots["algorithm"]["name"]
        if name == "bptt":  # the candidate must have a β to sweep: a clear failure, not a silent run
            assert runner.store(run).status() == "failed"
            assert "algorithm 'bptt' has no such parameter" in (runner.store(run).dir / "error.txt").read_text()
            continue
        assert runner.store(run).status() == "done", (runner.store(run).dir / "error.txt").read_text()
        for rec in runner.store(run).metrics()["final"]:
            if rec["metric"] == "slope_grad":
                slopes[name, rec["baseline"]] = rec["value"]
    assert set(slopes) == {(a, b) for a in ("ep", "ep-centered") for b in ("bptt", "rbp")}
    for (name, _), value in slopes.items():
        assert value == pytest.approx(1 if name == "ep" else 2, abs=0.15), slopes
    pytest.importorskip("matplotlib")
    from harness.results.figures import build_figures

    assert "bias-toy" in [d.stem for d in build_figures(suite, tmp_path)]


@pytest.mark.parametrize("make", [lambda: EP(0.3, variant="centered", lr=[0.2, 0.1]),
                                  lambda: EP(0.3, variant="negative", lr=[0.2, 0.1]),
                                  lambda: HolomorphicEP(0.3, N=3, lr=[0.2, 0.1]),
                                  lambda: ContinualEP(0.3, lr=[0.02, 0.01]),
                                  lambda: RBP(lr=[0.2, 0.1])],
                         ids=["ep-centered", "ep-negative", "hep", "cep", "rbp"])
def test_seeds_stacked_as_one_model_train_as_separate_runs(make):
    """batch_seeds with every new estimator: two members of a stacked model, each with its own
    data, end where two separate runs end (float64, 1e-10 relative)."""
    from harness.api.model import member_state, stack_members

    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        models.append(PNet(hidden=[7], input_size=6, output_size=3, activation="sigmoid").to(D))
    stacked = stack_members([copy.deepcopy(m) for m in models])
    alg, separate = make(), [make(), make()]
    g = torch.Generator().manual_seed(3)
    for _ in range(2):
        x = torch.rand(2, 5, 6, generator=g, dtype=D)
        y = stacked.target(torch.randint(0, 3, (2, 5), generator=g)).to(D)
        alg.train_step(stacked, x, y, T=12, K=4)
        for a, m, xi, yi in zip(separate, models, x, y):
            a.train_step(m, xi, yi, T=12, K=4)
    for i, m in enumerate(models):
        for k, v in member_state(stacked, i).items():
            ref = m.state_dict()[k]
            assert (v - ref).abs().max() <= 1e-10 * ref.abs().max(), (i, k)


def test_richardson_ep_is_two_one_sided_estimates_combined(eb):
    """Its processes are exactly 2·ΔEP(β/2) − ΔEP(β) (float64), and its training step applies their sum:
    the same parameters as an SGD step by hand with that direction."""
    m, x, y, _ = eb
    r = EPRichardson(0.1).processes(m, x, y, T=T, K=K)
    half, full = EP(0.05).processes(m, x, y, T=T, K=K), EP(0.1).processes(m, x, y, T=T, K=K)
    for what in ("neurons", "weights"):
        for key, v in getattr(r, what).items():
            torch.testing.assert_close(v, 2 * getattr(half, what)[key] - getattr(full, what)[key],
                                       rtol=1e-9, atol=1e-13)
    lr = [0.05, 0.04, 0.03]
    trained = copy.deepcopy(m)
    EPRichardson(0.1, lr=lr).train_step(trained, x, y, T=T, K=K)
    for (group, params), rate in zip(m.param_groups().items(), lr):
        for i, (before, after) in enumerate(zip(params, trained.param_groups()[group])):
            step = rate * r.weights[f"{group}.{i}"].sum(0)
            torch.testing.assert_close(after.detach(), before.detach() + step, rtol=1e-7, atol=1e-10)


def test_a_cosine_schedule_follows_torchs_cosine_annealing_per_epoch():
    """lr_schedule = "cosine": the rate of each epoch is torch's CosineAnnealingLR (T_max = epochs, eta_min
    = lr_floor) stepped once per epoch, as in the DCHN papers' codes; and a step at epoch e is the plain
    SGD step at that rate, through SGD's torch.optim path (a scheduled rate is not replayed as a graph)."""
    from harness.api.optimizer import cosine_lr

    epochs, lr, floor = 7, 0.25, 1e-5
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=floor)
    for epoch in range(1, epochs + 1):
        assert cosine_lr(lr, floor, epoch, epochs) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
        opt.step()
        sched.step()

    torch.manual_seed(3)
    m = PNet(hidden=[6], input_size=6, output_size=3).to(D)
    x, y = _batch(m)
    rates = [0.08, 0.04]
    scheduled = EP(0.1, lr=rates, lr_schedule="cosine", lr_floor=0.001)
    assert scheduled.stateful  # not graphed, not paired
    scheduled.start_epoch(4, 10)
    a, b = copy.deepcopy(m), copy.deepcopy(m)
    scheduled.train_step(a, x, y, T=20, K=5)
    EP(0.1, lr=[cosine_lr(r, 0.001, 4, 10) for r in rates]).train_step(b, x, y, T=20, K=5)
    for q, r in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(q, r, rtol=1e-12, atol=1e-14)


def test_a_cosine_period_shorter_than_the_run_follows_torch_past_t_max():
    """lr_period = T_max < epochs (Laborieux et al. 2021: 100 of 120): torch's rate, rising again past T_max."""
    from harness.api.optimizer import Update

    epochs, period, lr, floor = 12, 5, 0.25, 1e-5
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=period, eta_min=floor)
    update = Update(lr_schedule="cosine", lr_floor=floor, lr_period=period)
    seen = []
    for epoch in range(1, epochs + 1):
        update.start_epoch(epoch, epochs)
        seen.append(update.rates({"g": lr})["g"])
        assert seen[-1] == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-12)
        opt.step()
        sched.step()
    assert seen[period] == pytest.approx(floor) and seen[-1] > seen[period]
    with pytest.raises(ValueError, match="lr_period is the T_max of a cosine lr_schedule"):
        Update(lr_period=5)


def test_a_floor_without_a_cosine_schedule_is_refused():
    with pytest.raises(ValueError, match="lr_floor is the end of a cosine lr_schedule"):
        EP(0.1, lr=[0.1, 0.1], lr_floor=0.01)


def test_a_floor_above_a_rate_and_a_variant_of_richardson_are_refused():
    with pytest.raises(ValueError, match=r"lr_floor = 0.5 is above the smallest learning rate \(0.1\)"):
        EP(0.1, lr=[0.2, 0.1], lr_schedule="cosine", lr_floor=0.5)
    with pytest.raises(ValueError, match="ep-richardson fixes its nudges"):
        EPRichardson(0.1, variant="centered")


# -- warm start (Scellier et al. 2023's free phase carried across mini-batches) --------------------------
def test_a_warm_start_begins_each_free_phase_where_the_previous_one_ended():
    """EP(warm_start): the second step's free phase starts from the first's free state (a cold EP step
    from that state gives the same weights); a batch of another size starts from zero; a checkpoint's
    state_dict carries the state to a new algorithm, which then steps exactly as the old one."""
    torch.manual_seed(0)
    m = PNet(hidden=[6], input_size=6, output_size=3, activation="sigmoid").to(D)
    x1, y1 = _batch(m, seed=1)
    x2, y2 = _batch(m, seed=2)
    warm, cold = EP(0.2, lr=[0.1, 0.1], warm_start=True), EP(0.2, lr=[0.1, 0.1])
    assert warm.stateful and not cold.stateful  # not batched across seeds, not graphed
    a, b = copy.deepcopy(m), copy.deepcopy(m)
    warm.train_step(a, x1, y1, T=5, K=3)  # T = 5: far from the fixed point, so where it starts shows
    cold.train_step(b, x1, y1, T=5, K=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))  # the first starts at zero
    first = warm._warm[a]
    with torch.no_grad():
        assert all(torch.equal(s, t) for s, t in zip(first, m.relax(m.prepare(x1), m.init_state(x1), 5)))
    saved = copy.deepcopy(warm.state_dict())
    resumed, c = EP(0.2, lr=[0.1, 0.1], warm_start=True), copy.deepcopy(a)
    resumed.load_state_dict(saved)
    warm.train_step(a, x2, y2, T=5, K=3)
    resumed.train_step(c, x2, y2, T=5, K=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))  # the checkpoint's state
    b.init_state = lambda x: first  # a cold step from the first free state
    cold.train_step(b, x2, y2, T=5, K=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    del b.init_state
    z, d = copy.deepcopy(a), copy.deepcopy(a)
    x3, y3 = _batch(m, n=3, seed=3)  # another batch size: from zero
    warm.train_step(z, x3, y3, T=5, K=3)
    cold.train_step(d, x3, y3, T=5, K=3)
    assert all(torch.equal(p, q) for p, q in zip(z.parameters(), d.parameters()))



def _same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_warm_from_second_phase_carries_where_the_nudged_phase_ended_and_warm_reset_starts_each_epoch_cold():
    """Scellier et al. 2023's warm start: the next mini-batch starts where the step's second phase with n₂
    ended (a cold step from that state gives the same weights); after start_epoch the next step starts from
    zero again; a checkpoint taken at an epoch's end restores nothing to carry (the next epoch starts cold)."""
    torch.manual_seed(0)
    m = PNet(hidden=[6], input_size=6, output_size=3, activation="sigmoid").to(D)
    (x1, y1), (x2, y2), (x3, y3) = _batch(m, seed=1), _batch(m, seed=2), _batch(m, seed=3)
    kw = dict(lr=[0.1, 0.1], warm_start=True, warm_from="second_phase", warm_reset="epoch")
    warm, cold = EP(0.2, **kw), EP(0.2, lr=[0.1, 0.1])
    a, b = copy.deepcopy(m), copy.deepcopy(m)
    warm.start_epoch(1, 2)
    warm.train_step(a, x1, y1, T=5, K=3)  # T = 5: far from the fixed point, so where a phase starts shows
    cold.train_step(b, x1, y1, T=5, K=3)
    assert _same(a, b)
    with torch.no_grad():
        xp = m.prepare(x1)
        free = m.relax(xp, m.init_state(x1), 5)
        nudged = m.relax(xp, free, 3, y1, 0.2)
    assert all(torch.equal(s, t) for s, t in zip(warm._warm[a], nudged))
    assert max(float((s - t).abs().max()) for s, t in zip(nudged, free)) > 1e-3  # not the free state
    b.init_state = lambda x: nudged  # a cold step from where the nudged phase ended
    warm.train_step(a, x2, y2, T=5, K=3)
    cold.train_step(b, x2, y2, T=5, K=3)
    assert _same(a, b)
    del b.init_state
    saved = copy.deepcopy(warm.state_dict())
    assert "warm_state" not in saved  # a checkpoint ends an epoch, and the next one starts from zero
    warm.start_epoch(2, 2)  # a new epoch: from zero
    c, d = copy.deepcopy(a), copy.deepcopy(a)
    warm.train_step(c, x3, y3, T=5, K=3)
    cold.train_step(d, x3, y3, T=5, K=3)
    assert _same(c, d)
    resumed, e = EP(0.2, **kw), copy.deepcopy(a)
    resumed.load_state_dict(saved)  # the epoch-1 checkpoint, resumed into epoch 2
    resumed.start_epoch(2, 2)
    resumed.train_step(e, x3, y3, T=5, K=3)
    assert _same(c, e)


def test_zero_phase_runs_the_zero_nudge_side_for_k_steps_and_its_processes_still_sum_to_the_update():
    """zero_phase (Scellier et al. 2023's code): EP's zero side is K free steps from s_*, not s_* itself; on an
    unsettled free phase the update is (∂Φ/∂θ(s^β_K) − ∂Φ/∂θ(s^0_K)) / β, and the processes sum to it."""
    torch.manual_seed(0)
    m = PNet(hidden=[6], input_size=6, output_size=3, activation="sigmoid").to(D)
    x, y = _batch(m, seed=1)
    alg = EP(0.2, lr=[0.1, 0.1], zero_phase=True)
    with torch.no_grad():
        xp = m.prepare(x)
        free = m.relax(xp, m.init_state(x), 5)
        after, before = m.relax(xp, free, 3, y, 0.2), m.relax(xp, free, 3)
    assert max(float((s - t).abs().max()) for s, t in zip(before, free)) > 1e-3  # the zero side moves
    delta = nudged_delta(m, xp, after, before, y, (0.0, 0.2))
    k = 1.0 / (0.2 * m.nudge_scale * x.shape[0])
    expected, a, plain = copy.deepcopy(m), copy.deepcopy(m), copy.deepcopy(m)
    alg.apply(expected, delta, {g: k for g in delta})
    alg.train_step(a, x, y, T=5, K=3)
    EP(0.2, lr=[0.1, 0.1]).train_step(plain, x, y, T=5, K=3)
    assert _same(a, expected) and not _same(a, plain)
    proc = alg.processes(m, x, y, T=5, K=3)
    for g, ts in delta.items():
        for i, t in enumerate(ts):
            torch.testing.assert_close(proc.weights[process_key(g, i)].sum(0), t * k, rtol=1e-10, atol=1e-12)


def test_warm_options_without_warm_start_and_richardson_with_scellier_options_are_refused():
    with pytest.raises(ValueError, match="set warm_start = true"):
        EP(0.2, warm_from="second_phase")
    with pytest.raises(ValueError, match="set warm_start = true"):
        EP(0.2, warm_reset="epoch")
    with pytest.raises(ValueError, match="unknown warm_from 'nudged'"):
        EP(0.2, warm_start=True, warm_from="nudged")
    with pytest.raises(ValueError, match="zero_phase and warm_from"):
        EPRichardson(0.1, zero_phase=True)



def test_contrastive_and_coupled_negative_carry_their_last_clamped_phase():
    """With warm_from = "second_phase" the carried state is where the n₂ phase ended: contrastive's output
    clamped to the target; coupled-negative's (n₂ = 0, zero_phase) output held at the free output."""
    from bench_algorithms.coupled import Contrastive, CoupledNegative

    torch.manual_seed(0)
    m = PNet(hidden=[6], input_size=6, output_size=3, activation="sigmoid").to(D)
    x, y = _batch(m, seed=1)
    kw = dict(lr=[0.1, 0.1], warm_start=True, warm_from="second_phase", zero_phase=True)
    with torch.no_grad():
        free = m.relax(m.prepare(x), m.init_state(x), 5)
    for algorithm, output in ((Contrastive(**kw), y), (CoupledNegative(0.2, **kw), free[0])):
        a = copy.deepcopy(m)
        algorithm.train_step(a, x, y, T=5, K=3)
        torch.testing.assert_close(algorithm._warm[a][0], output, rtol=0, atol=1e-12)
        assert float((algorithm._warm[a][1] - free[1]).abs().max()) > 1e-4  # the hidden layer moved on
