"""The training run kind: determinism, shared initial weights, checkpoint resume."""

import re

import pytest
import torch
from click.testing import CliRunner

from conftest import BLOBS_TRAIN, final_values
from harness.api.executor import RunResult
from harness.cli.commands import main
from harness.results.store import read_json, write_json
from harness.run.runner import Runner
from harness.suite.load import load_suite

SUITE = BLOBS_TRAIN + """

    [[runs]]
    name = "p"
    model = { name = "p", input_size = 12, output_size = 4, hidden = [16], activation = "sigmoid" }
    algorithm = { lr = [0.4, 0.2] }
    grid.algorithm = [{ name = "ep", beta = 0.2 }, "bptt"]

    [[runs]]
    name = "eb"
    model = { name = "eb", input_size = 12, output_size = 4, hidden = [16], activation = "sigmoid", eps = 0.2, clip = true }
    algorithm = { name = "ep", beta = 0.5, lr = [0.4, 0.2] }
"""


def run_all(registry, path, results, runs=None):
    suite = load_suite(path, registry)
    runner = Runner(suite, registry, results)
    runner.execute(runs or suite.runs)
    return suite, runner


@pytest.mark.device
def test_training_learns_and_is_deterministic(registry, suite_file, tmp_path, device):
    path = suite_file(SUITE.replace('device = "cpu"', f'device = "{device}"'))
    suite, r1 = run_all(registry, path, tmp_path / "a")
    _, r2 = run_all(registry, path, tmp_path / "b")
    for run in suite.runs:
        assert r1.store(run).status() == "done", (r1.store(run).dir / "error.txt").read_text()
        a, b = final_values(r1, run), final_values(r2, run)
        assert a["final_checksum"] == b["final_checksum"] and a["test_error"] == b["test_error"]
        assert a["test_error"] < 30.0  # chance is 75 % on 4 classes
        curves = read_json(r1.store(run).dir / "metrics.json")["curves"]
        assert [c["epoch"] for c in curves] == [1, 2, 3] and all(c["samples_per_s"] > 0 for c in curves)


def test_ep_and_bptt_share_initial_weights(registry, suite_file, tmp_path):
    suite, runner = run_all(registry, suite_file(SUITE), tmp_path)
    ep, bptt = [r for r in suite.runs if r.name == "p"]
    assert final_values(runner, ep)["init_checksum"] == final_values(runner, bptt)["init_checksum"]
    assert final_values(runner, ep)["final_checksum"] != final_values(runner, bptt)["final_checksum"]


SCELLIER_WARM = 'warm_start = true, warm_from = "second_phase", warm_reset = "epoch", zero_phase = true'


@pytest.mark.parametrize("ep_options", ["", SCELLIER_WARM], ids=["paper", "scellier-warm-start"])
def test_checkpoint_resume_equals_uninterrupted(registry, suite_file, tmp_path, interrupt_ep, ep_options):
    """Stopped in epoch 2 and resumed from epoch 1's checkpoint, a run ends exactly as an uninterrupted one;
    also with Scellier et al.'s warm start, whose state a new epoch drops."""
    text = SUITE.replace('{ name = "ep", beta = 0.2 }', '{ name = "ep", beta = 0.2' + (f", {ep_options}" if ep_options else "") + " }")
    path = suite_file(text)
    suite, whole = run_all(registry, path, tmp_path / "whole")
    run = suite.runs[0]
    expected = final_values(whole, run)

    calls = interrupt_ep(30)  # 20 batches per epoch: stop in the middle of epoch 2
    runner = Runner(suite, registry, tmp_path / "resumed")
    with pytest.raises(KeyboardInterrupt):
        runner.execute([run])
    assert runner.store(run).status() == "interrupted" and runner.store(run).checkpoint.exists()
    status = CliRunner().invoke(main, ["status", str(path), "--results-dir", str(tmp_path / "resumed")]).output
    assert f"interrupted {run.id}" in status and "checkpoint: after epoch 1 of 3, " in status  # where it resumes
    assert " more at that pace, saved " in status  # 1 of 3 epochs done: the rest estimated
    calls["n"] = -10**9  # no more interruptions
    (outcome,) = runner.execute([run])
    got = final_values(runner, run)
    assert calls["n"] == -10**9 + 40  # epochs 2 and 3 only: epoch 1 came from the checkpoint
    assert outcome.resumed and RunResult.of(outcome).resumed  # executors' pace leaves it out
    for key in ("final_checksum", "test_error", "train_error"):
        assert got[key] == expected[key], key
    assert not runner.store(run).checkpoint.exists()  # removed once the run is done
    assert not runner.store(run).checkpoint_note_path.exists() and runner.store(run).checkpoint_note() is None
    # the run's seconds are its whole wall time: the interrupted invocation's part comes from the checkpoint
    record = runner.store(run).status_record()
    earlier, this = record["resumed"]["earlier_seconds"], record["resumed"]["this_invocation"]
    assert earlier > 0 and this > 0 and record["seconds"] == pytest.approx(earlier + this, abs=2e-3)
    # environment.json keeps the interrupted invocation's environment: what trained epoch 1
    env = read_json(runner.store(run).dir / "environment.json")
    assert [e["until"] for e in env["earlier"]] == ["after epoch 1 of 3"]
    assert env["earlier"][0]["git_commit"] == env["git_commit"] and "until" not in env


