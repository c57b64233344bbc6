"""The statistics behind results/dchn-digits/TABLE.md, from the committed runs (five seeds per row and
algorithm): each seed's test error; Welch's test on the final test errors between the algorithms of a row,
between the rows (squared error, cross-entropy) for each algorithm, and between each clamped-output
algorithm and the EP variant it varies; and Fisher's exact test on the number of seeds that ended with a
class predicted for no test image. Run from the repository root:
python3 results/dchn-digits/welch.py"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

from scipy import stats

HERE = Path(__file__).resolve().parent

errors: dict[tuple[str, str], dict[int, float]] = {}
lost: dict[tuple[str, str], dict[int, float]] = {}
for run in sorted(HERE.iterdir()):
    config, metrics = run / "config.json", run / "metrics.json"
    if not metrics.is_file():
        continue
    cfg = json.loads(config.read_text())
    final = {r["metric"]: r["value"] for r in json.loads(metrics.read_text())["final"]}
    key = (cfg["name"], cfg["slots"]["algorithm"]["name"])
    errors.setdefault(key, {})[cfg["seed"]] = final["test_error"]
    lost.setdefault(key, {})[cfg["seed"]] = final["unpredicted_classes"]
for (name, alg), by_seed in sorted(errors.items()):
    print(f"{name} / {alg}: test " + " ".join(f"{by_seed[s]:.2f}" for s in sorted(by_seed))
          + f"; seeds with a class predicted for no test image: {sum(v > 0 for v in lost[(name, alg)].values())}"
          f" of {len(by_seed)}")


def welch(a: tuple[str, str], b: tuple[str, str]) -> None:
    r = stats.ttest_ind(list(errors[a].values()), list(errors[b].values()), equal_var=False)
    print(f"{' / '.join(a)} vs {' / '.join(b)}: Welch t = {r.statistic:.2f}, p = {r.pvalue:.2g}")


names = sorted({n for n, _ in errors})
algorithms = sorted({a for _, a in errors})
for name in names:
    for a, b in combinations(algorithms, 2):
        if (name, a) in errors and (name, b) in errors:
            welch((name, a), (name, b))
# the clamped-output algorithms against the nudged one they vary, on the same squared-error net
for clamped, nudged in (("coupled-centered", "ep-centered"), ("contrastive", "ep")):
    a, b = ("DCHN digits, clamped output", clamped), ("DCHN digits", nudged)
    if a in errors and b in errors:
        welch(a, b)
for alg in algorithms:
    for a, b in combinations(names, 2):
        if (a, alg) in errors and (b, alg) in errors:
            welch((a, alg), (b, alg))
            ka = sum(v > 0 for v in lost[(a, alg)].values())
            kb = sum(v > 0 for v in lost[(b, alg)].values())
            na, nb = len(lost[(a, alg)]), len(lost[(b, alg)])
            p = stats.fisher_exact([[ka, na - ka], [kb, nb - kb]]).pvalue
            print(f"  {alg}: a class lost in {ka} of {na} ({a}) vs {kb} of {nb} ({b}): Fisher's exact p = {p:.2g}")
