"""The runner and the store: resume, failure isolation, atomic writes."""

import json
import os

import harness_test_plugin as tp
import pytest

from harness.results.store import atomic_write, read_json
from harness.run.runner import Runner
from harness.suite.load import load_suite

SUITE = """
    [defaults]
    kind = "score"
    seeds = [0, 1]
    device = "cpu"
    model = { name = "const", offset = 10.0 }

    [[runs]]
    name = "good"

    [[runs]]
    name = "bad"
    mode = "fail"

    [[runs]]
    name = "nan"
    mode = "nan"
"""


def make(manager, suite_file, tmp_path, text=SUITE, **kw):
    suite = load_suite(suite_file(text), manager.registry)
    return suite, Runner(suite, manager.registry, tmp_path / "results", **kw)


def test_failures_are_isolated_and_recorded(manager, suite_file, tmp_path):
    suite, runner = make(manager, suite_file, tmp_path)
    outcomes = runner.execute(suite.runs)
    status = {o.run.id: o.status for o in outcomes}
    assert sorted(status.values()) == ["diverged", "diverged", "done", "done", "failed", "failed"]
    bad = next(r for r in suite.runs if r.name == "bad")
    store = runner.store(bad)
    assert store.status() == "failed"
    assert "deliberate failure for the test" in (store.dir / "error.txt").read_text()
    assert "Traceback" in (store.dir / "error.txt").read_text()
    nan = runner.store(next(r for r in suite.runs if r.name == "nan"))
    assert nan.status_record()["error"] == "metric score is NaN"
    good = runner.store(suite.runs[0])
    assert good.is_complete()
    assert read_json(good.dir / "config.json")["slots"]["model"]["params"]["offset"] == 10.0
    env = read_json(good.dir / "environment.json")
    assert {"python", "torch", "cuda", "device", "plugins", "git_commit", "cpu_model", "cpu_capability"} <= set(env)
    import torch

    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and env["cpu_model"]
    assert env["device"] == "cpu"
    metrics = read_json(good.dir / "metrics.json")
    assert {"metric": "score", "value": 10.0} in metrics["final"]
    assert [c["epoch"] for c in metrics["curves"]] == [1, 2]


def test_resume_skips_finished_and_reruns_failed_on_request(manager, suite_file, tmp_path):
    suite, runner = make(manager, suite_file, tmp_path)
    runner.execute(suite.runs)
    assert len(tp.EXECUTIONS) == 6
    tp.EXECUTIONS.clear()
    outcomes = runner.execute(suite.runs)
    assert tp.EXECUTIONS == [] and {o.status for o in outcomes} == {"skipped:done", "skipped:failed", "skipped:diverged"}
    _, again = make(manager, suite_file, tmp_path, rerun_failed=True)
    again.execute(suite.runs)
    assert sorted(tp.EXECUTIONS) == sorted(r.id for r in suite.runs if r.name in ("bad", "nan"))


def test_interrupted_run_is_rerun(manager, suite_file, tmp_path):
    text = SUITE.replace('mode = "fail"', 'mode = "interrupt"')
    suite, runner = make(manager, suite_file, tmp_path, text)
    with pytest.raises(KeyboardInterrupt):
        runner.execute(suite.runs)
    done = [r for r in suite.runs if runner.store(r).status() == "done"]
    interrupted = [r for r in suite.runs if runner.store(r).status() == "interrupted"]
    assert [r.name for r in done] == ["good", "good"] and len(interrupted) == 1
    tp.EXECUTIONS.clear()
    with pytest.raises(KeyboardInterrupt):
        runner.execute(suite.runs)
    assert tp.EXECUTIONS == [interrupted[0].id]  # finished runs were not redone


def test_half_written_run_is_not_complete(manager, suite_file, tmp_path):
    """A crash between metrics and status leaves a run that resume re-runs."""
    suite, runner = make(manager, suite_file, tmp_path)
    run = suite.runs[0]
    runner.execute([run])
    store = runner.store(run)
    (store.dir / "metrics.json").unlink()
    assert not store.is_complete() and runner.should_run(run)
    (store.dir / "status.json").write_text('{"status": "do')  # torn file from an old crash
    assert store.status() == "corrupt" and runner.should_run(run)
    assert "status.json is damaged" in store.status_record()["error"]


def test_atomic_write_leaves_old_file_on_crash(tmp_path):
    path = tmp_path / "status.json"
    atomic_write(path, lambda f: f.write('{"status": "running"}'))

    def crash(f):
        f.write('{"status": "do')
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(path, crash)
    assert json.loads(path.read_text()) == {"status": "running"}
    assert os.listdir(tmp_path) == ["status.json"]  # no temp file left behind


