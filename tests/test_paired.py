"""EP and BPTT as members of one stacked model (``batch_algorithms``) train exactly as separate runs.

Tolerances: float64, 1e-12 relative to the values' scale (batched matmuls and the fused update
may round differently from the separate runs); errors compared exactly.
"""

from __future__ import annotations

import copy

import pytest
import torch

from bench_algorithms import BPTT, EP
from bench_algorithms.paired import Paired
from bench_models import EBNet, PNet, ToyModel
from conftest import final_values
from harness.api.model import member_state, stack_members
from harness.results.store import read_json
from harness.run.runner import Runner
from harness.suite.load import SuiteError, load_suite

pytestmark = pytest.mark.usefixtures("one_thread")

D = torch.float64
MODELS = {
    "P-2h": (lambda fast: PNet(hidden=[12, 9], input_size=15, output_size=4, activation="sigmoid", fast=fast),
             [0.3, 0.2, 0.1]),
    "EB-1h": (lambda fast: EBNet(hidden=[12], input_size=15, output_size=4, activation="sigmoid", eps=0.2,
                                 clip=True, fast=fast), [0.3, 0.2]),
    "toy": (lambda fast: ToyModel(input_size=15, hidden_size=12, output_size=4, bias=True, fast=fast),
            [0.3, 0.2, 0.1]),
}


def _close(a, b, rtol=1e-12):
    scale = max(a.abs().max().item(), b.abs().max().item(), 1e-30)
    return (a - b).abs().max().item() <= rtol * scale


@pytest.mark.device
@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "generic"])
@pytest.mark.parametrize("beta", [0.4, -0.4])
def test_paired_members_equal_separate_ep_and_bptt(name, fast, beta, device):
    """Members (EP s0, BPTT s0, EP s1, BPTT s1) in one model, each with its own data, after three
    steps: the parameters, losses and errors of four separate runs (β < 0 too: EP's nudges are
    then (β, 0), and the paired factor must divide by their difference, −β)."""
    build, lr = MODELS[name]
    algorithms = [EP(beta=beta, lr=lr), BPTT(lr=[v / 2 for v in lr])] * 2
    models = []
    for seed in (0, 0, 1, 1):
        torch.manual_seed(seed)
        models.append(build(fast).to(device, D))
    assert all(torch.equal(p, q) for p, q in zip(models[0].parameters(), models[1].parameters()))  # shared init
    stacked = stack_members(models)
    paired = Paired(algorithms)
    g = torch.Generator().manual_seed(7)
    for _ in range(3):
        x = torch.rand(4, 6, 15, generator=g, dtype=D).to(device)
        y = stacked.target(torch.randint(0, 4, (4, 6), generator=g).to(device)).to(D)
        out = paired.train_step(stacked, x, y, T=15, K=5)
        outs = [a.train_step(m, xi, yi, T=15, K=5) for a, m, xi, yi in zip(algorithms, models, x, y)]
        for i in range(4):
            assert _close(out["loss"][i], outs[i]["loss"]) and out["error"][i] == outs[i]["error"], i
    for i, m in enumerate(models):
        for k, v in member_state(stacked, i).items():
            assert _close(v, m.state_dict()[k]), (i, k)
    # EP and BPTT moved the shared initial weights apart
    a, b = member_state(stacked, 0), member_state(stacked, 1)
    assert max((a[k] - b[k]).abs().max().item() for k in a) > 1e-4


def test_which_algorithms_can_pair():
    assert Paired.can_pair([EP(beta=0.5), BPTT(), EP(beta=0.5)])
    assert Paired.can_pair([BPTT(), BPTT()])
    assert not Paired.can_pair([EP(beta=0.5), EP(beta=0.2), BPTT()])  # the nudged phase is one pass

    class MyEP(EP):
        pass

    assert not Paired.can_pair([MyEP(beta=0.5), BPTT()])  # a subclass may change the step
    with pytest.raises(ValueError, match="different β"):
        Paired([EP(beta=0.5), EP(beta=0.2)])
    with pytest.raises(ValueError, match="got centered EP"):
        Paired([EP(beta=0.5, variant="centered"), BPTT()])
    with pytest.raises(ValueError, match="an optimizer with state"):
        Paired([EP(beta=0.5), BPTT(momentum=0.9)])


def test_paired_refuses_a_model_without_members():
    model = PNet(hidden=[5], input_size=3, output_size=2)
    with pytest.raises(ValueError, match="stacked model"):
        Paired([EP(beta=0.5, lr=[0.1, 0.1]), BPTT(lr=[0.1, 0.1])]).train_step(
            model, torch.rand(2, 3), torch.eye(2), T=3, K=1)