def interrupted_in_epoch_2(registry, suite_file, tmp_path, interrupt_ep):
    """SUITE's first run stopped in epoch 2 (its epoch-1 checkpoint saved): the run, its runner and the
    interruption's call counter (set ``calls["n"] = -10**9`` before resuming)."""
    suite = load_suite(suite_file(SUITE), registry)
    run = suite.runs[0]
    calls = interrupt_ep(30)  # 20 batches per epoch
    runner = Runner(suite, registry, tmp_path / "r")
    with pytest.raises(KeyboardInterrupt):
        runner.execute([run])
    return run, runner, calls


def test_a_checkpoint_saved_before_environments_were_kept_resumes_with_the_replaced_environment(
        registry, suite_file, tmp_path, interrupt_ep):
    """An older checkpoint (no "environments" inside): the resumed run's environment.json lists, as the
    invocation that trained the part resumed, the environment.json it replaced, marked as not recorded."""
    run, runner, calls = interrupted_in_epoch_2(registry, suite_file, tmp_path, interrupt_ep)
    store = runner.store(run)
    saved = torch.load(store.checkpoint, weights_only=False)
    assert [e["until"] for e in saved.pop("environments")] == ["after epoch 1 of 3"]
    torch.save(saved, store.checkpoint)
    env = read_json(store.dir / "environment.json")
    write_json(store.dir / "environment.json", {**env, "torch_threads": 99})  # as the old invocation wrote it
    calls["n"] = -10**9
    runner.execute([run])
    assert store.status_record()["resumed"]
    earlier = read_json(store.dir / "environment.json")["earlier"]
    assert len(earlier) == 1 and earlier[0]["torch_threads"] == 99 and "not recorded" in earlier[0]["until"]


@pytest.mark.parametrize("old_checkpoint", [None, "with its note", "without a note"])
def test_bench_status_estimates_the_rest_at_the_pace_of_the_invocation_that_saved_the_checkpoint(
        registry, suite_file, tmp_path, interrupt_ep, old_checkpoint):
    """An earlier invocation that took 10⁶ s for epoch 1 (a paused process, a slower machine) counts in the
    run's seconds but not in the estimate of the rest, which this invocation's pace gives; an older
    checkpoint (no "done" inside) takes it from its note, and without one keeps the whole run's pace."""
    run, runner, calls = interrupted_in_epoch_2(registry, suite_file, tmp_path, interrupt_ep)
    store = runner.store(run)
    saved = torch.load(store.checkpoint, weights_only=False)
    saved["elapsed"] = 1e6
    if old_checkpoint:
        del saved["done"]
    torch.save(saved, store.checkpoint)
    note = read_json(store.checkpoint_note_path)
    if old_checkpoint == "without a note":
        store.checkpoint_note_path.unlink()
    else:  # the note describes the checkpoint as edited here
        write_json(store.checkpoint_note_path, {**note, "bytes": store.checkpoint.stat().st_size})
    calls["n"] = 0  # the resumed run stops again in epoch 3, after saving epoch 2
    with pytest.raises(KeyboardInterrupt):
        runner.execute([run])
    note = store.checkpoint_note()
    assert note.startswith("after epoch 2 of 3, 277.8 h of the run so far, "), note
    if old_checkpoint == "without a note":  # 1e6 s for 2/3 of the run
        assert "about 138.9 h more at that pace, saved " in note, note
    else:  # this invocation's seconds: minutes at most on any machine, never the 1e6 s of the edited epoch
        assert re.search(r", (under a minute|about \d+ min) more at that pace, saved ", note), note


