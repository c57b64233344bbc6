"""How many seeds of each Table 1 row lost a class, and whether two rows differ beyond chance.

A seed "lost a class" at an epoch when its net predicted some class for no test image after that
epoch (``unpredicted_classes`` > 0 in its recorded curve). For every extra row of the suite (a name
with a parenthesis: "EB-1h (torch init)") against its paper row ("EB-1h"), per algorithm, at
epoch 1, at the shorter row's last epoch, and at any epoch up to that one: the counts k of n
seeds and Fisher's exact test of the 2×2 table (two-sided, and one-sided in the direction
observed), from the hypergeometric distribution; no SciPy needed. With five seeds against three,
the smallest two-sided p-value there is 1/56 ≈ 0.018, the largest effect 0/3 against 5/5.

    python3 results/table1/failure_counts.py            # the committed runs of suites/table1.toml
    python3 results/table1/failure_counts.py --results-dir /tmp/mine
    python3 results/table1/failure_counts.py --pair "EB-1h (authors' settings)" "EB-1h (torch init)"

``--pair A B`` (repeatable) adds row A against row B, for two rows that are not an extra row and its
paper row.
"""

from __future__ import annotations

import argparse
import sys
from math import comb
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness.results.aggregate import epoch_point  # noqa: E402
from harness.results.store import finished_runs  # noqa: E402


def fisher(a: int, n1: int, b: int, n2: int) -> tuple[float, float]:
    """(two-sided, one-sided) p of k = a of n1 against b of n2: the hypergeometric probabilities of the
    tables with the same margins that are at most as likely (two-sided) or at least as extreme in the
    observed direction (one-sided)."""
    total, k = n1 + n2, a + b
    lo, hi = max(0, k - n2), min(k, n1)
    prob = {x: comb(n1, x) * comb(n2, k - x) / comb(total, k) for x in range(lo, hi + 1)}
    two = sum(p for p in prob.values() if p <= prob[a] * (1 + 1e-9))
    expected = n1 * k / total
    one = sum(p for x, p in prob.items() if (x >= a if a >= expected else x <= a))
    return min(two, 1.0), min(one, 1.0)


def curves(results: Path) -> dict[tuple[str, str], dict[int, list[dict]]]:
    """(row name, algorithm) -> seed -> per-epoch records, for the finished runs."""
    out: dict[tuple[str, str], dict[int, list[dict]]] = {}
    for config, metrics in finished_runs(results):
        alg = config["slots"]["algorithm"]["name"]
        out.setdefault((config["name"], alg), {})[config["seed"]] = metrics["curves"]
    return out


def lost(history: list[dict], epoch: int, anywhere: bool = False) -> bool:
    """Whether a class was predicted for no test image after ``epoch`` (``anywhere``: after any epoch up to it)."""
    if anywhere:
        points = [h for h in history if h["epoch"] <= epoch]
    else:
        points = [p] if (p := epoch_point(history, epoch)) is not None else []
    return any(h.get("unpredicted_classes", 0) > 0 for h in points)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results-dir", default=str(ROOT / "results"), help="holds table1/ (default: results)")
    parser.add_argument("--pair", nargs=2, action="append", default=[], metavar=("ROW", "AGAINST"),
                        help="also compare ROW with AGAINST (row names as in the suite); repeatable")
    args = parser.parse_args()
    runs = curves(Path(args.results_dir) / "table1")
    pairs = [(name, base, alg) for name, alg in sorted(runs)
             if (base := name.split(" (")[0]) != name and (base, alg) in runs]
    for row, against in args.pair:
        algs = [alg for name, alg in sorted(runs) if name == row and (against, alg) in runs]
        if not algs:
            parser.error(f"--pair {row!r} {against!r}: no algorithm has finished runs of both rows "
                         f"(rows with finished runs: {', '.join(sorted({n for n, _ in runs}))})")
        pairs += [(row, against, alg) for alg in algs if (row, against, alg) not in pairs]
    print("| row | against | alg | when | row: seeds that lost a class | against: seeds | "
          "Fisher p (two-sided) | p (one-sided) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, base, alg in pairs:
        seeds, other = runs[(name, alg)], runs[(base, alg)]
        last = min(min(len(h) for h in seeds.values()), min(len(h) for h in other.values()))
        for when, epoch, anywhere in (("epoch 1", 1, False), (f"epoch {last}", last, False),
                                      (f"any epoch ≤ {last}", last, True)):
            a = sum(lost(h, epoch, anywhere) for h in seeds.values())
            b = sum(lost(h, epoch, anywhere) for h in other.values())
            two, one = fisher(a, len(seeds), b, len(other))
            print(f"| {name} | {base} | {alg} | {when} | {a} of {len(seeds)} | {b} of {len(other)} | "
                  f"{two:.3g} | {one:.3g} |")


if __name__ == "__main__":
    main()
