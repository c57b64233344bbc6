"""Whether the rows of suites/p2h-free-phase.toml differ beyond seed noise: every pair of rows, their
per-seed test errors, Welch's t-test (harness.results.compare.welch, as `bench compare`) and the exact
rank-sum test (harness.results.compare.rank_sum_p; with 5 seeds against 5 its smallest p is 2/252 ≈
0.0079), both two-sided, which treat the rows' seeds as unrelated. Each seed starts the rows from the
same weights and batches, so the table also counts, seed for seed, where the row ends above the one it
is compared with, and gives the paired sign test of that count (harness.results.compare.sign_test_p;
with 5 pairs its smallest p is 2/32 = 0.0625).

    python3 results/p2h-free-phase/row_tests.py
    python3 results/p2h-free-phase/row_tests.py --results-dir /tmp/mine
"""

from __future__ import annotations

import argparse
import statistics
import sys
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness.results.compare import rank_sum_p, sign_test_p, welch  # noqa: E402
from harness.results.store import finished_runs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results-dir", default=str(ROOT / "results"), help="holds p2h-free-phase/ (default: results)")
    args = parser.parse_args()
    rows: dict[str, dict[int, float]] = {}
    for config, metrics in finished_runs(Path(args.results_dir) / "p2h-free-phase"):
        value = {r["metric"]: r["value"] for r in metrics["final"]}.get("test_error")
        if isinstance(value, (int, float)):
            rows.setdefault(config["name"], {})[config["seed"]] = float(value)
    if len(rows) < 2:
        sys.exit(f"row_tests.py: fewer than two rows finished in {args.results_dir}/p2h-free-phase "
                 "(run `bench run suites/p2h-free-phase.toml` first)")
    print("| row | seeds: test error (%) | against | seeds | Δ of means | Welch p | rank-sum p (exact) "
          "| above it in, seed for seed |")
    print("|---|---|---|---|---|---|---|---|")
    for a, b in combinations(sorted(rows), 2):
        x, y = [rows[a][s] for s in sorted(rows[a])], [rows[b][s] for s in sorted(rows[b])]
        both = sorted(set(rows[a]) & set(rows[b]))
        above = sum(rows[a][s] > rows[b][s] for s in both)
        below = sum(rows[a][s] < rows[b][s] for s in both)
        if min(len(x), len(y)) < 2:
            continue
        mx, my = statistics.mean(x), statistics.mean(y)
        _, _, p = welch(my, statistics.stdev(y), len(y), mx, statistics.stdev(x), len(x))
        print(f"| {a} | {', '.join(f'{v:.2f}' for v in x)} | {b} | {', '.join(f'{v:.2f}' for v in y)} | "
              f"{mx - my:+.2f} | {p:.3g} | {rank_sum_p(x, y):.3g} | {above} of {len(both)} "
              f"(sign test p = {sign_test_p(above, below):.3g}) |")


if __name__ == "__main__":
    main()