@pytest.mark.parametrize("old_checkpoint", [False, True])
def test_a_resumed_run_keeps_the_warnings_of_its_earlier_invocations(
        registry, suite_file, tmp_path, interrupt_ep, monkeypatch, old_checkpoint):
    """A warning of epoch 1 (here: every epoch counts as unsettled) stays in status.json after the run is
    resumed in epoch 2, beside the resumed invocation's own; from an older checkpoint (no "warnings"
    inside), it comes from the status.json the resume replaced."""
    import bench_runs.train as train_module

    monkeypatch.setattr(train_module, "UNSETTLED_WARN", -1.0)
    run, runner, calls = interrupted_in_epoch_2(registry, suite_file, tmp_path, interrupt_ep)
    store = runner.store(run)
    [first] = store.status_record()["warnings"]
    assert "after epoch 1" in first
    if old_checkpoint:
        saved = torch.load(store.checkpoint, weights_only=False)
        assert saved.pop("warnings") == [first]
        torch.save(saved, store.checkpoint)
    else:  # the worker died without a word: only the checkpoint holds the warning
        write_json(store.dir / "status.json", {"status": "running", "started": "T"})
    calls["n"] = -10**9
    runner.execute([run])
    warned = store.status_record()["warnings"]
    assert warned[0] == first and len(warned) == 2 and "after epoch 2" in warned[1], warned


def test_divergence_is_reported(registry, suite_file, tmp_path, poison_run):
    poison_run("p-ep-s0-", after_batches=30)  # in epoch 2 (20 mini-batches per epoch)
    suite, runner = run_all(registry, suite_file(SUITE), tmp_path)
    status = runner.store(suite.runs[0]).status_record()
    assert suite.runs[0].id.startswith("p-ep-s0-")
    assert status["status"] == "diverged"
    assert status["error"].startswith(f"parameter w.W12 is not finite after epoch 2 (run {suite.runs[0].id}); "
                                      "lower the learning rates or β")
    assert [c["epoch"] for c in runner.store(suite.runs[0]).metrics()["curves"]] == [1]
    assert {runner.store(r).status() for r in suite.runs[1:]} == {"done"}


def test_unpredicted_classes_counts_a_dead_output_unit():
    """A hand-built net predicts every class (one-hot input c switches on hidden unit c, then
    output unit c); with output unit 2 pushed far down it predicts class 2 for no sample: one
    unpredicted class, and exactly its quarter of the samples wrong. Also per stacked member."""
    import torch

    from bench_models import PNet
    from bench_runs.train import error_and_unpredicted
    from harness.api.model import stack_members

    def net(dead: bool):
        m = PNet(hidden=[4], input_size=4, output_size=4, activation="sigmoid")
        with torch.no_grad():
            for p in m.w.values():
                p.copy_(3 * torch.eye(4))
            for b in m.b.values():
                b.fill_(-1.5)
            if dead:
                m.b["s0"][2] = -1e3  # σ(−1e3 + …) = 0: never the largest output
        return m

    x, labels = torch.eye(4).repeat(15, 1), torch.arange(60) % 4
    assert error_and_unpredicted(net(False), x, labels, 8, 25) == ([0.0], [0])
    assert error_and_unpredicted(net(True), x, labels, 8, 25) == ([25.0], [1])
    assert error_and_unpredicted(stack_members([net(True), net(False)]), x, labels, 8, 25) == ([25.0, 0.0], [1, 0])


