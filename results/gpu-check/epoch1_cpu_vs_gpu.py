"""Epoch 1 of Table 1's EB-1h and P-2h rows: the committed CPU runs against the GPU check's runs.

Same seeds, so the same initial weights and the same mini-batch order; only the device (and with
it the float32 rounding) differs. Prints test error (%) and classes predicted for no test image.

    python3 results/gpu-check/epoch1_cpu_vs_gpu.py
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from harness.results.aggregate import epoch_point  # noqa: E402

CPU, GPU = HERE.parent / "table1", HERE / "runs" / "table1"


def epoch1(root: Path, row: str, alg: str) -> dict[int, tuple[float, float]]:
    out = {}
    for run in sorted(root.glob(f"{row}-{alg}-s?-*")):
        config = json.loads((run / "config.json").read_text())
        if config["name"] != row:
            continue
        first = epoch_point(json.loads((run / "metrics.json").read_text())["curves"], 1)
        out[config["seed"]] = (first["test_error"], first["unpredicted_classes"])
    return out


print("| row | alg | seed | CPU test % | GPU test % | CPU unpredicted | GPU unpredicted |")
print("|---|---|---|---|---|---|---|")
for row, alg in (("EB-1h", "ep"), ("EB-1h", "bptt"), ("P-2h", "ep"), ("P-2h", "bptt")):
    cpu, gpu = epoch1(CPU, row, alg), epoch1(GPU, row, alg)
    for seed in sorted(cpu.keys() & gpu.keys()):
        print(f"| {row} | {alg} | {seed} | {cpu[seed][0]:.2f} | {gpu[seed][0]:.2f} | {cpu[seed][1]:.0f} | "
              f"{gpu[seed][1]:.0f} |")
