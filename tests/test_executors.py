"""Executors and shared results trees: processes, concurrent invocations, killed workers, submitit."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import HERE, write_dist
from harness.results.claims import Claim, is_stale, read_claim
from harness.results.store import read_json

SUITE = """
    [defaults]
    kind = "score"
    seeds = [0, 1, 2]
    device = "cpu"
    model = {{ name = "const", offset = 1.0 }}
    hold_file = "{hold}"

    [[runs]]
    name = "a"

    [[runs]]
    name = "b"
    model = {{ offset = 5.0 }}

    [tables.main]
    rows = ["name"]
    metrics = ["score"]
"""


@pytest.fixture
def env(fake_site, tmp_path, monkeypatch):
    """A fake distribution for the test plugin, visible to subprocesses too."""
    write_dist(fake_site, "bench-testplugin", "0.0.1", {"testplugin": "harness_test_plugin"}, {})
    path = os.pathsep.join([str(fake_site), str(HERE), os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", path)
    monkeypatch.setenv("BENCH_PLUGINS", "testplugin,executors")
    monkeypatch.setenv("BENCH_CLAIM_TTL", "30")
    return {**os.environ}


def bench(*args, env, **kw):
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def finals(results: Path, suite: str) -> dict[str, list]:
    out = {}
    for d in sorted((results / suite).iterdir()):
        if (d / "metrics.json").exists():
            out[d.name] = read_json(d / "metrics.json")["final"]
    return out


def executions(results: Path, suite: str) -> dict[str, int]:
    return {d.name: len((d / "executions.log").read_text().split())
            for d in (results / suite).iterdir() if (d / "executions.log").exists()}


def _release_when_running(hold: Path, results: Path, n: int, timeout: float = 60.0) -> None:
    """Delete the hold file once ``n`` runs hold a claim (every worker is busy), or after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if results.exists() and len(list(results.glob("*/*/claim.json"))) >= n:
            break
        time.sleep(0.05)
    hold.unlink()


@pytest.mark.slow
def test_processes_executor_matches_local(env, suite_file, tmp_path):
    path = suite_file(SUITE.format(hold=""))
    local = bench("run", path, "--results-dir", tmp_path / "local", env=env)
    out = local.communicate(timeout=120)[0]
    assert local.returncode == 0, out
    hold = tmp_path / "hold"
    hold.write_text("")
    path = suite_file(SUITE.format(hold=hold), name="held.toml")
    proc = bench("run", path, "--results-dir", tmp_path / "procs", "--executor", "processes", "--workers", 2,
                 env=env)
    _release_when_running(hold, tmp_path / "procs", 2)  # both workers hold a run: they share the work
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out
    assert "processes: 2 worker(s) on cpu, cpu" in out and "summary: 6 done" in out
    unhashed = lambda f: {k.rsplit("-", 1)[0]: v for k, v in f.items()}  # noqa: E731 (hold_file is in the id)
    assert unhashed(finals(tmp_path / "local", "demo")) == unhashed(finals(tmp_path / "procs", "held"))
    pids = {int(p) for d in (tmp_path / "procs" / "held").iterdir()
            for p in (d / "executions.log").read_text().split()}
    assert len(pids) == 2 and os.getpid() not in pids  # two workers shared the work


@pytest.mark.slow
def test_processes_executor_keeps_batched_runs_together(env, suite_file, tmp_path):
    """With batch_seeds, a worker takes a configuration's seeds as one unit and runs them as one batch."""
    path = suite_file(SUITE.format(hold="").replace('device = "cpu"', 'device = "cpu"\n    batch_seeds = true'))
    proc = bench("run", path, "--results-dir", tmp_path, "--executor", "processes", "--workers", 2, env=env)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0 and "summary: 6 done" in out, out
    # each worker numbers its batch within the whole suite, as a single process would
    assert {line.split("]")[0] + "]" for line in out.splitlines() if "batched): started" in line} == \
        {"[1-3/6]", "[4-6/6]"}, out
    by_name: dict[str, set] = {}
    for d in (tmp_path / "demo").iterdir():
        assert read_json(d / "environment.json")["batched_runs"] == 3, d.name
        by_name.setdefault(d.name.split("-")[0], set()).update((d / "executions.log").read_text().split())
    assert sorted(by_name) == ["a", "b"] and all(len(p) == 1 for p in by_name.values())  # one worker each


class _ContendedQueue:
    """A work queue another worker is reading: ``get_nowait`` finds its lock taken and raises
    Empty, as ``multiprocessing.Queue`` does, though units are waiting; ``get`` waits its turn."""

    def __init__(self, items):
        self.items = list(items)

    def get_nowait(self):
        import queue
        raise queue.Empty

    def get(self, block=True, timeout=None):
        return self.items.pop(0)


def test_worker_does_not_quit_while_units_are_queued(monkeypatch):
    """Regression: a worker that started while the other held the queue's lock saw Empty and
    quit, leaving one worker for the whole suite (and none once that one was killed)."""
    import queue

    from bench_executors import processes
    from harness.run.execute import Job, RunResult

    executed = []
    monkeypatch.setattr(processes, "execute_runs",
                        lambda job, ids, device, position: [executed.append(i) or RunResult(i, "done") for i in ids])
    done = queue.Queue()
    units = [(["a"], (1, 3)), (["b", "c"], (2, 3)), None]
    processes._worker(Job("suite.toml", "results"), "cpu", None, _ContendedQueue(units), done)
    assert executed == ["a", "b", "c"]
    assert [m[0] for m in done.queue] == ["started", "result", "started", "result", "result"]