def test_unpredicted_classes_is_recorded(registry, suite_file, tmp_path):
    suite, runner = run_all(registry, suite_file(SUITE), tmp_path)
    for run in suite.runs:
        got = final_values(runner, run)
        curve = runner.store(run).metrics()["curves"]
        assert got["unpredicted_classes"] == curve[-1]["unpredicted_classes"] and len(curve) == 3
        assert got["unpredicted_classes"] in range(0, 5)


def test_without_train_evaluation_no_train_error_is_recorded(registry, suite_file, tmp_path):
    """eval_train = false skips the pass over the training set: no train error in the curves or the
    final values (not a NaN placeholder), the same test error as a run that evaluates both."""
    path = suite_file(SUITE.replace("epochs = 3", "epochs = 2"))
    suite, full = run_all(registry, path, tmp_path / "full")
    skip = suite_file(SUITE.replace("epochs = 3", "epochs = 2\n    eval_train = false"), "skip.toml")
    ssuite, skipped = run_all(registry, skip, tmp_path / "skip")
    for run, srun in zip(suite.runs, ssuite.runs):
        got = skipped.store(srun).metrics()
        assert all("train_error" not in c for c in got["curves"]) and "train_error" not in final_values(skipped, srun)
        assert [c["test_error"] for c in got["curves"]] == \
            [c["test_error"] for c in full.store(run).metrics()["curves"]]


def test_when_the_step_is_compiled():
    """compile = "auto": on a CPU, on the fast path, in runs long enough to pay back the compilation,
    for models whose compile_pays is True (EB nets) or names the run's algorithm (P-1h: EP; P-conv:
    BPTT; where the speed suite measured it faster); "on" and "off" decide alone."""
    from bench_models import EBNet, PNet
    from bench_models.conv import PConvNet
    from bench_runs.train import AUTO_COMPILE_STEPS, Train

    eb, p, cpu = EBNet(hidden=[5], input_size=4, output_size=3), PNet(hidden=[5], input_size=4, output_size=3), \
        torch.device("cpu")
    assert Train.compiles("auto", eb, cpu, AUTO_COMPILE_STEPS, "bptt")
    assert Train.compiles("auto", EBNet(hidden=[5, 5], input_size=4, output_size=3), cpu, 10**6, "ep")
    assert not Train.compiles("auto", eb, cpu, AUTO_COMPILE_STEPS - 1, "ep")
    assert not Train.compiles("auto", eb, torch.device("cuda"), 10**6, "ep")  # there: the CUDA graph
    assert Train.compiles("auto", p, cpu, 10**6, "ep") and not Train.compiles("auto", p, cpu, 10**6, "bptt")
    assert not Train.compiles("auto", p, cpu, 10**6, None)  # EP and BPTT paired in one model
    assert not Train.compiles("auto", PNet(hidden=[5, 5], input_size=4, output_size=3), cpu, 10**6, "ep")
    conv = PConvNet(input_shape=[1, 16, 16], channels=[2, 3])
    assert Train.compiles("auto", conv, cpu, 10**6, "bptt") and not Train.compiles("auto", conv, cpu, 10**6, "ep")
    assert Train.compiles("on", p, cpu, 1, "bptt") and not Train.compiles("off", eb, cpu, 10**6, "ep")
    eb.fast = False
    assert not Train.compiles("auto", eb, cpu, 10**6, "ep")


def _eb_on_and_off(registry, suite_file, tmp_path, device="cpu"):
    """One epoch of the "eb" run with compile = "on" and "off": final values and status.json by mode."""
    text = SUITE.replace("epochs = 3", "epochs = 1")
    finals, status = {}, {}
    for mode in ("on", "off"):
        suite = load_suite(suite_file(text.replace('device = "cpu"', f'device = "{device}"\n    compile = "{mode}"'),
                                      name=f"{mode}.toml"), registry)
        run = next(r for r in suite.runs if r.name == "eb")
        runner = Runner(suite, registry, tmp_path / mode)
        runner.execute([run])
        finals[mode], status[mode] = final_values(runner, run), read_json(runner.store(run).dir / "status.json")
    return finals, status


