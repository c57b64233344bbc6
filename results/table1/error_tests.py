"""Whether Table 1's test errors differ beyond seed noise: our rows against the paper's values, and each
extra row ("EB-1h (torch init)") against the row it varies ("EB-1h"; the authors'-settings row also against
the torch-init row), per algorithm.

Welch's t-test (two-sided; harness.results.compare.welch, the test `bench compare` uses) on the test errors
of the finished seeds, and, against the paper, on its mean ± std as transcribed in the suite's
`[[references]]` (five trials each, by the paper's text; the values are marked `checked = false`:
they were not compared with the PDF). Only rows trained as long as the row they vary are compared.
Five seeds against five: a p-value says how often seed noise alone would give such a gap, not why
the rows differ. Between two of our rows, the exact rank-sum test of their seeds is given too
(harness.results.compare.rank_sum_p): it assumes no normal spread, which a row whose seeds diverge
(a lost class, an unstable run) does not have; with 3 seeds against 5 its smallest p is 2/56.

By default the final test errors (after the last epoch). `--epoch N` compares the values after epoch N
(the table `p2h_epoch10`), and `--at-lowest train_error` each run's value at its epoch of lowest training
error (the table `lowest_train`; harness.results.aggregate.epoch_point picks it, as for the tables). The
paper's values are final ones: beside a per-epoch comparison they answer "would the paper's figure have
been reached by then", not "is this the paper's measurement".

    python3 results/table1/error_tests.py            # the committed runs of suites/table1.toml
    python3 results/table1/error_tests.py --at-lowest train_error
    python3 results/table1/error_tests.py --epoch 10 --results-dir /tmp/mine
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness.results.aggregate import epoch_point  # noqa: E402
from harness.results.compare import rank_sum_p, welch  # noqa: E402
from harness.results.store import finished_runs  # noqa: E402

PAPER_TRIALS = 5


EPOCHS: dict[tuple[str, str], int] = {}  # (row name, algorithm) -> epochs trained
#: extra rows that vary another extra row, compared with it too (authors' settings = torch init and their
#: code's other settings: dt 0.2 for P-2h; no σ'(s⁰) and K + 1 BPTT steps for EB-1h)
VARIES = {"P-2h (authors' settings)": "P-2h (torch init)", "EB-1h (authors' settings)": "EB-1h (torch init)"}


def finals(results: Path, epoch: int | None = None,
           lowest: str | None = None) -> dict[tuple[str, str], dict[int, float]]:
    """(row name, algorithm) -> seed -> test error (%) of the finished runs: final, or at ``epoch``, or at
    the epoch where ``lowest`` is lowest (a run without that point is left out)."""
    out: dict[tuple[str, str], dict[int, float]] = {}
    for config, metrics in finished_runs(results):
        if epoch is None and lowest is None:
            value = {r["metric"]: r["value"] for r in metrics["final"]}.get("test_error")
        else:
            point = epoch_point(metrics.get("curves") or [], epoch, lowest)
            value = None if point is None else point.get("test_error")
        if not isinstance(value, (int, float)):
            continue
        key = (config["name"], config["slots"]["algorithm"]["name"])
        out.setdefault(key, {})[config["seed"]] = float(value)
        EPOCHS[key] = config["params"]["epochs"] if epoch is None else epoch
    return out


def paper() -> dict[tuple[str, str], tuple[float, float]]:
    suite = tomllib.loads((ROOT / "suites" / "table1.toml").read_text())
    out = {}
    for ref in suite.get("references", []):
        cols = ref["columns"]
        for row in ref["rows"]:
            v = dict(zip(cols, row))
            out[(v["name"], v["algorithm"])] = (float(v["test_error"]), float(v["test_error_std"]))
    return out


def describe(values: list[float]) -> str:
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f} (n={len(values)})"


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"an epoch is a whole number from 1, not {text!r}")
    return int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results-dir", default=str(ROOT / "results"), help="holds table1/ (default: results)")
    at = parser.add_mutually_exclusive_group()
    at.add_argument("--epoch", type=positive, help="compare the test errors after this epoch instead of the final ones")
    at.add_argument("--at-lowest", metavar="METRIC", help="compare each run's test error at its epoch of lowest "
                    "METRIC (e.g. train_error) instead of the final one")
    args = parser.parse_args()
    ours, refs = finals(Path(args.results_dir) / "table1", args.epoch, args.at_lowest), paper()
    if not ours:
        sys.exit(f"error_tests.py: no finished run in {args.results_dir}/table1 has a test error "
                 + ("at that point" if args.epoch is not None or args.at_lowest else "")
                 + (f" (is {args.at_lowest!r} a metric of the runs' curves, such as train_error?)"
                    if args.at_lowest else ""))
    if args.epoch is not None or args.at_lowest is not None:
        when = f"after epoch {args.epoch}" if args.epoch is not None else f"at the epoch of lowest {args.at_lowest}"
        print(f"Test errors {when} of each run; the paper's are final values.\n")
    print("| row | algorithm | ours | compared with | theirs | Δ | Welch t | df | p (two-sided) | rank-sum p (exact) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (name, alg), seeds in sorted(ours.items()):
        values = list(seeds.values())
        if len(values) < 2:
            continue
        m, s = statistics.mean(values), statistics.stdev(values)
        base = name.split(" (")[0]
        if EPOCHS[(name, alg)] != EPOCHS.get((base, alg), EPOCHS[(name, alg)]):
            print(f"| {name} | {alg} | {describe(values)} | — | {EPOCHS[(name, alg)]} epochs, not {base}'s "
                  f"{EPOCHS[(base, alg)]}: compared per epoch by failure_counts.py | | | | | |")
            continue
        if (base, alg) in refs:
            pm, ps = refs[(base, alg)]
            t, df, p = welch(pm, ps, PAPER_TRIALS, m, s, len(values))
            print(f"| {name} | {alg} | {describe(values)} | the paper's {base} | {pm:.2f} ± {ps:.2f} (n=5) | "
                  f"{m - pm:+.2f} | {t:.2f} | {df:.1f} | {p:.3g} | |")
        for row in ([base] if base != name else []) + ([VARIES[name]] if name in VARIES else []):
            if len(other := list(ours.get((row, alg), {}).values())) >= 2:
                t, df, p = welch(statistics.mean(other), statistics.stdev(other), len(other), m, s, len(values))
                print(f"| {name} | {alg} | {describe(values)} | our {row} | {describe(other)} | "
                      f"{m - statistics.mean(other):+.2f} | {t:.2f} | {df:.1f} | {p:.3g} | "
                      f"{rank_sum_p(values, other):.3g} |")


if __name__ == "__main__":
    main()
