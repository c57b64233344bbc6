"""How often each Table 1 run ended an epoch with its free phase unsettled, and whether EP's and
BPTT's runs of one row differ beyond chance.

Runs record ``unsettled`` per epoch: the percentage of probe test images whose free phase is still
moving after T steps, and ``unsettled_at_init`` before the first step (runs made from 2026-12-02
17:00 on; earlier ones have no such value and are left out). For each row and algorithm: over its
finished seeds, the range at the init and after epoch 1; per seed, the number of epochs above
``--above`` percent, and the range over all epochs. For each row that has both algorithms: an exact
two-sided rank-sum (Mann–Whitney) test of EP's per-seed counts against BPTT's, by enumerating every
split of the pooled counts (ties at mid-ranks); no SciPy needed. With five seeds against three, the
smallest p is 2/56 ≈ 0.036 (every EP seed above every BPTT seed, or below).

    python3 results/table1/unsettled_counts.py            # the committed runs of suites/table1.toml
    python3 results/table1/unsettled_counts.py --above 2 --results-dir /tmp/mine
    python3 results/table1/unsettled_counts.py --suite table1-quick --results-dir results/reruns/threads-1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness.results.compare import rank_sum_p  # noqa: E402
from harness.results.store import finished_runs  # noqa: E402


def unsettled(results: Path) -> dict[tuple[str, str], dict[int, list[float]]]:
    """(row name, algorithm) -> seed -> ``unsettled`` at the init, then after each epoch, for the
    finished runs that record it."""
    out: dict[tuple[str, str], dict[int, list[float]]] = {}
    for config, metrics in finished_runs(results):
        values = [p["unsettled"] for p in metrics["curves"] if p.get("unsettled") is not None]
        init = [r["value"] for r in metrics["final"] if r.get("metric") == "unsettled_at_init"]
        if values and init:
            out.setdefault((config["name"], config["slots"]["algorithm"]["name"]), {})[config["seed"]] = init + values
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results-dir", default=str(ROOT / "results"), help="holds SUITE/ (default: results)")
    parser.add_argument("--suite", default="table1", help="the suite's results to read (default: table1)")
    parser.add_argument("--above", type=float, default=1.0, help="count the epochs above this percentage (1)")
    args = parser.parse_args()
    runs = unsettled(Path(args.results_dir) / args.suite)
    counts: dict[tuple[str, str], list[int]] = {}

    def span(values: list[float]) -> str:
        return f"{min(values):.1f}–{max(values):.1f}"

    print(f"| row | alg | seeds | unsettled (%) at the init | after epoch 1 | over all epochs | epochs above "
          f"{args.above:g} %, per seed |")
    print("|---|---|---|---|---|---|---|")
    for (name, alg), seeds in sorted(runs.items()):
        epochs = {seed: values[1:] for seed, values in seeds.items()}
        counts[(name, alg)] = [sum(v > args.above for v in values) for values in epochs.values()]
        per_seed = ", ".join(f"{c} of {len(v)}" for c, v in zip(counts[(name, alg)], epochs.values()))
        print(f"| {name} | {alg} | {', '.join(map(str, seeds))} | {span([v[0] for v in seeds.values()])} | "
              f"{span([v[0] for v in epochs.values()])} | {span([x for v in epochs.values() for x in v])} | "
              f"{per_seed} |")
    print(f"\n| row | EP: epochs above {args.above:g} % | BPTT | exact rank-sum p (two-sided) |")
    print("|---|---|---|---|")
    for (name, alg), ep in counts.items():
        bptt = counts.get((name, "bptt"))
        if alg == "ep" and bptt:
            print(f"| {name} | {', '.join(map(str, ep))} | {', '.join(map(str, bptt))} | "
                  f"{rank_sum_p([float(c) for c in ep], [float(c) for c in bptt]):.3g} |")


if __name__ == "__main__":
    main()