@pytest.mark.device
@pytest.mark.slow
def test_a_compiled_training_run_equals_the_eager_one(registry, suite_file, tmp_path, device):
    """compile = "on" on an EB net: the compiled step passes its first-use check (compiled_step = 1) and
    the run ends where the eager run ends (on CUDA: the CUDA-graph run), up to float32 rounding."""
    import shutil

    if device == "cpu" and not (shutil.which("g++") or shutil.which("clang++")):
        pytest.skip("torch.compile's CPU backend needs a C++ compiler")
    finals, status = _eb_on_and_off(registry, suite_file, tmp_path, device)
    assert status["on"]["status"] == "done" and status["off"]["status"] == "done"
    assert finals["on"]["compiled_step"] == 1.0 and finals["off"]["compiled_step"] == 0.0
    assert finals["on"]["final_checksum"] == pytest.approx(finals["off"]["final_checksum"], rel=1e-4)
    # the compilation is recorded apart from the epoch's time, and only where there is one
    assert finals["on"]["first_step_seconds"] > 0
    if device == "cpu":
        assert "first_step_seconds" not in finals["off"]
    else:  # on CUDA the step without compile is a CUDA graph, captured and checked at its first call
        assert finals["off"]["cuda_graph"] == 1.0 and finals["on"]["cuda_graph"] == 0.0


def test_a_compiled_step_that_differs_runs_eagerly_and_says_so(registry, suite_file, tmp_path, monkeypatch):
    """compile = "on", and the compiled step differs from the eager one at first use (a stand-in
    backend whose replay does something else): the run trains eagerly to the eager run's end, records
    compiled_step = 0, and keeps the reason in status.json (what `bench status` shows), not only on stderr."""
    import bench_runs.train as train
    from conftest import ReplayBackend
    from harness.run.acceleration import GraphedStep

    def broken(algorithm, model, *, T, K, warn=None):
        return GraphedStep(lambda x, y: algorithm.train_step(model, x, y, T=T, K=K), model,
                           backend=ReplayBackend(broken=True), warn=warn)

    monkeypatch.setattr(train, "compiled_train_step", broken)
    finals, status = _eb_on_and_off(registry, suite_file, tmp_path)
    assert status["on"]["status"] == "done" and finals["on"]["compiled_step"] == 0.0
    assert any("running eagerly" in w and "differs from the eager step" in w for w in status["on"]["warnings"]), \
        status["on"]
    assert not any("running eagerly" in w for w in status["off"].get("warnings", []))
    assert finals["on"]["final_checksum"] == finals["off"]["final_checksum"]


def test_a_run_whose_first_step_changes_nothing_is_flagged(registry, suite_file, tmp_path):
    """An exactly zero first update (here: learning rates of zero, the same on every machine; in Table 1:
    P-conv's BPTT at the Glorot init, every output unit saturated by the hard sigmoid) is a warning in
    status.json, for that run only, and the run still ends."""
    text = SUITE.replace("epochs = 3", "epochs = 1").replace(
        'algorithm = { name = "ep", beta = 0.5, lr = [0.4, 0.2] }', 'algorithm = { name = "ep", beta = 0.5, lr = [0.0, 0.0] }')
    suite, runner = run_all(registry, suite_file(text), tmp_path)
    status = {r.name + "-" + r.slots["algorithm"]["name"]: read_json(runner.store(r).dir / "status.json") for r in suite.runs}
    assert all(s["status"] == "done" for s in status.values()), status
    assert any("first training step changed no parameter" in w for w in status["eb-ep"].get("warnings", [])), status
    assert not any("first training step" in w for k in ("p-ep", "p-bptt") for w in status[k].get("warnings", [])), status


