"""The ``relaxation`` run kind through the real harness (suite → runner → store → table): synchronous
against asynchronous relaxation on tiny float64 nets, in seconds."""

from __future__ import annotations

import textwrap

import pytest
import torch
from click.testing import CliRunner

from bench_runs.relaxation import SETTLED, update_from
from conftest import run_suite_text
from harness.api.relaxation import relax
from harness.cli.commands import main
from harness.plugins import get_manager
from harness.suite.load import SuiteError, load_suite

pytestmark = pytest.mark.usefixtures("one_thread")

TOL = 1e-10
SUITE = textwrap.dedent(f"""
    name = "relaxation-test"
    [defaults]
    kind = "relaxation"
    dtype = "float64"
    device = "cpu"
    batch_size = 5
    tol = {TOL}
    max_sweeps = 5000
    repeats = 2
    K = 10
    dataset = {{ name = "random", input_shape = [12], num_classes = 4, n_train = 5, n_test = 2 }}
    algorithm = {{ name = "ep", beta = 0.001 }}

    [[runs]]
    name = "P-2h"
    model = {{ name = "p", hidden = [16, 16], input_size = 12, output_size = 4, activation = "tanh", init = "torch" }}

    [[runs]]
    name = "EB-2h"
    model = {{ name = "eb", hidden = [16, 16], input_size = 12, output_size = 4, activation = "tanh", eps = 0.2, init = "torch" }}

    [[runs]]
    name = "P-2h-3-sweeps"
    max_sweeps = 3
    model = {{ name = "p", hidden = [16, 16], input_size = 12, output_size = 4, activation = "tanh", init = "torch" }}

    [tables.relaxation]
    rows = ["name", "schedule"]
    columns = ["metric"]
    metrics = ["sweeps", "step_evaluations", "residual", "seconds", "time_ratio", "update_difference"]
    format = ".3g"
""")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    path, _, runner, outcomes = run_suite_text(tmp_path_factory.mktemp("relaxation"), SUITE)
    for name, o in outcomes.items():
        assert o.status == "done", (name, o.error)
    return path, runner, outcomes


def _values(runner, outcome) -> dict[tuple[str, str], float]:
    """(metric, schedule) -> value of a finished run."""
    return {(r["metric"], r["schedule"]): r["value"] for r in runner.store(outcome.run).metrics()["final"]}


def test_both_schedules_settle_on_a_p_net_and_async_needs_half_the_sweeps(finished):
    _, runner, outcomes = finished
    v = _values(runner, outcomes["P-2h"])
    for schedule in ("sync", "async"):
        assert v["settled", schedule] == 1.0
        # the stop rule bounds the last sweep's move by tol; the residual measured after it stays within
        # SETTLED·tol (measured: 1.2e-10 sync, 7.9e-11 async at tol 1e-10)
        assert v["residual", schedule] <= SETTLED * TOL
        assert v["seconds", schedule] > 0
    assert v["step_evaluations", "sync"] == v["sweeps", "sync"] + 1
    assert v["step_evaluations", "async"] == 2 * v["sweeps", "async"] + 1
    # Synchronously, the even and the odd layers of a P net form two chains that do not interact (the
    # paper's Appendix C.6); an asynchronous sweep is one step of each, so it needs half the sweeps
    # (measured: 94 against 190; P-2h on MNIST, 795 against 1,689). ±10 % for the last sweeps' rounding.
    assert 0.45 <= v["sweeps", "async"] / v["sweeps", "sync"] <= 0.55, v
    assert v["time_ratio", "async"] > 0


@pytest.mark.parametrize("net", ["P-2h", "EB-2h"])
def test_the_update_from_the_same_fixed_point_agrees(finished, net):
    """Both schedules reach the same fixed point (to about tol), and EP's update from either agrees to
    far better than 1e-6 (relative; measured: 1e-8 for P, 3e-7 for EB at β = 1e-3)."""
    _, runner, outcomes = finished
    v = _values(runner, outcomes[net])
    assert v["settled", "sync"] == v["settled", "async"] == 1.0
    assert v["state_difference", "async"] < 1e-8
    assert v["update_difference", "async"] < 1e-6


def test_a_schedule_that_does_not_settle_is_recorded_and_warned(finished):
    _, runner, outcomes = finished
    outcome = outcomes["P-2h-3-sweeps"]
    v = _values(runner, outcome)
    assert v["sweeps", "sync"] == v["sweeps", "async"] == 3
    assert v["settled", "sync"] == v["settled", "async"] == 0.0
    assert ("update_difference", "async") not in v  # no update is compared from points that are not fixed
    warnings = runner.store(outcome.run).status_record()["warnings"]
    assert len(warnings) == 2 and all("relaxation has not settled" in w for w in warnings)
    assert "after 3 sweeps" in warnings[0]


def test_the_table_shows_both_schedules(finished):
    path, runner, _ = finished
    out = CliRunner().invoke(main, ["table", str(path), "--results-dir", str(runner.results_dir)],
                             catch_exceptions=False)
    assert out.exit_code == 0, out.output
    rows = [line for line in out.output.splitlines() if line.startswith("| P-2h ")]
    assert [r.split("|")[2].strip() for r in rows] == ["sync", "async"]


def test_the_update_from_a_fixed_point_is_ep_s_direction(registry):
    """The kind's update through the algorithm contract (processes from the fixed point, T = K, summed)
    equals EP's direction from it divided by β·batch, as results/relaxation/measure.py computes it."""
    torch.manual_seed(0)
    model = registry.get("model", "p").build({"hidden": [8, 8], "input_size": 6, "output_size": 3,
                                              "activation": "tanh", "init": "torch"}).double()
    x = torch.rand(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.nn.functional.one_hot(torch.arange(4) % 3, 3).double()
    fixed = relax(model, x, model.init_state(x), max_steps=20000, tol=1e-13, schedule="async").state
    ep = registry.get("algorithm", "ep").build({"beta": 1e-3})
    mine = update_from(ep, model, x, y, fixed, K=10)
    direction = ep.direction(model, x, fixed, y, 10)
    for group, tensors in direction.items():
        for i, d in enumerate(tensors):
            u = mine[f"{group}.{i}"]
            assert torch.allclose(u, d / (1e-3 * model.nudge_scale * 4), rtol=1e-6, atol=1e-12), group
    assert model.init_state(x)[0].abs().max() == 0  # the model's own initial state is back


@pytest.mark.parametrize("setting, message", [
    ("tol = -1e-8", r"runs\[3\] \(bad\)\.tol: -1e-08 is out of range"),
    ("tol = 0", r"runs\[3\] \(bad\): tol must be positive"),
    ("max_sweeps = 0", r"runs\[3\] \(bad\)\.max_sweeps: 0 is out of range"),
    ("repeats = 0", r"runs\[3\] \(bad\)\.repeats: 0 is out of range"),
])
def test_a_bad_parameter_is_refused_naming_it(tmp_path, setting, message):
    path = tmp_path / "suite.toml"
    bad = f'\n[[runs]]\nname = "bad"\n{setting}\nmodel = {{ name = "p", hidden = [4], input_size = 12, output_size = 4 }}\n'
    path.write_text(SUITE.split("[tables.")[0] + bad)
    with pytest.raises(SuiteError, match=message):
        load_suite(path, get_manager().registry)
