"""The ``gdu`` run kind through the real harness: suite → runner → store."""

from __future__ import annotations

import textwrap

import pytest
import torch

from conftest import run_suite_text
from harness.plugins import get_manager
from harness.run.runner import Runner
from harness.suite.load import SuiteError, load_suite

SUITE = textwrap.dedent("""
    name = "gdu-test"
    [defaults]
    kind = "gdu"
    dtype = "float64"
    device = "cpu"
    batch_size = 4

    [[runs]]
    name = "toy"
    T = 800
    K = 20
    model = { name = "toy", eps = 0.3 }
    dataset = { name = "random", n_train = 8, n_test = 2 }
    algorithm = { name = "ep", beta = 0.0001 }

    [[runs]]
    name = "p"
    T = 100
    K = 6
    keep_elements = 5
    model = { name = "p", hidden = [7, 6], input_size = 10, output_size = 5 }
    dataset = { name = "random", n_train = 8, n_test = 2 }
    metrics = ["sign", "relmse"]
""")
BAD_RUN = """
    [[runs]]
    name = "bad"
    T = 5
    K = 6
    model = { name = "toy" }
    dataset = { name = "random" }
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    _, suite, runner, outcomes = run_suite_text(tmp_path_factory.mktemp("gdu"), SUITE)
    return suite, runner, outcomes


def _final(runner, outcome):
    return runner.store(outcome.run).metrics()["final"]


def test_gdu_records_every_layer_and_metric(finished):
    suite, runner, outcomes = finished
    assert outcomes["toy"].status == "done", outcomes["toy"].error
    final = _final(runner, outcomes["toy"])
    [residual] = [r for r in final if r["metric"] == "residual"]
    assert residual["value"] < 1e-10  # settled by T − K, as Theorem 1 assumes
    final = [r for r in final if r["metric"] != "residual"]
    keys = {(r["metric"], r["what"], r["layer"]) for r in final}
    expected = {(m, "neurons", layer) for m in ("relmse", "sign") for layer in ("s0", "s1")}
    expected |= {(m, "weights", w) for m in ("relmse", "sign") for w in ("W1x", "W0x", "W01")}
    assert keys == expected
    assert len(final) == len(expected)
    for r in final:
        if r["metric"] == "relmse":
            assert r["value"] < 1e-3, r   # the theorem, through the whole pipeline
        else:
            assert r["value"] > 0.95, r


def test_gdu_saves_processes_and_samples_large_layers(finished):
    suite, runner, outcomes = finished
    art = torch.load(runner.store(outcomes["toy"].run).artifacts / "processes.pt", weights_only=False)
    assert art["K"] == 20 and art["algorithm"] == "ep" and art["baseline"] == "bptt"
    w = art["weights"]["W01"]
    assert w["shape"] == (5, 50) and w["candidate"].shape == (20, 250) and w["reference"].shape == (20, 250)
    assert w["candidate"].dtype == torch.float32  # kept for figures; metrics used full precision
    assert outcomes["p"].status == "done", outcomes["p"].error
    art = torch.load(runner.store(outcomes["p"].run).artifacts / "processes.pt", weights_only=False)
    w = art["weights"]["W12"]
    assert w["candidate"].shape == (6, 5) and len(w["index"]) == 5 and w["index"].max() < 6 * 7
    assert set(art["neurons"]) == {"s0", "s1", "s2"}
    assert set(art["weights"]) == {"W23", "W23.1", "W12", "W12.1", "W01", "W01.1"}
    metrics = {r["metric"] for r in _final(runner, outcomes["p"])}
    assert metrics == {"sign", "relmse", "residual"}


def test_gdu_rejects_k_above_t_when_the_suite_is_validated(tmp_path):
    """The run kind's own check (0 < K <= T) runs at validation: no run starts, the run is named."""
    path = tmp_path / "suite.toml"
    path.write_text(SUITE + textwrap.dedent(BAD_RUN))
    with pytest.raises(SuiteError, match=r"runs\[2\] \(bad\): .*K <= T"):
        load_suite(path, get_manager().registry)


def test_an_unsettled_first_phase_is_a_warning_in_the_status(tmp_path):
    text = SUITE.replace("T = 800\nK = 20", "T = 24\nK = 20")  # 4 free steps: far from settled
    assert text != SUITE
    path = tmp_path / "s.toml"
    path.write_text(text)
    suite = load_suite(path, get_manager().registry)
    runner = Runner(suite, get_manager().registry, tmp_path / "r")
    toy = next(r for r in suite.runs if r.name == "toy")
    runner.execute([toy])
    record = runner.store(toy).status_record()
    assert record["status"] == "done"
    [warning] = record["warnings"]
    assert warning.startswith("the first phase has not settled: max|F(s) − s| = ")
    assert "after T − K = 4 steps" in warning and "of the nudge β·scale = 3e-05" in warning


def test_a_false_claim_of_derives_from_phi_is_a_warning():
    from bench_models import ToyModel
    from bench_runs.one_batch import check_assumptions

    class Claims(ToyModel):  # Φ doubled: its gradient is twice the step, yet it claims F = ∂Φ/∂s
        def phi(self, x, state):
            return 2 * super().phi(x, state)

    class Ctx:
        warnings: list = []

        def warn(self, message):
            self.warnings.append(message)

    torch.manual_seed(0)
    x = torch.rand(3, 10, dtype=torch.float64)
    for model, expected in ((ToyModel().double(), 0), (Claims().double(), 1)):
        ctx = Ctx()
        ctx.warnings = []
        state = model.relax(x, model.init_state(x), 50)
        check_assumptions(ctx, model, x, state, residual=0.0, beta=0.01, T=50, K=10)
        assert len(ctx.warnings) == expected
    assert ctx.warnings[0].startswith("the model claims derives_from_phi = True, but its step differs from ∂Φ/∂s "
                                      "by 0.5 (relative)")