TRAIN = """
    name = "paired"
    [defaults]
    kind = "train"
    seeds = [0, 1]
    device = "cpu"
    dtype = "float64"
    dataset = {{ name = "blobs", input_size = 12, num_classes = 4, n_train = 120, n_test = 40 }}
    T = 12
    K = 4
    epochs = 2
    batch_size = 10
    batch_seeds = {batched}
    batch_algorithms = {batched}

    [[runs]]
    name = "p"
    model = {{ name = "p", input_size = 12, output_size = 4, hidden = [16, 8], activation = "sigmoid" }}
    algorithm = {{ lr = [0.1, 0.05, 0.02] }}
    grid.algorithm = [{{ name = "ep", beta = 0.3 }}, "bptt"]

    [[runs]]
    name = "eb"
    model = {{ name = "eb", input_size = 12, output_size = 4, hidden = [16], activation = "sigmoid", eps = 0.2, clip = true }}
    algorithm = {{ lr = [0.2, 0.1] }}
    grid.algorithm = [{{ name = "ep", beta = 0.5 }}, {{ name = "ep", beta = 0.2 }}, "bptt"]
"""


@pytest.mark.slow
def test_batched_algorithms_through_the_runner_equal_separate_runs(registry, suite_file, tmp_path):
    """P: EP and BPTT × 2 seeds as one model of 4 members. EB: two values of β cannot share a
    nudged phase, so its 6 runs are one group executed as three batches (one per algorithm)."""
    results = {}
    for batched in ("false", "true"):
        suite = load_suite(suite_file(TRAIN.format(batched=batched), name=f"{batched}.toml"), registry)
        runner = Runner(suite, registry, tmp_path / batched)
        groups = runner.groups(suite.runs)
        assert sorted(len(g) for g in groups) == ([4, 6] if batched == "true" else [1] * 10)
        outcomes = runner.execute(suite.runs)
        assert all(o.status == "done" for o in outcomes), [o.error for o in outcomes]
        results[batched] = {run.id: final_values(runner, run) for run in suite.runs}
        if batched == "true":
            p_run = next(r for r in suite.runs if r.name == "p")
            assert read_json(runner.store(p_run).dir / "environment.json")["batched_runs"] == 4
    assert results["true"].keys() == results["false"].keys()
    for rid, sep in results["false"].items():
        bat = results["true"][rid]
        assert bat["init_checksum"] == sep["init_checksum"], rid
        assert bat["final_checksum"] == pytest.approx(sep["final_checksum"], rel=1e-12), rid
        assert bat["test_error"] == sep["test_error"] and bat["train_error"] == sep["train_error"], rid
    inits = {}
    for rid, f in results["true"].items():
        inits.setdefault((rid.split("-")[0], rid.split("-s")[-1].split("-")[0]), set()).add(f["init_checksum"])
    assert all(len(v) == 1 for v in inits.values())  # EP and BPTT of one seed: the same initial weights
    assert len({f["final_checksum"] for f in results["true"].values()}) == 10  # and they really differ


def test_batch_algorithms_is_validated_and_changes_no_run_id(registry, suite_file):
    plain = load_suite(suite_file(TRAIN.format(batched="false"), name="a.toml"), registry)
    batched = load_suite(suite_file(TRAIN.format(batched="true"), name="b.toml"), registry)
    assert [r.id for r in plain.runs] == [r.id for r in batched.runs]
    bad = TRAIN.format(batched="false").replace("batch_algorithms = false", 'batch_algorithms = "yes"')
    with pytest.raises(SuiteError, match=r"defaults\.batch_algorithms.*bool"):
        load_suite(suite_file(bad, name="c.toml"), registry)
    grid = TRAIN.format(batched="false").replace('grid.algorithm = [{ name = "ep", beta = 0.3 }, "bptt"]',
                                                 'grid.batch_algorithms = [true, false]')
    with pytest.raises(SuiteError, match="cannot vary in a grid"):
        load_suite(suite_file(grid, name="d.toml"), registry)