def test_unknown_device_fails_the_run_not_the_suite(manager, suite_file, tmp_path):
    text = SUITE.replace('device = "cpu"', 'device = "tpu"')
    suite, runner = make(manager, suite_file, tmp_path, text)
    outcomes = runner.execute(suite.runs[:1])
    assert outcomes[0].status == "failed" and "unknown device 'tpu'" in outcomes[0].error


def test_progress_is_readable_in_a_log(manager, suite_file, tmp_path):
    import io

    from harness.run.progress import Progress

    log = io.StringIO()
    suite, runner = make(manager, suite_file, tmp_path, progress=Progress(None, stream=log, interval=0))
    runner.execute(suite.runs[:1])
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert lines[0].endswith("started") and "epoch 1/2" in lines[1] and "ETA" not in lines[1]  # no rate yet
    assert lines[-1].startswith("[1/1] good-s0-") and " done in " in lines[-1]


def test_the_eta_comes_from_the_rate_since_the_first_update(monkeypatch):
    """Set-up time before the first update, or units resumed from a checkpoint, do not enter the ETA
    (it said 5:24 for a run that took 0:29, and 0:03 for a resumed one that took an hour)."""
    import io
    from types import SimpleNamespace

    import harness.run.progress as hp

    clock = [100.0]
    monkeypatch.setattr(hp.time, "monotonic", lambda: clock[0])
    log = io.StringIO()
    p = hp.Progress(1, stream=log, interval=0)
    run = SimpleNamespace(id="r")
    p.update(run, 12000, 90000, "batch", "", elapsed=60.0)  # resumed at 12000 after a 60 s set-up
    clock[0] += 10.0
    p.update(run, 12100, 90000, "batch", "", elapsed=70.0)  # 100 units in 10 s
    first, second = log.getvalue().splitlines()
    assert "ETA" not in first
    assert second.endswith("batch 12100/90000  1:10 elapsed  ETA 2:09:50")  # 77,900 units at 10 per s


def test_no_eta_before_the_units_predict_the_rest_and_none_for_phases(monkeypatch):
    """A training run's first epoch leaves out its evaluation (an ETA 4x short); phases of unequal
    cost give none at all; and beside a run's ETA, the time left for every run still to execute."""
    import io
    from types import SimpleNamespace

    import harness.run.progress as hp

    clock = [0.0]
    monkeypatch.setattr(hp.time, "monotonic", lambda: clock[0])
    log = io.StringIO()
    p = hp.Progress(3, stream=log, interval=0)
    p.expected = 3
    p.start_run(1, "a")
    run = SimpleNamespace(id="a")
    for done in (1, 50, 100):  # 100 units an epoch, 1 per second; the evaluation then takes 100 s
        clock[0] = float(done)
        p.update(run, done, 300, "batch", "", elapsed=clock[0], eta_after=100)
    clock[0] = 201.0
    p.update(run, 101, 300, "batch", "", elapsed=201.0, eta_after=100)  # 100 units in 200 s, evaluation included
    lines = log.getvalue().splitlines()[1:]
    assert all("ETA" not in li for li in lines[:3])
    assert lines[3].endswith("ETA 6:38 (all 3 runs left ≈ 26:36)"), lines[3]  # 199 units at 0.5/s; then 2 x 599 s
    p.end_run("a", "done", 600.0)
    p.start_run(2, "b")
    clock[0] = 801.0  # the first run took 801 s of wall time, so the run after this one ≈ 801 s
    p.update(SimpleNamespace(id="b"), 1, 10, "phase", "", elapsed=1.0, eta_after=None)
    clock[0] = 811.0
    p.update(SimpleNamespace(id="b"), 6, 10, "phase", "", elapsed=11.0, eta_after=None)
    p.update(SimpleNamespace(id="b"), 6, 10, "batch", "", elapsed=11.0)  # 5 units in 10 s: 4 left, 8 s
    last = log.getvalue().splitlines()
    assert "ETA" not in last[-2] and last[-1].endswith("ETA 0:08 (all 2 runs left ≈ 13:39)"), last[-2:]
    # phases give no ETA; once a run has ended, this one is taken to last as long: 811 − 11 s, then 811 s
    assert last[-2].endswith("elapsed (all 2 runs left ≈ 26:51)"), last[-2]


