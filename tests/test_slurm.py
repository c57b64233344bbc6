"""The SLURM path against a live cluster, through the `bench` command line (`scripts/slurm-local up`
starts a single-node one; `.ci/run` does so before the tests). Without a cluster these tests skip,
saying why; under CI=true that is a failure, so that CI never passes without having run them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import HERE, REPO, write_dist
from harness.results.store import read_json

pytestmark = pytest.mark.slow


def _cluster_env() -> dict[str, str] | str:
    """The environment that reaches the cluster (scripts/slurm-local env), or why there is none."""
    env = dict(os.environ)
    local = REPO / "scripts" / "slurm-local"
    out = subprocess.run([str(local), "env"], capture_output=True, text=True).stdout.strip()
    m = re.match(r"export SLURM_CONF=(\S+) PATH=(\S+):\$PATH", out)
    if m and Path(m.group(1)).exists() and "SLURM_CONF" not in os.environ:
        env["SLURM_CONF"], env["PATH"] = m.group(1), f"{m.group(2)}{os.pathsep}{env['PATH']}"
    if shutil.which("sinfo", path=env["PATH"]) is None:
        return "no SLURM client (sinfo) on PATH: start a local cluster with scripts/slurm-local up"
    try:
        state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=env,
                               timeout=20).stdout.split()
    except subprocess.TimeoutExpired:
        return "sinfo did not answer in 20 s"
    if not any(s in ("idle", "mix", "alloc") for s in state):
        return f"no SLURM node is up (sinfo: {state or 'nothing'}): scripts/slurm-local up"
    try:
        import submitit  # noqa: F401
    except ImportError:
        return 'submitit is not installed: pip install -e ".[slurm]"'
    return env


@pytest.fixture(scope="module")
def cluster():
    env = _cluster_env()
    if isinstance(env, str):
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the SLURM tests cannot run: {env}")
        pytest.skip(env)
    return env


@pytest.fixture
def env(cluster, fake_site):
    """The cluster's environment, with the test plugin visible to the jobs (they inherit it)."""
    write_dist(fake_site, "bench-testplugin", "0.0.1", {"testplugin": "harness_test_plugin"}, {})
    path = os.pathsep.join([str(fake_site), str(HERE), os.environ.get("PYTHONPATH", "")])
    return {**cluster, "PYTHONPATH": path, "BENCH_CLAIM_TTL": "30"}


def bench(*args, env, timeout=600):
    proc = subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def suite(tmp_path: Path, body: str, name: str = "s") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\n' + textwrap.dedent(body))
    return path


TRAIN = """
    executor = {{ name = "submitit", cpus_per_task = 1, timeout_min = 10{extra} }}
    [defaults]
    kind = "train"
    seeds = {seeds}
    device = "cpu"
    dataset = {{ name = "blobs", input_size = 20, num_classes = 10, n_train = {n}, n_test = 200, noise = 0.6 }}
    model = {{ name = "p", input_size = 20, hidden = [16], activation = "sigmoid" }}
    T = 40
    K = 4
    epochs = {epochs}
    [[runs]]
    name = "net"
    algorithm = {{ lr = [0.08, 0.04] }}
    grid.algorithm = {grid}
    [tables.errors]
    rows = ["name"]
    columns = ["algorithm", "metric"]
    metrics = ["test_error"]
"""


