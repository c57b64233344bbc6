"""The ``speed`` run kind end to end through the harness (suite → runner → store → table), and
batched seeds through the runner: the same results as separate runs."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from conftest import final_values
from harness.cli.commands import main
from harness.results.store import read_json
from harness.run.runner import Runner
from harness.suite.load import SuiteError, load_suite

pytestmark = pytest.mark.usefixtures("one_thread")


SPEED = """
    name = "speed-test"
    [defaults]
    kind = "speed"
    device = "cpu"
    dataset = { name = "blobs", input_size = 12, num_classes = 4, n_train = 100, n_test = 20 }
    model = { name = "p", input_size = 12, output_size = 4, hidden = [16, 8], activation = "sigmoid" }
    T = 12
    K = 4
    batch_size = 5
    batches = 2
    warmup = 1
    repeats = 3
    threads = 1

    [[runs]]
    name = "P-2h"
    algorithm = { lr = [0.2, 0.1, 0.05] }
    grid.algorithm = [{ name = "ep", beta = 0.3 }, "bptt"]

    [tables.throughput]
    rows = ["name"]
    columns = ["algorithm", "metric"]
    metrics = ["samples_per_s", "generic_samples_per_s", "speedup"]
"""

TRAIN = """
    name = "batched"
    [defaults]
    kind = "train"
    seeds = [0, 1, 2]
    device = "cpu"
    dtype = "{dtype}"
    dataset = {{ name = "blobs", input_size = 12, num_classes = 4, n_train = 120, n_test = 40 }}
    T = 12
    K = 4
    epochs = 2
    batch_size = 10
    batch_seeds = {batched}

    [[runs]]
    name = "p"
    model = {{ name = "p", input_size = 12, output_size = 4, hidden = [16, 8], activation = "sigmoid" }}
    algorithm = {{ lr = [0.1, 0.05, 0.02] }}
    grid.algorithm = [{{ name = "ep", beta = 0.3 }}, "bptt"]

    [[runs]]
    name = "eb"
    model = {{ name = "eb", input_size = 12, output_size = 4, hidden = [16], activation = "sigmoid", eps = 0.2, clip = true }}
    algorithm = {{ name = "ep", beta = 0.5, lr = [0.4, 0.2] }}