@pytest.mark.slow
def test_two_invocations_run_each_run_once(env, suite_file, tmp_path):
    hold = tmp_path / "hold"
    hold.write_text("")
    path = suite_file(SUITE.format(hold=hold))
    first = bench("run", path, "--results-dir", tmp_path / "r", env=env)
    second = bench("run", path, "--results-dir", tmp_path / "r", env=env)
    time.sleep(1.5)
    hold.unlink()  # let the runs finish
    outs = [p.communicate(timeout=120)[0] for p in (first, second)]
    assert all(p.returncode == 0 for p in (first, second)), outs
    assert executions(tmp_path / "r", "demo") == {d: 1 for d in executions(tmp_path / "r", "demo")}
    assert len(executions(tmp_path / "r", "demo")) == 6


@pytest.mark.slow
def test_killed_worker_leaves_a_run_the_next_invocation_reruns(env, suite_file, tmp_path):
    hold = tmp_path / "hold"
    hold.write_text("")
    path = suite_file(SUITE.format(hold=hold))
    results = tmp_path / "r"
    proc = bench("run", path, "--results-dir", results, "--executor", "processes", "--workers", 2, env=env)
    victim = None
    deadline = time.monotonic() + 600  # generous: workers import torch, and CI may be loaded
    while time.monotonic() < deadline and proc.poll() is None:
        # a run has started once its executions.log holds its line (the file exists a moment before:
        # killing the worker in between left no line to count, and the test failed under load)
        started = ([p for p in (results / "demo").glob("*/executions.log") if p.read_text().strip()]
                   if (results / "demo").exists() else [])
        claims = [c for c in (read_claim(p.parent / "claim.json") for p in started) if c]
        if claims:
            victim = claims[0]
            break
        time.sleep(0.05)
    assert victim is not None, proc.communicate(timeout=10)[0]
    os.kill(victim["pid"], signal.SIGKILL)
    hold.unlink()
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 1 and "interrupted" in out and f"worker {victim['pid']} died" in out
    status = bench("status", path, "--results-dir", results, env=env).communicate(timeout=60)[0]
    assert "interrupted" in status and "5 done" in status
    again = bench("run", path, "--results-dir", results, env=env)
    out = again.communicate(timeout=120)[0]
    assert again.returncode == 0, out
    assert "summary: 1 done, 5 skipped:done" in out
    counts = executions(results, "demo")
    assert sorted(counts.values()) == [1, 1, 1, 1, 1, 2]  # only the killed run ran twice


@pytest.mark.slow
def test_submitit_local_executor_end_to_end(env, suite_file, tmp_path):
    pytest.importorskip("submitit")
    path = suite_file(SUITE.format(hold=""))
    proc = bench("run", path, "--results-dir", tmp_path / "r", "--executor", "submitit",
                 "--executor-opt", 'cluster="local"', "--executor-opt", "timeout_min=5", env=env)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out
    assert "submitit: 6 job(s) submitted (local)" in out and "summary: 6 done" in out
    assert "| a      |" in out  # the table, gathered after waiting
    assert len(executions(tmp_path / "r", "demo")) == 6


@pytest.mark.slow
def test_submitit_no_wait_returns_at_once(env, suite_file, tmp_path):
    pytest.importorskip("submitit")
    path = suite_file(SUITE.format(hold="") + '\n    [executor]\n    name = "submitit"\n    cluster = "local"\n    wait = false\n')
    out = bench("run", path, "--results-dir", tmp_path / "r", env=env).communicate(timeout=300)[0]
    assert "summary: 6 submitted" in out and "follow with: bench status" in out


@pytest.mark.slow
def test_executor_options_are_validated(env, suite_file, tmp_path):
    path = suite_file(SUITE.format(hold=""))
    out = bench("run", path, "--executor", "processes", "--executor-opt", "wrokers=2", env=env).communicate(timeout=60)[0]
    assert "unknown key 'wrokers' for executor 'processes'; did you mean 'workers'?" in out
    out = bench("run", path, "--executor", "procesess", env=env).communicate(timeout=60)[0]
    assert "unknown executor 'procesess' (did you mean 'processes'?)" in out


def test_stale_claims(tmp_path):
    claim = Claim(tmp_path, ttl=30)
    assert claim.acquire()
    assert not Claim(tmp_path).acquire()  # a live claim blocks others
    record = read_claim(tmp_path / "claim.json")
    assert not is_stale(record)
    assert is_stale({**record, "expires": time.time() - 1})  # expired: its worker hangs or died elsewhere
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert is_stale({**record, "pid": int(dead.stdout)})  # same host, process gone
    claim.release()
    assert not (tmp_path / "claim.json").exists()
    (tmp_path / "claim.json").write_text(json.dumps({**record, "pid": int(dead.stdout)}))
    other = Claim(tmp_path)
    assert other.acquire()  # a dead worker's claim is broken
    other.release()


def test_workers_execute_the_suite_as_parsed_once(env, suite_file, tmp_path):
    """The command parses and validates the suite once and hands the resolved suite to the
    executor: a worker never reads the file again (it may have been edited or removed since)."""
    from harness.plugins import get_manager
    from harness.run.execute import Job, execute_runs, work_units
    from harness.suite.load import load_suite

    path = suite_file(SUITE.format(hold=""))
    suite = load_suite(path, get_manager().registry)
    path.unlink()  # gone: only the parsed suite can serve
    job = Job(suite_path=str(path), results_dir=str(tmp_path / "r"), suite=suite)
    assert job.suite_name == suite.name
    units = work_units(job, suite.runs)
    results = [r for unit in units for r in execute_runs(job, unit)]
    assert [r.status for r in results] == ["done"] * len(suite.runs)
