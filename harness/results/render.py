"""Rendering summaries as Markdown, LaTeX (booktabs) or CSV with tabulate."""

from __future__ import annotations

import math

import pandas as pd
from tabulate import tabulate

from harness.results.aggregate import COUNTED, table_dims
from harness.results.numbers import mean_std, number, signed
from harness.suite.spec import TableSpec

FORMATS = ("markdown", "latex", "csv")
STD_NOTE = "mean ± sample std (ddof=1) over seeds"
DAGGER_NOTE = "† a cell with fewer finished runs than planned (counts below)"
BLANK_NOTE = "a blank cell: no run of that row records that value"
BLANK_REF_NOTE = "a blank (ref): the reference has no value for that row"

# Non-ASCII marks pass through tabulate's LaTeX escaping as placeholders.
_LATEX_MARKS = {"±": ("QQPMQQ", r"$\pm$"), "Δ": ("QQDELTAQQ", r"$\Delta$"), "†": ("QQDAGQQ", r"$^\dagger$"),
                "—": ("QQDASHQQ", "---"), "→": ("QQTOQQ", r"$\to$"),
                "−": ("QQMINUSQQ", "$-$")}


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}"}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (as tabulate does for table cells)."""
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def _cell(row: pd.Series, fmt: str) -> str:
    n = row.get("n")
    n = 0 if n is None or (isinstance(n, float) and math.isnan(n)) else int(n)
    text = mean_std(row.get("mean"), row.get("std"), n, fmt)
    expected = row.get("expected")
    if expected is not None and not (isinstance(expected, float) and math.isnan(expected)) \
            and row.get("done", 0) < expected:
        text += " †"
    return text


def _ref_cell(row: pd.Series, fmt: str) -> str:
    text = number(row["ref"], fmt)
    if not math.isnan(row.get("ref_std", float("nan"))):
        text += f" ± {number(row['ref_std'], fmt)}"
    return text