def test_a_suite_runs_as_few_slurm_jobs_shows_their_state_and_prints_its_table(env, tmp_path):
    path = suite(tmp_path, TRAIN.format(extra=", runs_per_job = 2", seeds="[0, 1]", n=400, epochs=2,
                                        grid='[{ name = "ep", beta = 0.1 }, "bptt"]'))
    results = tmp_path / "r"
    code, out = bench("run", path, "--results-dir", results, "--executor-opt", "wait=false",
                      "--executor-opt", "slurm={ hold = true }", env=env)  # queued, held until released below
    assert code == 0, out
    assert "submitit: 2 job(s) submitted (slurm)" in out and "summary: 4 submitted" in out, out  # 4 runs, 2 jobs
    jobs = re.findall(r"job (\d+_\d+): ", out)
    assert len(jobs) == 2, out
    queue = subprocess.run(["squeue", "-h", "-o", "%i %T %r"], env=env, capture_output=True, text=True).stdout
    code, status = bench("status", path, "--results-dir", results, env=env)
    shown = re.findall(r"submitit job (\d+_\d+): PENDING; log \S+_log.err", status)
    assert len(shown) == 4 and set(shown) == set(jobs), status  # each queued run names its job and state
    assert len(re.findall(r"^queued +net-", status, re.M)) == 4 and "total: 4 queued" in status, status
    print(f"squeue:\n{queue}bench status while queued:\n{status}")
    subprocess.run(["scontrol", "release", jobs[0].split("_")[0]], env=env, check=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        code, status = bench("status", path, "--results-dir", results, env=env)
        if "total: 4 done" in status:
            break
        time.sleep(2)
    assert "total: 4 done" in status, status
    code, table = bench("table", path, "--results-dir", results, env=env)
    assert code == 0 and re.search(r"\| net +\| [\d.]+ ± [\d.]+ +\| [\d.]+ ± [\d.]+", table), table


def test_scancel_leaves_the_run_interrupted_and_the_next_run_resumes_it_to_the_same_result(env, tmp_path):
    path = suite(tmp_path, TRAIN.format(extra="", seeds="[0]", n=4000, epochs=40, grid='[{ name = "ep", beta = 0.1 }]'))
    results, reference = tmp_path / "r", tmp_path / "uninterrupted"
    code, out = bench("run", path, "--results-dir", results, "--threads", "1", "--executor-opt", "wait=false", env=env)
    assert code == 0, out
    run_dir = next(d for d in (results / "s").iterdir() if d.name.startswith("net-"))
    deadline = time.monotonic() + 300
    while not (run_dir / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    job = read_json(run_dir / "submission.json")["job_id"]
    subprocess.run(["scancel", job], env=env, check=True)
    while time.monotonic() < deadline:
        queued = subprocess.run(["squeue", "-h", "-j", job], env=env, capture_output=True, text=True).stdout
        if not queued.strip():
            break
        time.sleep(0.5)
    code, status = bench("status", path, "--results-dir", results, env=env)
    assert re.search(rf"^interrupted +{run_dir.name}", status, re.M), status
    assert f"submitit job {job}: CANCELLED" in status and "log " in status, status
    code, out = bench("run", path, "--results-dir", results, "--threads", "1", env=env)
    assert code == 0 and "summary: 1 done" in out, out
    assert read_json(run_dir / "status.json")["resumed"], "the run started over instead of resuming"
    code, out = bench("run", path, "--results-dir", reference, "--threads", "1", "--executor", "local", env=env)
    assert code == 0, out
    resumed, whole = (read_json(d / run_dir.name / "metrics.json") for d in (results / "s", reference / "s"))
    timing = {"seconds", "samples_per_s", "seconds_per_epoch", "first_step_seconds", "peak_memory_mb"}
    assert [{k: v for k, v in c.items() if k not in timing} for c in resumed["curves"]] == \
        [{k: v for k, v in c.items() if k not in timing} for c in whole["curves"]]
    final = {r["metric"]: r["value"] for r in resumed["final"] if r["metric"] not in timing}
    assert final == {r["metric"]: r["value"] for r in whole["final"] if r["metric"] not in timing}
    print(f"final_checksum resumed {final['final_checksum']!r}, uninterrupted "
          f"{next(r['value'] for r in whole['final'] if r['metric'] == 'final_checksum')!r}")


SCORE = """
    executor = { name = "submitit", cpus_per_task = 1, timeout_min = 10 }
    [defaults]
    kind = "score"
    seeds = [0, 1, 2]
    device = "cpu"
    model = { name = "const", offset = 1.0 }
    [[runs]]
    name = "a"
    [[runs]]
    name = "b"
    mode = "fail"
"""


def test_two_submitters_at_once_run_each_run_exactly_once(env, tmp_path):
    path = suite(tmp_path, SCORE.replace('mode = "fail"', ""))
    results = tmp_path / "r"
    procs = [subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(path), "--results-dir", str(results)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    runs = [d for d in (results / "s").iterdir() if d.name[:2] in ("a-", "b-")]
    assert len(runs) == 6
    counts = {d.name: len((d / "executions.log").read_text().split()) for d in runs}
    assert set(counts.values()) == {1}, counts  # claims: each run executed by one job only
    assert all(read_json(d / "status.json")["status"] == "done" for d in runs)


def test_a_failing_run_is_failed_and_its_status_names_the_slurm_log(env, tmp_path):
    path = suite(tmp_path, SCORE)
    results = tmp_path / "r"
    code, out = bench("run", path, "--results-dir", results, env=env)
    assert code == 1 and "3 failed" in out, out
    code, status = bench("status", path, "--results-dir", results, env=env)
    assert code == 1, status
    lines = status.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("failed"):
            assert "deliberate failure for the test" in line, line
            log = re.search(r"submitit job \S+: \w+; log (\S+)", lines[i + 1])
            assert log and Path(log.group(1)).exists(), lines[i + 1]
            assert "deliberate failure for the test" in Path(log.group(1)).read_text()


def test_resources_per_run_go_to_their_own_array_and_are_validated(env, tmp_path):
    body = SCORE.replace('mode = "fail"', 'resources = { cpus = 2, timeout_min = 5, slurm = { comment = "big" } }')
    path = suite(tmp_path, body)
    results = tmp_path / "r"
    code, out = bench("run", path, "--results-dir", results, env=env)
    assert code == 0, out
    assert "submitit: 3 job(s) submitted (slurm);" in out, out
    assert "submitit: 3 job(s) submitted (slurm) with cpus=2, slurm={'comment': 'big'}, timeout_min=5;" in out, out
    b = next(d for d in (results / "s").iterdir() if d.name.startswith("b-"))
    job = read_json(b / "submission.json")["job_id"]
    shown = subprocess.run(["scontrol", "show", "job", "-o", job], env=env, capture_output=True, text=True).stdout
    assert "NumCPUs=2" in shown and "TimeLimit=00:05:00" in shown and "Comment=big" in shown, shown
    bad = suite(tmp_path, SCORE.replace('mode = "fail"', "resources = { cpu = 2 }"), "bad")
    code, out = bench("validate", bad, env=env)
    assert code == 1 and "runs[1] (b).resources.cpu: unknown key 'cpu' for a run's resources; did you mean 'cpus'?" \
        in out, out
    assert json.loads(json.dumps(read_json(b / "submission.json")))["log"].endswith("_log.err")