def _two_unit_net(coupling: float):
    """A P net of one output and one hidden unit, input weight 0, biases 10 and the coupling between
    them ``coupling``: at −20 (mutual inhibition) the synchronous step from zero alternates between
    (1, 1) and (0, 0) forever, a 2-cycle; at 0 each unit settles on σ(10) in one step."""
    from bench_models import PNet

    net = PNet(hidden=[1], input_size=1, output_size=1, activation="sigmoid")
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.w.W01.fill_(coupling)
        net.b.s0.fill_(10.0)
        net.b.s1.fill_(10.0)
    return net


def test_unsettled_share_sees_a_two_cycle_and_a_fixed_point():
    from bench_runs.settle import unsettled_share
    from harness.api.model import stack_members

    x = torch.zeros(4, 1)
    cycling, settling = _two_unit_net(-20.0), _two_unit_net(0.0)
    state = cycling.relax(x, cycling.init_state(x), 30)
    assert torch.equal(cycling.relax(x, state, 2)[0], state[0]) and not torch.equal(cycling.relax(x, state, 1)[0], state[0])
    assert unsettled_share(cycling, x, 30) == [100.0]
    assert unsettled_share(settling, x, 30) == [0.0]
    assert unsettled_share(stack_members([cycling, settling]), x, 30) == [100.0, 0.0]  # per member


def test_an_unsettled_free_phase_warns_the_fixed_point_algorithms_only(registry, suite_file, tmp_path, monkeypatch):
    """``unsettled`` is in every run's curves and ``unsettled_at_init`` in its values; a run whose
    algorithm assumes a fixed point (EP) warns once when an epoch ends above 1 % unsettled (forced here:
    50 % at the initial weights, which only is recorded, then 0 % and 2 % and 3 % after the epochs);
    BPTT does not warn; and measuring it changes no result."""
    import bench_runs.train as train

    shares = []

    def fake(model, x, T):
        return [shares.pop(0)] * max(1, model.members)

    monkeypatch.setattr(train, "unsettled_share", fake)  # the name train.py calls
    suite = load_suite(suite_file(SUITE), registry)
    ep, bptt = [r for r in suite.runs if r.name == "p"]
    runner = Runner(suite, registry, tmp_path)
    for run in (ep, bptt):
        shares[:] = [50.0, 0.0, 2.0, 3.0]
        runner.execute([run])
        assert [c["unsettled"] for c in read_json(runner.store(run).dir / "metrics.json")["curves"]] == [0.0, 2.0, 3.0]
        assert final_values(runner, run)["unsettled_at_init"] == 50.0 and final_values(runner, run)["unsettled"] == 3.0
    status = read_json(runner.store(ep).dir / "status.json")
    assert status["status"] == "done" and status.get("warnings") == [
        train.unsettled_warning(2.0, 20, 100, "after epoch 2")], status
    assert "warnings" not in read_json(runner.store(bptt).dir / "status.json")

    # the measurement touches nothing the training uses: with it, the run ends on the same weights
    monkeypatch.undo()
    measured = Runner(suite, registry, tmp_path / "measured")
    measured.execute([ep])
    assert final_values(measured, ep)["final_checksum"] == final_values(runner, ep)["final_checksum"]
    assert final_values(measured, ep)["unsettled_at_init"] not in (50.0, None)