def test_a_warning_on_a_terminal_clears_the_progress_line_then_redraws_it():
    import io
    import warnings
    from types import SimpleNamespace

    from harness.run.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    p = Progress(1, stream=term, interval=0)
    p.start_run(1, "r")
    p.update(SimpleNamespace(id="r"), 1, 2, "batch", "", elapsed=0.0)
    with p.warnings_as_messages():
        warnings.warn("a torch warning", UserWarning, stacklevel=1)
    p.message("warning: run r: the free phase has not settled")
    out = term.getvalue()
    line = "[1/1] r: batch 1/2  0:00 elapsed"
    assert out.endswith(f"\r\033[Kwarning: run r: the free phase has not settled\n\r\033[K{line}"), repr(out[-200:])
    parts = out.split("\r\033[K")  # each write starts by clearing the line
    k = next(i for i, part in enumerate(parts) if "UserWarning: a torch warning" in part)
    assert parts[k - 1] == line and parts[k].endswith("\n") and parts[k + 1] == line, parts


def test_the_processes_executor_says_the_pace_of_the_whole_invocation():
    from bench_executors.processes import pace

    assert pace(2, 5, 60.0) == "processes: 2/5 run(s) ended in 1:00; the other 3 ≈ 1:30 at this pace"
    assert pace(5, 5, 61.0) == "processes: 5/5 run(s) ended in 1:01"
    # a run that resumed did only its rest: no extrapolation from it
    assert pace(1, 4, 1020.0, resumed=1) == ("processes: 1/4 run(s) ended in 17:00; the other 3: no estimate, "
                                             "1 of those ended resumed from a checkpoint (each run's line gives its ETA)")


def test_batched_seeds_run_together_with_the_same_records(manager, suite_file, tmp_path):
    text = SUITE.replace('device = "cpu"', 'device = "cpu"\n    seeds = [0, 1, 2]').replace("    seeds = [0, 1]\n", "")
    batched = text.replace('[defaults]', '[defaults]\n    batch_seeds = true')
    suite, runner = make(manager, suite_file, tmp_path, text)
    import io

    from harness.run.progress import Progress

    log = io.StringIO()
    bsuite, brunner = make(manager, lambda t: suite_file(t, "batched.toml"), tmp_path / "b", batched,
                           progress=Progress(None, stream=log, interval=100))
    assert [r.id for r in suite.runs] == [r.id for r in bsuite.runs]  # batching changes no run id
    tp.BATCHES.clear()
    runner.execute(suite.runs)
    assert tp.BATCHES == []
    outcomes = brunner.execute(bsuite.runs)
    assert [len(b) for b in tp.BATCHES] == [3, 3, 3]  # one batch per run name, its three seeds
    heads = [line.split("] ")[0] + "]" for line in log.getvalue().splitlines() if " in " in line or "started" in line]
    assert heads == ["[1-3/9]", "[1/9]", "[2/9]", "[3/9]", "[4-6/9]", "[4/9]", "[5/9]", "[6/9]",
                     "[7-9/9]", "[7/9]", "[8/9]", "[9/9]"]  # a batch, then each of its runs by its number
    for run in suite.runs:
        a = read_json(runner.store(run).dir / "metrics.json")
        b = read_json(brunner.store(run).dir / "metrics.json")
        assert runner.store(run).status() == brunner.store(run).status()
        if runner.store(run).status() == "done":
            assert a == b
        else:  # a failure fails the whole batch: same status and error for every seed
            assert brunner.store(run).status_record()["error"] == runner.store(run).status_record()["error"]
    assert {o.status for o in outcomes} == {"done", "failed", "diverged"}


ONE = """
    [defaults]
    kind = "score"
    device = "cpu"
    model = { name = "const", offset = 10.0 }
    [[runs]]
    name = "good"
"""


def _files(store):
    return {p.name: p.read_bytes() for p in store.dir.iterdir() if p.is_file() and p.name != "claim.json"}


def test_a_forced_rerun_that_fails_leaves_the_done_result_intact(manager, suite_file, tmp_path):
    suite, runner = make(manager, suite_file, tmp_path, ONE)
    [run] = suite.runs
    runner.execute([run])
    before = _files(runner.store(run))
    forced = Runner(suite, manager.registry, tmp_path / "results", force=True, device="cuda:7")
    [outcome] = forced.execute([run])
    assert outcome.status == "failed" and "'cuda:7'" in outcome.error
    assert outcome.last_error.endswith(f"GPU; use --device cpu (or auto) (the earlier done result of {run.id} is kept)")
    assert _files(runner.store(run)) == before  # byte for byte
    assert sorted(p.name for p in runner.store(run).dir.iterdir()) == sorted(before)  # no .next left


