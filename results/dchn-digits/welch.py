"""Welch's test on the final test errors of results/dchn-digits/ (five seeds per algorithm), pair by pair,
and each seed's test error. Run from the repository root: python3 results/dchn-digits/welch.py"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

from scipy import stats

HERE = Path(__file__).resolve().parent

errors: dict[str, dict[int, float]] = {}
for run in sorted(HERE.iterdir()):
    config, metrics = run / "config.json", run / "metrics.json"
    if not metrics.is_file():
        continue
    cfg = json.loads(config.read_text())
    final = {r["metric"]: r["value"] for r in json.loads(metrics.read_text())["final"]}
    errors.setdefault(cfg["slots"]["algorithm"]["name"], {})[cfg["seed"]] = final["test_error"]
for name, by_seed in errors.items():
    print(name, " ".join(f"{by_seed[s]:.2f}" for s in sorted(by_seed)))
for a, b in combinations(sorted(errors), 2):
    r = stats.ttest_ind(list(errors[a].values()), list(errors[b].values()), equal_var=False)
    print(f"{a} vs {b}: Welch t = {r.statistic:.2f}, p = {r.pvalue:.3f}")
