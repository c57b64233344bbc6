"""Comparing two result sets cell by cell: did a change move a number beyond seed noise?

Each table cell of the suite (mean, sample std and n over seeds) is summarised in both result
sets. When both sides ran the same seeds (two or more), the per-seed differences are tested with a
paired t-test (a seed starts both sides from the same weights and batches, so pairing removes the
seed's own spread); otherwise the means are tested with Welch's t-test (unequal variances); both
two-sided. A tested cell is flagged when the difference is beyond ``threshold`` in absolute value
*and* its p-value is below ``alpha``. A cell with one run on a side cannot be tested: it is flagged
when its difference alone is beyond ``threshold`` (so a one-seed suite, such as Table 3, is
compared digit by digit at the default threshold 0), and says so. The t distribution's tail comes
from the regularised incomplete beta function (no SciPy needed). For a few seeds against a few,
:func:`rank_sum_p` gives the exact rank-sum test, which assumes no normal spread (the analysis
scripts beside the results use it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import pandas as pd

from harness.results.numbers import mean_std, signed
from harness.suite.spec import DEFAULT_FORMAT


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| ≥ |t|) for Student's t with ``df`` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def welch(m1: float, s1: float, n1: int, m2: float, s2: float, n2: int) -> tuple[float, float, float]:
    """Welch's t statistic, its degrees of freedom and two-sided p-value for mean 2 − mean 1."""
    v1, v2 = s1 * s1 / n1, s2 * s2 / n2
    if v1 + v2 == 0.0:
        return (0.0, math.inf, 1.0) if m1 == m2 else (math.copysign(math.inf, m2 - m1), math.inf, 0.0)
    t = (m2 - m1) / math.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / ((v1 * v1 / (n1 - 1) if n1 > 1 else 0.0) + (v2 * v2 / (n2 - 1) if n2 > 1 else 0.0))
    return t, df, t_two_sided_p(t, df)


def paired(diffs: list[float]) -> tuple[float, float, float]:
    """The paired t statistic of per-seed differences, its degrees of freedom and two-sided p-value."""
    n = len(diffs)
    mean = sum(diffs) / n
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1)
    if var == 0.0:
        return (0.0, n - 1, 1.0) if mean == 0.0 else (math.copysign(math.inf, mean), n - 1, 0.0)
    t = mean / math.sqrt(var / n)
    return t, n - 1, t_two_sided_p(t, n - 1)


def rank_sum_p(x: list[float], y: list[float]) -> float:
    """Exact two-sided p of the Mann–Whitney U of ``x`` against ``y``: the share of the splits of the
    pooled values into groups of their sizes whose U is at least as far from n1·n2/2 as the observed."""
    def u(a: list[float], b: list[float]) -> float:
        return sum(1.0 if i > j else 0.5 if i == j else 0.0 for i in a for j in b)

    pooled, n1 = x + y, len(x)
    centre = n1 * len(y) / 2
    observed = abs(u(x, y) - centre)
    extreme = 0
    for chosen in combinations(range(len(pooled)), n1):
        a = [pooled[i] for i in chosen]
        b = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        extreme += abs(u(a, b) - centre) >= observed - 1e-9
    return extreme / math.comb(len(pooled), n1)


def sign_test_p(above: int, below: int) -> float:
    """Exact two-sided p of the sign test: seeds run in pairs (the same seed on both sides), ``above`` of
    them higher on one side and ``below`` lower (ties left out). Twice the binomial(n, ½) tail of the
    smaller count, capped at 1; with 5 pairs its smallest p is 2/32 = 0.0625."""
    n, k = above + below, min(above, below)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


@dataclass
class Comparison:
    frame: pd.DataFrame  # keys, then base/new mean, std, n, delta, p, changed, moved (a cost that changed)
    keys: list[str]

    @property
    def changed(self) -> pd.DataFrame:
        return self.frame[self.frame["changed"]]


def compare(base: pd.DataFrame, new: pd.DataFrame, keys: list[str], threshold: float, alpha: float,
            seeds: tuple[dict, dict] | None = None, costs: frozenset[str] = frozenset()) -> Comparison:
    """Cell by cell (``keys``: the table's row and column keys, metric included) over two summaries
    (:func:`harness.results.aggregate.summarize` frames); ``seeds``: each side's per-seed values by cell
    (:func:`harness.results.aggregate.seed_values`), for the paired test. A cell of a metric in ``costs``
    (a time, a throughput: what the run kinds declare as measuring the machine) is tested like the others
    but never ``changed``: ``moved`` says whether it would have been."""
    base_seeds, new_seeds = seeds or ({}, {})
    cols = [*keys, "mean", "std", "n"]
    both = base[cols].merge(new[cols], on=keys, how="outer", suffixes=("_base", "_new"))
    rows = []
    for _, r in both.iterrows():
        n1 = int(r["n_base"]) if r["n_base"] == r["n_base"] else 0  # NaN: no run on that side
        n2 = int(r["n_new"]) if r["n_new"] == r["n_new"] else 0
        if not n1 and not n2:
            continue  # a cell neither result set has: nothing to compare
        delta = r["mean_new"] - r["mean_base"] if n1 and n2 else float("nan")
        p, test = float("nan"), "—"
        key = tuple(r[k] for k in keys)
        s1, s2 = base_seeds.get(key, {}), new_seeds.get(key, {})
        if n1 > 1 and n2 > 1 and len(s1) == n1 and s1.keys() == s2.keys():
            p, test = paired([s2[s] - s1[s] for s in sorted(s1)])[2], "paired"
        elif n1 > 1 and n2 > 1:
            p, test = welch(r["mean_base"], r["std_base"], n1, r["mean_new"], r["std_new"], n2)[2], "Welch"
        elif n1 and n2:
            test = "none (n=1)"
        if test == "none (n=1)":  # no test possible: the difference alone, against the threshold
            changed = bool(abs(delta) > threshold)
        else:
            changed = bool(p == p and p < alpha and abs(delta) > threshold)
        cost = r.get("metric") in costs
        rows.append({**{k: r[k] for k in keys}, "base": r["mean_base"], "base_std": r["std_base"], "base_n": n1,
                     "new": r["mean_new"], "new_std": r["std_new"], "new_n": n2, "delta": delta, "p": p,
                     "test": test, "changed": changed and not cost, "moved": changed and cost})
    return Comparison(pd.DataFrame(rows, columns=[*keys, "base", "base_std", "base_n", "new", "new_std", "new_n",
                                                  "delta", "p", "test", "changed", "moved"]), keys)


def render(comp: Comparison, number_format: Callable[[Any], str] = lambda metric: DEFAULT_FORMAT) -> str:
    """The comparison as a Markdown table; ``number_format`` gives each metric's format spec (the
    suite table's, so that a cell reads as ``bench table`` prints it)."""
    from tabulate import tabulate

    def cell(mean, std, n, fmt):
        return mean_std(mean, std, n, fmt) + (f" (n={n})" if n else "")

    body = []
    for _, r in comp.frame.iterrows():
        fmt = number_format(r.get("metric"))
        body.append([*(str(r[k]) for k in comp.keys), cell(r["base"], r["base_std"], r["base_n"], fmt),
                     cell(r["new"], r["new_std"], r["new_n"], fmt), signed(r["delta"], fmt),
                     "—" if r["p"] != r["p"] else f"{r['p']:.3g}", r["test"],
                     "changed" if r["changed"] else "moved (a cost: not counted)" if r["moved"] else ""])
    return tabulate(body, headers=[*comp.keys, "base", "new", "Δ (new − base)", "p", "test", ""], tablefmt="github",
                    disable_numparse=True)