def test_a_free_phase_with_its_own_tolerance_is_recorded_per_epoch(registry, suite_file, tmp_path):
    """EP relaxing to a tolerance (issue "Beyond 2019"): each epoch records its free phases' mean sweeps
    and worst residual, below the tolerance where every phase settled within T; the paper's T steps record
    neither (nothing was measured)."""
    path = suite_file("""
        name = "tol"
        [defaults]
        kind = "train"
        seeds = [0, 1]
        batch_seeds = true
        device = "cpu"
        dtype = "float64"
        epochs = 2
        T = 400
        K = 5
        dataset = { name = "blobs", input_size = 12, num_classes = 4, n_train = 40, n_test = 20 }
        model = { name = "p", input_size = 12, output_size = 4, hidden = [16, 8], activation = "sigmoid" }

        [[runs]]
        name = "async"
        algorithm = { name = "ep", beta = 0.2, lr = [0.1, 0.1, 0.1], schedule = "async", tol = 1e-8 }

        [[runs]]
        name = "paper"
        algorithm = { name = "ep", beta = 0.2, lr = [0.1, 0.1, 0.1] }
    """)
    suite, runner = run_all(registry, path, tmp_path / "r")
    for run in suite.runs:
        store = runner.store(run)
        assert store.status() == "done", (store.dir / "error.txt").read_text()
        curves = store.metrics()["curves"]
        final = final_values(runner, run)
        if run.name == "async":
            assert [sorted(k for k in c if k.startswith("free_")) for c in curves] == [["free_residual", "free_sweeps"]] * 2
            assert all(1 <= c["free_sweeps"] < 400 and c["free_residual"] < 1e-7 for c in curves), curves
            assert final["free_sweeps"] == curves[-1]["free_sweeps"]
        else:
            assert not any(k.startswith("free_") for c in curves for k in c) and "free_sweeps" not in final


def test_the_train_kind_tells_a_schedule_each_epoch(registry, suite_file, tmp_path, monkeypatch):
    """A cosine lr_schedule moves per epoch: the train kind calls start_epoch(epoch, epochs) before each."""
    from harness.api.optimizer import Update

    calls = []
    original = Update.start_epoch
    monkeypatch.setattr(Update, "start_epoch", lambda self, e, n: (calls.append((e, n)), original(self, e, n)))
    path = suite_file(SUITE.replace('grid.algorithm = [{ name = "ep", beta = 0.2 }, "bptt"]',
                                    'grid.algorithm = [{ name = "ep", beta = 0.2, lr_schedule = "cosine" }]'))
    suite = load_suite(path, registry)
    runs = [r for r in suite.runs if r.name == "p" and r.seed == 0]
    _, runner = run_all(registry, path, tmp_path / "r", runs)
    assert runner.store(runs[0]).status() == "done"
    epochs = runs[0].params["epochs"]
    assert calls == [(e, epochs) for e in range(1, epochs + 1)]


@pytest.mark.device
def test_drop_last_false_trains_each_epochs_smaller_last_batch_too(registry, suite_file, tmp_path, monkeypatch,
                                                                   device):
    """400 training samples in batches of 30: by default 13 batches (390 samples, a DataLoader's drop_last);
    with drop_last = false a 14th batch of 10, so that every sample is trained on each epoch, eagerly (on
    CUDA the full batches replay a graph). The default is quiet: writing drop_last = true leaves the run's
    id as it was."""
    from bench_algorithms.ep import EP
    from harness.run.acceleration import GraphedStep

    eager: list[torch.Tensor] = []  # every batch EP's step runs in Python (on CUDA, graph replays are not)
    original = EP.train_step
    monkeypatch.setattr(EP, "train_step", lambda self, m, x, y, **kw: (eager.append(x), original(self, m, x, y, **kw))[1])
    stepped: list[torch.Tensor] = []  # every batch given to the graphed (or compiled) step
    graphed = GraphedStep.__call__
    monkeypatch.setattr(GraphedStep, "__call__", lambda self, x, y: (stepped.append(x), graphed(self, x, y))[1])
    ids = {}
    for drop_last, last in ((None, []), ("true", []), ("false", [10])):
        eager.clear()
        stepped.clear()
        text = SUITE.replace('device = "cpu"', f'device = "{device}"').replace("epochs = 3", "epochs = 2\n    batch_size = 30" + (f"\n    drop_last = {drop_last}" if drop_last else ""))
        path = suite_file(text.replace('algorithm = { lr = [0.4, 0.2] }\n    grid.algorithm = [{ name = "ep", beta = 0.2 }, "bptt"]',
                                       'algorithm = { name = "ep", beta = 0.2, lr = [0.4, 0.2] }'))
        suite = load_suite(path, registry)
        runs = [r for r in suite.runs if r.name == "p"]
        ids[drop_last] = runs[0].id
        _, runner = run_all(registry, path, tmp_path / str(drop_last), runs)
        assert runner.store(runs[0]).status() == "done", (runner.store(runs[0]).dir / "error.txt").read_text()
        assert [len(x) for x in stepped] == [30] * 26  # 13 full batches an epoch through the step
        smaller = [x for x in eager if len(x) != 30]  # the smaller last batch, run eagerly beside it
        assert [len(x) for x in smaller] == last * 2
        first_epoch = torch.cat(stepped[:13] + smaller[:1])
        assert len(torch.unique(first_epoch, dim=0)) == 390 + sum(last)  # distinct samples: none twice
    assert ids[None] == ids["true"] != ids["false"]


