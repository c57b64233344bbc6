"""How often each Table 1 run ended an epoch with its free phase unsettled, and whether EP's and
BPTT's runs of one row differ beyond chance.

Runs record ``unsettled`` per epoch: the percentage of probe test images whose free phase is still
moving after T steps (the suite's runs from 2026-12-02 17:00 on; earlier ones have no such value
and are left out). For each row and algorithm: per finished seed, the range over its epochs and the
number of epochs above ``--above`` percent. For each row that has both algorithms: an exact
two-sided rank-sum (Mann–Whitney) test of EP's per-seed counts against BPTT's, by enumerating every
split of the pooled counts (ties at mid-ranks); no SciPy needed. With five seeds against three, the
smallest p is 2/56 ≈ 0.036 (every EP seed above every BPTT seed, or below).

    python3 results/table1/unsettled_counts.py            # the committed runs of suites/table1.toml
    python3 results/table1/unsettled_counts.py --above 2 --results-dir /tmp/mine
"""

from __future__ import annotations

import argparse
import json
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def rank_sum_p(x: list[float], y: list[float]) -> float:
    """Exact two-sided p of the Mann–Whitney U of ``x`` against ``y``: the share of the splits of the
    pooled values into groups of their sizes whose U is at least as far from n1·n2/2 as the observed."""
    def u(a: list[float], b: list[float]) -> float:
        return sum(1.0 if i > j else 0.5 if i == j else 0.0 for i in a for j in b)

    pooled, n1 = x + y, len(x)
    centre = n1 * len(y) / 2
    observed = abs(u(x, y) - centre)
    splits = list(combinations(range(len(pooled)), n1))
    extreme = 0
    for chosen in splits:
        a = [pooled[i] for i in chosen]
        b = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        extreme += abs(u(a, b) - centre) >= observed - 1e-9
    return extreme / len(splits)


def unsettled(results: Path) -> dict[tuple[str, str], dict[int, list[float]]]:
    """(row name, algorithm) -> seed -> per-epoch ``unsettled``, for the finished runs that record it."""
    out: dict[tuple[str, str], dict[int, list[float]]] = {}
    for status in sorted(results.glob("*/status.json")):
        run = status.parent
        if json.loads(status.read_text()).get("status") != "done":
            continue
        config = json.loads((run / "config.json").read_text())
        curve = json.loads((run / "metrics.json").read_text()).get("curves", [])
        values = [p["unsettled"] for p in curve if p.get("unsettled") is not None]
        if values:
            out.setdefault((config["name"], config["slots"]["algorithm"]["name"]), {})[config["seed"]] = values
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results-dir", default=str(ROOT / "results"), help="holds table1/ (default: results)")
    parser.add_argument("--above", type=float, default=1.0, help="count the epochs above this percentage (1)")
    args = parser.parse_args()
    runs = unsettled(Path(args.results_dir) / "table1")
    counts: dict[tuple[str, str], list[int]] = {}
    print(f"| row | alg | seeds | unsettled (%), min–max over epochs | epochs above {args.above:g} %, per seed |")
    print("|---|---|---|---|---|")
    for (name, alg), seeds in sorted(runs.items()):
        counts[(name, alg)] = [sum(v > args.above for v in values) for values in seeds.values()]
        low, high = min(min(v) for v in seeds.values()), max(max(v) for v in seeds.values())
        per_seed = ", ".join(f"{c} of {len(v)}" for c, v in zip(counts[(name, alg)], seeds.values()))
        print(f"| {name} | {alg} | {', '.join(map(str, seeds))} | {low:.1f}–{high:.1f} | {per_seed} |")
    print(f"\n| row | EP: epochs above {args.above:g} % | BPTT | exact rank-sum p (two-sided) |")
    print("|---|---|---|---|")
    for (name, alg), ep in counts.items():
        bptt = counts.get((name, "bptt"))
        if alg == "ep" and bptt:
            print(f"| {name} | {', '.join(map(str, ep))} | {', '.join(map(str, bptt))} | "
                  f"{rank_sum_p([float(c) for c in ep], [float(c) for c in bptt]):.3g} |")


if __name__ == "__main__":
    main()
