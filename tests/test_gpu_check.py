"""scripts/gpu-check rehearsed on a CPU (``--device cpu --quick``), so that the script a lent GPU runs
cannot rot between the rare sessions that have one; and what it says on a machine without CUDA."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

SCRIPT = REPO / "scripts" / "gpu-check"
DATA = os.environ.get("BENCH_DATA_DIR")


def _run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.skipif(not DATA or not (Path(DATA) / "MNIST" / "raw").is_dir(), reason="needs MNIST ($BENCH_DATA_DIR)")
@pytest.mark.slow
def test_the_cpu_rehearsal_runs_every_stage(tmp_path):
    out = tmp_path / "check"
    # limits ten times the quick ones: this checks the stages, not how fast a loaded CI machine runs them
    proc = _run("--device", "cpu", "--quick", "--output", str(out), "--data-dir", DATA, "--limit-scale", "10",
                "--budget", "2400", timeout=2700)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    stages = json.loads((out / "stages.json").read_text())
    assert list(stages) == ["environment", "install", "tests", "speed", "table1-epoch", "bf16", "compiled",
                            "summary"]
    assert all(v["status"] == "passed" for v in stages.values()), stages
    summary = (out / "summary.md").read_text()
    assert summary in proc.stdout  # printed, and written
    # the device tests ran on the CPU; the CUDA-only ones said why they did not
    tests = summary.split("## Tests on cpu")[1].split("##")[0]
    assert " 0 failed, 0 errors" in tests and "needs CUDA" in tests and not tests.lstrip().startswith("0 passed")
    # the speed suite and the Table 1 epochs wrote results, and the projection is labelled as one
    assert "| P-1h | ep |" in summary and "| EB-1h | ep |" in summary and "| P-2h | bptt |" in summary
    assert "A projection, not a measurement" in summary and "quick mode" in summary
    # bfloat16 autocast: P-conv's speed without and with it, and the GDU table of suites/bf16.toml
    bf16 = summary.split("## bfloat16 autocast on cpu")[1].split("\n## ")[0]
    assert "Training speed without and with autocast" in bf16 and "bf16 autocast" in bf16
    assert "| P-conv " in bf16 and "| P-1h " in bf16
    for log in ("tests", "speed", "table1-epoch", "bf16", "compiled"):
        assert (out / "logs" / f"{log}.log").stat().st_size > 0


@pytest.mark.slow
def test_without_cuda_the_cuda_stages_say_so(tmp_path):
    """The default device is cuda: on a machine without one, nothing is measured, each stage says
    why, and the exit status is 1 (a CI gate on a CPU runner cannot pass by measuring nothing)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "check"
    proc = _run("--quick", "--output", str(out), timeout=120)
    assert proc.returncode == 1
    stages = json.loads((out / "stages.json").read_text())
    for stage in ("tests", "speed", "table1-epoch", "bf16", "compiled"):
        assert stages[stage]["status"] == "skipped: no CUDA", (stage, stages[stage])
    assert "torch sees no CUDA GPU here" in proc.stdout and "--device cpu --quick" in proc.stdout