def test_a_batch_stopped_while_saving_its_checkpoints_saves_every_member_and_resumes(registry, suite_file, tmp_path,
                                                                                   monkeypatch):
    """Ctrl-C (or a preemption's SIGTERM) while a batch of seeds saves its epoch checkpoints: it arrives once
    every member is saved, so that all are at one epoch and the batch resumes there (members at different
    epochs would restart from scratch), and ends as an uninterrupted batch."""
    import os
    import signal

    from harness.run.context import RunContext

    text = SUITE.replace("seeds = [0]", "seeds = [0, 1]").replace("epochs = 3", "epochs = 3\n    batch_seeds = true")
    path = suite_file(text.replace('algorithm = { lr = [0.4, 0.2] }\n    grid.algorithm = [{ name = "ep", beta = 0.2 }, "bptt"]',
                                   'algorithm = { name = "ep", beta = 0.2, lr = [0.4, 0.2] }'))
    suite = load_suite(path, registry)
    runs = [r for r in suite.runs if r.name == "p"]
    assert len(runs) == 2
    _, whole = run_all(registry, path, tmp_path / "whole", runs)
    saves = {"n": 0}
    original = RunContext.save_checkpoint

    def save(self, state, *args, **kwargs):
        saves["n"] += 1
        if saves["n"] == 3:  # epoch 2, the first member: the second is yet to be saved
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, state, *args, **kwargs)

    monkeypatch.setattr(RunContext, "save_checkpoint", save)
    runner = Runner(suite, registry, tmp_path / "resumed")
    with pytest.raises(KeyboardInterrupt):
        runner.execute(runs)
    assert saves["n"] == 4  # both members saved before the interrupt landed
    for run in runs:
        assert runner.store(run).status() == "interrupted"
        assert runner.store(run).checkpoint_note().startswith("after epoch 2 of 3, ")
    monkeypatch.setattr(RunContext, "save_checkpoint", original)
    runner.execute(runs)
    for run in runs:
        assert runner.store(run).status_record().get("resumed"), "resumed from epoch 2, not restarted"
        assert final_values(runner, run)["final_checksum"] == final_values(whole, run)["final_checksum"]


def test_a_run_name_with_a_quote_after_only_does_not_break_compile(monkeypatch):
    """Inductor writes the argument after ``--only`` into every compiled module as a string literal:
    `bench run suites/table1.toml --only "EB-1h (authors' settings)"` made each compile fail with a
    SyntaxError and the runs fall back to eager. compile_step leaves that benchmark harness out."""
    import shutil
    import sys

    import torch._inductor.config as inductor_config

    from harness.run.acceleration import compile_step

    if not (shutil.which("g++") or shutil.which("clang++")):
        pytest.skip("torch.compile's CPU backend needs a C++ compiler")
    torch._dynamo.reset()
    monkeypatch.setattr(inductor_config, "fx_graph_cache", False)  # generate the module, do not reuse one
    monkeypatch.setattr(sys, "argv", ["bench", "run", "s.toml", "--only", "EB-1h (authors' settings)"])
    x = torch.linspace(-1, 1, 7)
    step = compile_step(lambda t: torch.sigmoid(4 * (t - 0.5)) * t)
    torch.testing.assert_close(step(x), torch.sigmoid(4 * (x - 0.5)) * x)