def _label(spec: TableSpec, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"  # a cell key that missing runs could not provide (e.g. their layers)
    return str(spec.labels.get(str(value), value))


def layout(spec: TableSpec, stats: pd.DataFrame) -> tuple[list[str], list[list[str]], list[str]]:
    """Headers, body rows and footnotes of a wide table."""
    rows, cols = table_dims(spec)
    has_ref = stats["ref"].notna()
    col_keys = list(dict.fromkeys(tuple(r) for r in stats[cols].itertuples(index=False)))
    if "metric" in cols:  # metrics in the table's order, not the order the records happen to hold them
        at, rank = cols.index("metric"), {m: i for i, m in enumerate(spec.metrics)}
        groups = {g: i for i, g in enumerate(dict.fromkeys(k[:at] + k[at + 1:] for k in col_keys))}
        col_keys.sort(key=lambda k: (groups[k[:at] + k[at + 1:]], rank.get(k[at], len(rank))))
    with_ref = {tuple(r) for r in stats.loc[has_ref, cols].itertuples(index=False)}
    headers = [_label(spec, r) for r in rows]
    for key in col_keys:
        name = " ".join(_label(spec, k) for k in key if str(k))
        headers.append(name)
        if key in with_ref:
            headers += [f"{name} (ref)", f"{name} Δ"]
    body, blank, blank_ref = [], False, False
    row_rank: dict[tuple, int] = {}
    for row_key, group in stats.groupby(rows, sort=False, dropna=False):
        row_key = row_key if isinstance(row_key, tuple) else (row_key,)
        row_rank.setdefault(row_key, len(row_rank))
        line = [_label(spec, k) for k in row_key]
        cells = {tuple(r[c] for c in cols): r for _, r in group.iterrows()}
        for key in col_keys:
            r = cells.get(key)
            fmt = spec.number_format(r.get("metric")) if r is not None else ""
            line.append(_cell(r, fmt) if r is not None else "")
            blank |= r is None
            if key in with_ref:
                if r is not None and not math.isnan(r["ref"]):
                    line += [_ref_cell(r, fmt), signed(r["delta"], fmt)]
                else:
                    line += ["", ""]
                    blank_ref |= r is not None  # (no run: the data cell's note says so)
        body.append(line)
    counts = stats["n"].dropna().astype(int) if "n" in stats else pd.Series(dtype=int)
    counts = counts[counts > 0]
    most = counts.max() if len(counts) else 0
    # how many seeds, from the results (a title typed by hand stays "over 3 seeds" when 2 ran)
    seeds = f"{counts.min()} to {most}" if len(counts) and counts.min() != most else f"{most}"
    notes = [STD_NOTE.replace("over seeds", f"over {seeds} seeds") if most > 1
             else "one run per cell: values without a standard deviation" if most == 1
             else "no finished run yet"]
    flagged = stats[stats["done"] < stats["expected"]] if "expected" in stats else stats.iloc[0:0]
    if len(flagged):  # the † explanation only where a cell carries one
        notes[0] += "; " + DAGGER_NOTE
    if blank:
        notes[0] += "; " + BLANK_NOTE
    if blank_ref:
        notes[0] += "; " + BLANK_REF_NOTE
    run_dims = [d for d in stats.attrs.get("run_dims", rows + cols) if d in flagged.columns and d != "metric"]
    col_rank = {k: i for i, k in enumerate(col_keys)}

    def place(r: pd.Series) -> tuple[int, int]:  # the cell's place in the table: its footnote's place
        return (row_rank.get(tuple(r.get(c) for c in rows), len(row_rank)),
                col_rank.get(tuple(r.get(c) for c in cols), len(col_rank)))

    seen = set()
    for r in sorted((r for _, r in flagged.iterrows()), key=place):
        key = tuple(r.get(d) for d in run_dims)
        if key in seen:
            continue
        seen.add(key)
        other = {k: int(r.get(k, 0) or 0) for k in COUNTED if k not in ("done", "failed")}
        missing = int(r["expected"] - r["done"] - r["failed"] - sum(other.values()))
        where = ", ".join(f"{d}={r.get(d)}" for d in run_dims  # (a key these runs do not have: left out)
                          if not pd.isna(r.get(d)) and str(r.get(d))) or "all runs"
        extra = "".join(f", {n} {k}" for k, n in other.items() if n)
        notes.append(f"† {where}: {int(r['done'])}/{int(r['expected'])} runs done"
                     f" ({int(r['failed'])} failed{extra}, {missing} not run)")
    by_epochs: dict[tuple[int, ...], list[str]] = {}
    for key, epochs in stats.attrs.get("last_epochs", {}).items():
        by_epochs.setdefault(epochs, []).append(" ".join(_label(spec, k) for k in key))
    if by_epochs:
        notes.append("runs end at different epochs: " + "; ".join(
            f"{' and '.join(map(str, e))} ({', '.join(names)})" for e, names in sorted(by_epochs.items())))
    if spec.at_lowest is not None:
        notes.append(f"each run's values at its epoch of lowest {spec.at_lowest} (the first such "
                     "epoch), not after its last")
    notes += stats.attrs.get("setting_notes", [])
    sources = sorted({s for s in stats.get("source", pd.Series(dtype=str)).dropna() if s})
    if sources:
        notes.append("ref: " + "; ".join(sources) + "; Δ = ours − ref")
    return headers, body, notes


def render(spec: TableSpec, stats: pd.DataFrame, fmt: str = "markdown", long: bool = False) -> str:
    """The table as Markdown, LaTeX or CSV, all three the same shape (rows × columns, the cells as
    printed; Markdown and LaTeX add the footnotes); ``long``: CSV in tidy form, one row per cell with
    mean, std, n and the run counts as numbers."""
    if fmt == "csv" and long:
        keep = [c for c in [*table_dims(spec)[0], *table_dims(spec)[1], "mean", "std", "n", "expected",
                            *COUNTED, "ref", "ref_std", "delta", "source"]
                if c in stats.columns]
        return stats[keep].to_csv(index=False)
    headers, body, notes = layout(spec, stats)
    title = spec.title or spec.name
    if fmt == "csv":  # the cells as printed (their † marks included); the footnotes are Markdown's and LaTeX's
        return pd.DataFrame(body, columns=headers).to_csv(index=False)
    if fmt == "markdown":
        table = tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)
        return f"**{title}**\n\n{table}\n\n" + "\n".join(f"_{n}_  " for n in notes) + "\n"
    if fmt == "latex":
        def mark(text: str) -> str:
            for char, (placeholder, _) in _LATEX_MARKS.items():
                text = text.replace(char, placeholder)
            return text

        nkeys = len(table_dims(spec)[0])
        table = tabulate([[mark(c) for c in line] for line in body], headers=[mark(h) for h in headers],
                         tablefmt="latex_booktabs", disable_numparse=True,
                         colalign=["left"] * nkeys + ["right"] * (len(headers) - nkeys))
        caption = latex_escape(mark(title + ". " + "; ".join(notes)))
        out = ("\\begin{table}[t]\n\\centering\n\\caption{" + caption + "}\n" + table + "\n\\end{table}\n")
        for _, (placeholder, latex) in _LATEX_MARKS.items():
            out = out.replace(placeholder, latex)
        return out
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