def test_paired_step_replays_through_the_graph_wrapper():
    """The paired step captured and replayed (stand-in for a CUDA graph; the wrapper checks the
    replay against the eager step) trains as separate EP and BPTT runs."""
    from conftest import ReplayBackend
    from harness.run.acceleration import graphed_train_step

    build, lr = MODELS["P-2h"]
    algorithms = [EP(beta=0.4, lr=lr), BPTT(lr=lr)]
    torch.manual_seed(0)
    models = [build(True).to(D)]
    models.append(copy.deepcopy(models[0]))
    stacked = stack_members(models)
    backend = ReplayBackend()
    step = graphed_train_step(Paired(algorithms), stacked, T=15, K=5, backend=backend)
    g = torch.Generator().manual_seed(3)
    for _ in range(3):
        x = torch.rand(2, 6, 15, generator=g, dtype=D)
        y = stacked.target(torch.randint(0, 4, (2, 6), generator=g)).to(D)
        step(x, y)
        for a, m, xi, yi in zip(algorithms, models, x, y):
            a.train_step(m, xi, yi, T=15, K=5)
    assert step.graphed and step.replays == 2
    for i, m in enumerate(models):
        for k, v in member_state(stacked, i).items():
            assert _close(v, m.state_dict()[k]), (i, k)


DIVERGE = """
    name = "diverge"
    [defaults]
    kind = "train"
    seeds = [0, 1]
    device = "cpu"
    dtype = "float64"
    dataset = {{ name = "blobs", input_size = 12, num_classes = 4, n_train = 120, n_test = 40 }}
    T = 12
    K = 4
    epochs = 3
    batch_size = 10
    batch_seeds = true
    batch_algorithms = {algorithms}

    [[runs]]
    name = "p"
    model = {{ name = "p", input_size = 12, output_size = 4, hidden = [16, 8], activation = "sigmoid" }}
    algorithm = {{ lr = [0.1, 0.05, 0.02] }}
    grid.algorithm = [{{ name = "ep", beta = 0.3 }}, "bptt"]
"""
DIVERGE_BATCHES = 12  # n_train / batch_size: mini-batches per epoch


@pytest.fixture
def poison_ep_seed1_in_epoch3(poison_run):
    poison_run("-ep-s1-", after_batches=2 * DIVERGE_BATCHES + 1)  # the first mini-batch of epoch 3


@pytest.mark.parametrize("algorithms", ["false", "true"], ids=["seeds", "seeds+algorithms"])
def test_a_diverging_member_leaves_its_batch_going_on(registry, suite_file, tmp_path, algorithms,
                                                     poison_ep_seed1_in_epoch3):
    """One member of a batch blows up in epoch 3: it is recorded diverged with its separate run's
    message and curves; the others of its batch finish with their separate runs' results."""
    text = DIVERGE.format(algorithms=algorithms)
    separate = load_suite(suite_file(text.replace("batch_seeds = true", "batch_seeds = false")
                                     .replace("batch_algorithms = true", "batch_algorithms = false"),
                                     name="separate.toml"), registry)
    batched = load_suite(suite_file(text, name="batched.toml"), registry)
    runners = {"separate": Runner(separate, registry, tmp_path / "s"), "batched": Runner(batched, registry, tmp_path / "b")}
    assert sorted(map(len, runners["batched"].groups(batched.runs))) == ([4] if algorithms == "true" else [2, 2])
    outcomes = {k: {o.run.id: o for o in r.execute(r.suite.runs)} for k, r in runners.items()}
    status = {k: {rid: o.status for rid, o in v.items()} for k, v in outcomes.items()}
    assert status["batched"] == status["separate"]
    assert sorted(status["batched"].values()) == ["diverged", "done", "done", "done"]
    for run in batched.runs:
        sep, bat = (runners[k].store(run) for k in ("separate", "batched"))
        if status["batched"][run.id] == "diverged":
            assert "-ep-s1-" in run.id
            message = sep.status_record()["error"]
            assert message.startswith("parameter w.W23 is not finite after epoch 3 (run p-ep-s1-")
            assert bat.status_record()["error"] == message + " (the other runs of its batch went on)"
            curve = lambda store: [(c["epoch"], c["test_error"], c["train_error"])  # noqa: E731
                                   for c in store.metrics()["curves"]]
            assert curve(bat) == curve(sep) and [c[0] for c in curve(bat)] == [1, 2]
            epoch = lambda store: torch.load(store.checkpoint, weights_only=False)["state"]["epoch"]  # noqa: E731
            assert epoch(bat) == epoch(sep) == 2  # its last finite epoch, as a separate run keeps it
        else:
            s, b = final_values(runners["separate"], run), final_values(runners["batched"], run)
            assert b["final_checksum"] == pytest.approx(s["final_checksum"], rel=1e-12), run.id
            assert (b["test_error"], b["train_error"]) == (s["test_error"], s["train_error"]), run.id
