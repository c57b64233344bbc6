"""Each seed's course over its epochs, for the rows named: the test (and train) error after the last
epoch, the lowest and highest test error over the epochs and where the lowest was, the range of the
probe images left unsettled after T steps, the epochs after which a class was predicted for no test
image, and the wall seconds of its epochs (median and longest: a paused or shared machine shows
there, and the cost tables' mean s/epoch includes it). What `bench table` summarises over seeds,
seen seed by seed (docs/table1.md section 6).

    python3 results/table1/seed_courses.py --row "P-2h (authors' settings)"
    python3 results/table1/seed_courses.py --row "P-2h (torch init)" --row P-2h --results-dir /tmp/mine
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness.results.store import finished_runs  # noqa: E402


def course(curves: list[dict[str, Any]]) -> dict[str, str]:
    """One finished run's curves (one dict per epoch) as the table's cells."""
    tests = [(p["test_error"], p["epoch"]) for p in curves if p.get("test_error") is not None]
    if not tests:
        raise ValueError("the run records no test error per epoch")
    last = curves[-1]
    final = f"{last['test_error']:.2f} %"
    if last.get("train_error") is not None:
        final += f" ({last['train_error']:.2f} %)"
    (low, at), (high, _) = min(tests), max(tests)
    unsettled = [p["unsettled"] for p in curves if p.get("unsettled") is not None]
    lost = [str(p["epoch"]) for p in curves if (p.get("unpredicted_classes") or 0) > 0]
    seconds = [(p["seconds"], p["epoch"]) for p in curves if p.get("seconds") is not None]
    longest = max(seconds) if seconds else None
    return {"seconds": f"{statistics.median(s for s, _ in seconds):.0f} (longest {longest[0]:.0f}, epoch {longest[1]})"
            if longest else "not recorded",
            "final": final, "range": f"{low:.2f} % (epoch {at}) to {high:.2f} %",
            "unsettled": f"{min(unsettled):.1f}–{max(unsettled):.1f} %" if unsettled else "not recorded",
            "lost": ", ".join(lost) or "none"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--row", action="append", required=True, help="a row's name in the suite (repeatable)")
    parser.add_argument("--results-dir", default=str(ROOT / "results"), help="holds SUITE/ (default: results)")
    parser.add_argument("--suite", default="table1", help="the suite's results to read (default: table1)")
    args = parser.parse_args()
    rows: dict[tuple[str, str, int], dict[str, str]] = {}
    for config, metrics in finished_runs(Path(args.results_dir) / args.suite):
        if config["name"] in args.row:
            key = (config["name"], config["slots"]["algorithm"]["name"], config["seed"])
            rows[key] = course(metrics["curves"])
    missing = [row for row in args.row if not any(key[0] == row for key in rows)]
    if missing:
        sys.exit(f"no finished run of {missing} in {Path(args.results_dir) / args.suite} "
                 "(`bench status` lists the suite's runs; check the row's name)")
    print("| row | alg | seed | after the last epoch: test (train) | test error over the epochs "
          "| probe images unsettled after T steps | a class lost after epochs | s per epoch: median (longest) |")
    print("|---|---|---|---|---|---|---|---|")
    order = sorted(rows, key=lambda key: (args.row.index(key[0]), key[1] != "ep", key[2]))  # EP first
    for name, alg, seed in order:
        cells = rows[(name, alg, seed)]
        print(f"| {name} | {alg} | {seed} | {cells['final']} | {cells['range']} | {cells['unsettled']} "
              f"| {cells['lost']} | {cells['seconds']} |")


if __name__ == "__main__":
    main()