def test_a_forced_rerun_replaces_the_result_once_it_has_finished(manager, suite_file, tmp_path):
    import threading
    import time

    hold = tmp_path / "hold"
    text = ONE.replace('name = "good"', f'name = "good"\nhold_file = "{hold}"')
    suite, runner = make(manager, suite_file, tmp_path, text)
    [run] = suite.runs
    runner.execute([run])
    store = runner.store(run)
    before = _files(store)
    hold.touch()
    forced = Runner(suite, manager.registry, tmp_path / "results", force=True)
    thread = threading.Thread(target=forced.execute, args=([run],))
    thread.start()
    try:
        deadline = time.monotonic() + 300
        while not (store.dir / ".next" / "executions.log").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (store.dir / ".next" / "status.json").exists()  # the re-run is under way, beside it
        assert store.status() == "done" and _files(store) == before  # and the old result is intact
    finally:
        hold.unlink()
        thread.join(timeout=60)
    after = _files(store)
    assert store.status() == "done" and after["status.json"] != before["status.json"]
    assert after["executions.log"].count(b"\n") == 1  # the new run's files, not a mixture
    assert not (store.dir / ".next").exists() and not (store.dir / ".prev").exists()


def test_a_checkpoint_note_describes_its_own_checkpoint_or_says_why_it_cannot(tmp_path):
    """bench status's line for an unfinished run, from checkpoint.json beside checkpoint.pt: the progress;
    nothing without a checkpoint; for a note that is missing, damaged (even hostile) or that belongs to
    another checkpoint (another size), a line that says so instead of a wrong epoch or a crash."""
    import os
    import signal

    from harness.results.store import RunStore
    from harness.run.context import signals_deferred

    store = RunStore(tmp_path / "run")
    store.dir.mkdir()

    def note(**kw):
        store.checkpoint_note_path.write_text(json.dumps({"progress": "after epoch 3 of 50", "seconds": 12600.0,
                                                          "saved": "T", "bytes": 1, **kw}))
    note()
    assert store.checkpoint_note() is None  # no checkpoint.pt: nothing to resume from
    store.checkpoint.write_bytes(b"x")
    assert store.checkpoint_note() == "after epoch 3 of 50, 3.5 h of the run so far, saved T"
    note(seconds=20.0)
    assert store.checkpoint_note() == "after epoch 3 of 50, under a minute of the run so far, saved T"
    note(done=0.06)  # 3 of 50 epochs took 3.5 h: 47 more take about 54.8 h
    assert store.checkpoint_note() == ("after epoch 3 of 50, 3.5 h of the run so far, about 54.8 h more at that "
                                       "pace, saved T")
    note(done=0.06, pace=36000.0)  # the invocation that saved it runs the whole run in 10 h: 9.4 h more
    assert store.checkpoint_note() == ("after epoch 3 of 50, 3.5 h of the run so far, about 9.4 h more at that "
                                       "pace, saved T")
    for odd in (0, -1.0, float("inf"), "fast", True, None):  # a pace that cannot be: the whole run's, as before
        note(done=0.06, pace=odd)
        assert "about 54.8 h more" in store.checkpoint_note(), odd
    for odd in (0.0, 1.0, 1.5, -0.2, 5e-324, 1e-300, "half", None, True):  # no estimate, and no error
        note(done=odd)
        assert store.checkpoint_note() == "after epoch 3 of 50, 3.5 h of the run so far, saved T", odd
    note(progress="after epoch 3\x1b]0;pwned\x07")
    assert "\x1b" not in store.checkpoint_note() and "?" in store.checkpoint_note()  # no terminal escapes
    note(done=0.06)
    assert store.checkpoint_done() == 0.06  # what a resumed run's pace starts from
    note(done=0.06, bytes=2)
    assert "describes another checkpoint" in store.checkpoint_note()
    assert store.checkpoint_done() is None  # another checkpoint's share is not this one's
    for damaged in ("{", '{"progress": "x"}', "[" * 100000, "[]"):
        store.checkpoint_note_path.write_text(damaged)
        assert "is damaged" in store.checkpoint_note(), damaged[:20]
    for bad in ({"seconds": "soon"}, {"seconds": -5.0}, {"seconds": True}, {"progress": {"a": 1}}, {"saved": None},
                {"bytes": "1"}, {"bytes": True}, {"bytes": None}):
        note(done=0.06, **bad)
        assert "is damaged" in store.checkpoint_note(), bad
    assert store.checkpoint_done() is None  # (its bytes was damaged last)
    store.checkpoint_note_path.unlink()
    assert "saved before checkpoints had notes" in store.checkpoint_note()
    # signals_deferred: a Ctrl-C inside the block arrives after it, as it would have
    done = []
    with pytest.raises(KeyboardInterrupt):
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("the block ran to its end")
    assert done == ["the block ran to its end"]