"""


def _batched(runner, run):
    """How many runs ran together with ``run`` (environment.json's ``batched_runs``)."""
    return read_json(runner.store(run).dir / "environment.json")["batched_runs"]


@pytest.mark.slow
def test_speed_kind_end_to_end(registry, suite_file, tmp_path):
    path = suite_file(SPEED)
    suite = load_suite(path, registry)
    runner = Runner(suite, registry, tmp_path)
    threads = torch.get_num_threads()
    outcomes = runner.execute(suite.runs)
    assert torch.get_num_threads() == threads  # restored after each run
    assert [o.status for o in outcomes] == ["done", "done"], [o.error for o in outcomes]
    for run in suite.runs:
        f = final_values(runner, run)
        for key in ("samples_per_s", "generic_samples_per_s", "speedup", "seconds_per_epoch",
                    "generic_seconds_per_epoch", "peak_memory_mb", "ms_per_batch"):
            assert f[key] > 0, key
        assert f["speedup"] == pytest.approx(f["samples_per_s"] / f["generic_samples_per_s"])
        assert f["seconds_per_epoch"] == pytest.approx(60000 / f["samples_per_s"])
        assert f["max_rel_diff"] < 1e-5  # both paths, same weights and batches: the same parameters
        assert f["cuda_graph"] == 0.0 and f["torch_threads"] == 1.0
    result = CliRunner().invoke(main, ["table", str(path), "--results-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "P-2h" in result.output and "speedup" in result.output


@pytest.mark.slow
def test_speed_kind_times_batched_and_paired_runs(registry, suite_file, tmp_path, monkeypatch):
    """members = 2: every run also times 2 stacked seeds; EP runs also 2 EP + 2 BPTT paired."""
    path = suite_file(SPEED.replace("threads = 1", "threads = 1\n    members = 2"))
    suite = load_suite(path, registry)
    runner = Runner(suite, registry, tmp_path)
    stacked = []
    import bench_runs.speed as speed

    real = speed.stack_members
    monkeypatch.setattr(speed, "stack_members", lambda ms: stacked.append(len(ms)) or real(ms))
    outcomes = runner.execute(suite.runs)
    assert [o.status for o in outcomes] == ["done", "done"], [o.error for o in outcomes]
    assert stacked == [2, 4, 2]  # EP: 2 seeds, then 2 EP + 2 BPTT; BPTT: 2 seeds
    ep, bptt = (final_values(runner, run) for run in suite.runs)
    for f in (ep, bptt):
        assert f["seeds_speedup"] > 0
        assert f["seeds_samples_per_s"] == pytest.approx(f["seeds_speedup"] * 2 * f["samples_per_s"] / 2)
        assert f["max_rel_diff"] < 1e-5  # the extra paths leave the fast/generic check intact
    assert ep["paired_speedup"] > 0 and ep["paired_samples_per_s"] > 0
    assert "paired_speedup" not in bptt  # pairing is measured from the EP run


def test_speed_kind_rejects_members_it_cannot_stack(registry, suite_file, tmp_path, monkeypatch):
    from bench_models import PNet

    with pytest.raises(SuiteError, match=r"runs\[0\] \(P-2h\): members must be 0 \(not measured\) or at least 2, got 1"):
        load_suite(suite_file(SPEED.replace("threads = 1", "threads = 1\n    members = 1")), registry)
    monkeypatch.setattr(PNet, "supports_members", False)
    suite = load_suite(suite_file(SPEED.replace("threads = 1", "threads = 1\n    members = 2"), "b.toml"), registry)
    outcomes = Runner(suite, registry, tmp_path).execute(suite.runs[:1])
    assert outcomes[0].status == "failed"
    assert "members = 2: the model PNet cannot stack members; set members = 0" in outcomes[0].error


@pytest.mark.device
@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 5e-5)])
@pytest.mark.slow
def test_batched_seeds_equal_separate_runs(registry, suite_file, tmp_path, dtype, rtol, device):
    """Every run's errors and checksums, batched (one stacked model per configuration) vs separate.

    Learning rates are kept moderate: with lr = 0.4 this P net's EP training is chaotic (a 1e-15
    change of one weight grows to 1e-8 in two epochs, measured), and any reordering of a sum,
    batched or not, would show at that level."""
    results = {}
    for batched in ("false", "true"):
        text = TRAIN.format(dtype=dtype, batched=batched).replace('device = "cpu"', f'device = "{device}"')
        path = suite_file(text, name=f"{batched}.toml")
        suite = load_suite(path, registry)
        runner = Runner(suite, registry, tmp_path / batched)
        groups = runner.groups(suite.runs)
        assert len(groups) == (3 if batched == "true" else 9)
        outcomes = runner.execute(suite.runs)
        assert all(o.status == "done" for o in outcomes), [o.error for o in outcomes]
        results[batched] = {run.id: final_values(runner, run) for run in suite.runs}
        if batched == "true":
            assert _batched(runner, suite.runs[0]) == 3
    assert results["true"].keys() == results["false"].keys()
    for rid, sep in results["false"].items():
        bat = results["true"][rid]
        assert bat["init_checksum"] == sep["init_checksum"], rid  # the same initial weights
        assert bat["final_checksum"] == pytest.approx(sep["final_checksum"], rel=rtol), rid
        if dtype == "float64":
            assert bat["test_error"] == sep["test_error"] and bat["train_error"] == sep["train_error"], rid
    checks = {r["final_checksum"] for r in results["true"].values()}
    assert len(checks) == 9  # seeds and algorithms really differ


PCONV = TRAIN.format(dtype="float64", batched="BATCHED").split("[[runs]]")[0] + """
    [[runs]]
    name = "pconv"
    dataset = { name = "blobs", input_size = 64, num_classes = 4, n_train = 120, n_test = 40 }
    model = { name = "pconv", input_shape = [1, 8, 8], channels = [2, 3], kernel = 2, output_size = 4, activation = "tanh" }
    algorithm = { lr = [0.02, 0.01, 0.005] }
    grid.algorithm = [{ name = "ep", beta = 0.3 }, "bptt"]
    """


def _pconv_finals(registry, suite_file, tmp_path, monkeypatch, batched):
    """P-conv's runs (two conv layers), separate or batched; the number of models stacked."""
    import bench_runs.train as train_module
    from harness.api.model import stack_members

    stacked = []
    monkeypatch.setattr(train_module, "stack_members",
                        lambda models: stacked.append(len(models)) or stack_members(models))
    suite = load_suite(suite_file(PCONV.replace("BATCHED", batched), name=f"{batched}.toml"), registry)
    runner = Runner(suite, registry, tmp_path / batched)
    assert len(runner.groups(suite.runs)) == (2 if batched == "true" else 6)
    outcomes = runner.execute(suite.runs)
    assert all(o.status == "done" for o in outcomes), [o.error for o in outcomes]
    if batched == "true":
        assert _batched(runner, suite.runs[0]) == 3
    return {r.id: final_values(runner, r) for r in suite.runs}, stacked


@pytest.mark.slow
def test_batched_seeds_of_p_conv_run_as_one_stacked_model(registry, suite_file, tmp_path, monkeypatch):
    """P-conv stacks its seeds (grouped convolutions): one model per configuration, the results of
    separate runs (float64). The learning rates are small: with 2.5 times larger ones this net's EP
    training is chaotic on this data (a 1e-16 change of one weight of an unstacked model grows to
    1e-9 in its 24 steps, measured), and the rounding of grouped convolutions would show."""
    separate, none = _pconv_finals(registry, suite_file, tmp_path, monkeypatch, "false")
    batched, stacked = _pconv_finals(registry, suite_file, tmp_path, monkeypatch, "true")
    assert none == [] and stacked == [3, 3]  # EP and BPTT: three seeds each, as one model
    assert batched.keys() == separate.keys()
    for rid, sep in separate.items():
        bat = batched[rid]
        assert bat["init_checksum"] == sep["init_checksum"], rid
        assert bat["final_checksum"] == pytest.approx(sep["final_checksum"], rel=1e-12), rid
        assert bat["test_error"] == sep["test_error"] and bat["train_error"] == sep["train_error"], rid
    assert len({f["final_checksum"] for f in batched.values()}) == 6  # seeds and algorithms really differ


@pytest.mark.slow
def test_batched_seeds_of_a_model_without_members_run_one_after_another(registry, suite_file, tmp_path,
                                                                         monkeypatch):
    """A model that cannot stack members (here P-conv with ``supports_members`` switched off) runs a
    batched group's seeds one after another: exactly the separate runs' results."""
    from bench_models import PConvNet

    monkeypatch.setattr(PConvNet, "supports_members", False)
    finals = {}
    for batched in ("false", "true"):
        finals[batched], stacked = _pconv_finals(registry, suite_file, tmp_path, monkeypatch, batched)
        assert stacked == []
    assert finals["true"] == {k: {**v, "peak_memory_mb": finals["true"][k]["peak_memory_mb"],
                                  "seconds_per_epoch": finals["true"][k]["seconds_per_epoch"],
                                  "samples_per_s": finals["true"][k]["samples_per_s"]}
                              for k, v in finals["false"].items()}


def test_batched_seeds_resume_from_checkpoints(registry, suite_file, tmp_path, interrupt_ep):
    """Interrupted in epoch 2, a batched group resumes every member from its own checkpoint and ends
    where an uninterrupted batched run ends."""
    text = TRAIN.format(dtype="float64", batched="true").replace("epochs = 2", "epochs = 3")
    path = suite_file(text)
    suite = load_suite(path, registry)
    runs = [r for r in suite.runs if r.name == "eb"]
    whole = Runner(suite, registry, tmp_path / "whole")
    whole.execute(runs)
    expected = {r.id: final_values(whole, r) for r in runs}

    calls = interrupt_ep(18)  # 12 batches per epoch: in epoch 2
    runner = Runner(suite, registry, tmp_path / "resumed")
    with pytest.raises(KeyboardInterrupt):
        runner.execute(runs)
    assert all(runner.store(r).checkpoint.exists() for r in runs)
    calls["n"] = -10**9
    runner.execute(runs)
    assert calls["n"] == -10**9 + 24  # epochs 2 and 3, once for the three stacked seeds
    for r in runs:
        got = final_values(runner, r)
        for key in ("final_checksum", "test_error", "train_error"):
            assert got[key] == expected[r.id][key], (r.id, key)


@pytest.mark.slow
def test_the_compiled_path_is_timed_and_checked(registry, suite_file, tmp_path):
    """compiled = true: torch.compile of the whole step, timed in the same repetitions, its compile
    time apart, and its parameters equal to the fast path's after one repetition. A P net's EP step:
    its input weights' direction is one matrix product, which torch 2.13's inductor added without its
    coefficient (10x the step) until apply_update avoided the pattern."""
    import shutil

    if not (shutil.which("g++") or shutil.which("clang++")):
        pytest.skip("torch.compile's CPU backend needs a C++ compiler")
    suite = load_suite(suite_file("""
        [defaults]
        kind = "speed"
        device = "cpu"
        dataset = { name = "blobs", input_size = 6, num_classes = 3, n_train = 40, n_test = 10 }
        [[runs]]
        name = "eb"
        T = 6
        K = 2
        batches = 2
        repeats = 1
        compiled = true
        model = { name = "p", input_size = 6, output_size = 3, hidden = [5], activation = "sigmoid" }
        algorithm = { name = "ep", beta = 0.5, lr = [0.1, 0.1] }
    """), registry)
    runner = Runner(suite, registry, tmp_path)
    runner.execute(suite.runs)
    run = suite.runs[0]
    assert runner.store(run).status() == "done", (runner.store(run).dir / "error.txt").read_text()
    values = final_values(runner, run)
    assert values["compile_seconds"] > 0 and values["compiled_samples_per_s"] > 0
    assert values["compiled_max_rel_diff"] < 1e-5
