"""Figures drawn from stored results only (nothing is re-run).

Researchers judge EP against BPTT by looking, so this draws what the paper
draws (arXiv:1905.13633):

* ``gdu`` runs: ΔEP and −∇BPTT over the steps of the second phase for a few
  neurons and synapses of every layer (Fig. 2, 4, 8–13), and RelMSE per layer
  for neurons and weights (Fig. 3, 15);
* ``train`` runs: train and test error per epoch, EP and BPTT on the same
  axes, mean ± sample std over seeds (Fig. 17–22).

matplotlib is optional (``pip install -e ".[plot]"``) and imported only here,
lazily. Figures are built as ``matplotlib.figure.Figure`` objects rendered by
Agg, without pyplot, so nothing global (an interactive backend, open-figure
bookkeeping) is touched. :func:`build_figures` returns them for inspection;
:func:`plot_suite` writes them.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from .aggregate import collect, curves
from .store import RunStore
from .spec import RunSpec, Suite, slug

FORMATS = ("png", "pdf", "svg")
#: Okabe & Ito (2008): distinguishable with every common colour-vision deficiency.
OKABE_ITO = {"blue": "#0072B2", "vermillion": "#D55E00", "green": "#009E73", "purple": "#CC79A7",
             "orange": "#E69F00", "sky": "#56B4E9", "yellow": "#F0E442", "black": "#000000"}
ELEMENT_COLORS = [OKABE_ITO[c] for c in ("blue", "vermillion", "green", "purple", "orange", "sky", "black")]
ALGORITHM_COLORS = {"ep": OKABE_ITO["vermillion"], "bptt": OKABE_ITO["blue"]}
ALGORITHM_LABELS = {"ep": "EP", "bptt": "BPTT"}
PROCESS_LABELS = {"ep": "ΔEP", "bptt": "−∇BPTT"}
SINGLE_COLUMN, DOUBLE_COLUMN = 3.3, 6.8  # inches: a paper's column and full text width
STYLE = {"font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "xtick.labelsize": 6,
         "ytick.labelsize": 6, "legend.fontsize": 6, "lines.linewidth": 1.0, "axes.linewidth": 0.6,
         "axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False,
         "svg.fonttype": "none", "pdf.fonttype": 42}
DPI = 200
T_LABEL = "t (steps of the second phase)"


class PlotError(click.ClickException):
    """A figure that cannot be drawn (matplotlib missing, no finished runs)."""


class NothingToPlot(PlotError):
    """No finished run of a kind that has figures."""


def _matplotlib():
    """Import matplotlib on first use, on Agg unless pyplot already chose a backend."""
    try:
        import matplotlib
    except ImportError:
        raise PlotError('figures need matplotlib, an optional extra: pip install -e ".[plot]"') from None
    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    return matplotlib


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def spans_decades(values, decades: float = 1.0) -> bool:
    """Whether positive values spread over at least ``decades`` orders of magnitude (→ log axis)."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return bool(vals) and min(vals) > 0 and math.log10(max(vals) / min(vals)) >= decades


def select_elements(candidate, k: int) -> list[int]:
    """Columns of a ``K × n`` process with the largest Σ_t |ΔEP|, ties by column: reproducible."""
    score = candidate.abs().sum(0).tolist()
    return sorted(range(len(score)), key=lambda j: (-score[j], j))[:k]


def _is_bias(key: str) -> bool:
    return re.search(r"\.\d+$", key) is not None


def _config_label(run: RunSpec) -> str:
    """A run's id without seed and hash: the name and its grid values (one curve or bar group)."""
    return run.id.rsplit("-", 2)[0]


def _done(suite: Suite, results_dir: Path, kind: str) -> list[tuple[RunSpec, RunStore]]:
    base = Path(results_dir) / suite.name
    return [(r, RunStore(base / r.id)) for r in suite.runs
            if r.kind == kind and RunStore(base / r.id).is_complete()]


@dataclass
class Drawn:
    """A figure and the file stem it is saved under."""

    stem: str
    figure: Any


# -- GDU: processes -------------------------------------------------------------
def load_processes(store: RunStore) -> dict[str, Any] | None:
    """A GDU run's saved processes; None (and a warning) when absent or damaged."""
    path = store.artifacts / "processes.pt"
    if not path.exists():
        return None
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or not a torch file: draw the other figures
        print(f"warning: {path} cannot be read ({type(exc).__name__}); its figure is skipped", file=sys.stderr)
        return None


def process_figure(proc: dict[str, Any], title: str, k: int = 4, max_cols: int = 4):
    """ΔEP (dashed) over −∇BPTT (solid) for the ``k`` largest elements of every layer,
    neuron layers first, weights after; biases are left to the RelMSE chart."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    neurons = list(proc["neurons"])
    weights = [w for w in proc["weights"] if not _is_bias(w)]
    ncols = max(1, min(max_cols, max(len(neurons), len(weights))))
    nrows_n, nrows_w = math.ceil(len(neurons) / ncols), math.ceil(len(weights) / ncols)
    nrows = max(1, nrows_n + nrows_w)
    width = SINGLE_COLUMN if ncols == 1 else DOUBLE_COLUMN
    fig = _figure(width, 0.35 + 1.45 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    cand_name = PROCESS_LABELS.get(proc.get("algorithm"), f"Δ{proc.get('algorithm')}")
    ref_name = PROCESS_LABELS.get(proc.get("baseline"), f"−∇{proc.get('baseline')}")
    used = set()
    for row0, what, keys in ((0, "neurons", neurons), (nrows_n, "weights", weights)):
        for i, key in enumerate(keys):
            r, c = row0 + i // ncols, i % ncols
            used.add((r, c))
            ax = axes[r][c]
            data = proc[what][key]
            cand, ref = data["candidate"].double(), data["reference"].double()
            t = np.arange(cand.shape[0])
            for j, col in enumerate(select_elements(cand, k)):
                color = ELEMENT_COLORS[j % len(ELEMENT_COLORS)]
                element = int(data["index"][col])
                ax.plot(t, ref[:, col].numpy(), color=color, linestyle="-", gid=f"{what}:{key}:{element}:ref")
                ax.plot(t, cand[:, col].numpy(), color=color, linestyle="--",
                        gid=f"{what}:{key}:{element}:cand")
            ax.set_title(f"{key} ({'neurons' if what == 'neurons' else 'synapses'})")
            ax.axhline(0, color="0.7", linewidth=0.5, zorder=0)
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3), useMathText=True)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if r == nrows - 1 or (r == row0 + (len(keys) - 1) // ncols):
                ax.set_xlabel(T_LABEL)
            if c == 0:
                ax.set_ylabel(f"{cand_name}, {ref_name}\n(update per step)")
    for r in range(nrows):
        for c in range(ncols):
            if (r, c) not in used:
                axes[r][c].set_visible(False)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="0.2", linestyle="--", label=f"{cand_name} (dashed)"),
               Line2D([], [], color="0.2", linestyle="-", label=f"{ref_name} (solid)")]
    fig.legend(handles=handles, loc="outside upper right", ncols=2)
    fig.suptitle(f"{title}: T = {proc.get('T')}, K = {proc.get('K')}; {k} largest elements per layer",
                 x=0.02, ha="left", fontsize=7)
    return fig


# -- GDU: RelMSE bars ---------------------------------------------------------------
def relmse_figure(frame, title: str, metric: str = "relmse"):
    """Bars of a metric per layer, neurons then weights, mean over seeds with ± std whiskers."""
    import numpy as np

    fig = _figure(SINGLE_COLUMN, 2.2)
    ax = fig.subplots()
    x0 = 0
    ticks, labels, values = [], [], []
    for what, color in (("neurons", OKABE_ITO["blue"]), ("weights", OKABE_ITO["vermillion"])):
        part = frame[frame["what"] == what]
        layers = list(dict.fromkeys(part["layer"]))
        if not layers:
            continue
        g = part.groupby("layer", sort=False)["value"]
        mean = g.mean().reindex(layers).to_numpy(float)
        std = g.std(ddof=1).reindex(layers).fillna(0).to_numpy(float)
        xs = np.arange(x0, x0 + len(layers))
        ax.bar(xs, mean, yerr=std if (std > 0).any() else None, color=color, label=what,
               error_kw={"elinewidth": 0.6, "capsize": 1.5}, gid=what)
        ticks += list(xs)
        labels += layers
        values += list(mean)
        x0 += len(layers) + 1  # a gap between neurons and weights
    ax.set_xticks(ticks, labels, rotation=45 if len(labels) > 6 else 0)
    ax.set_xlabel("layer")
    ax.set_ylabel("RelMSE(ΔEP, −∇BPTT)" if metric == "relmse" else metric)
    if spans_decades(values):
        ax.set_yscale("log")
    ax.legend(loc="best", title="processes of")
    ax.set_title(title + ("\nbars: mean over seeds, whiskers: sample std" if any(
        frame.groupby(["what", "layer"])["value"].count() > 1) else ""), fontsize=7)
    return fig


# -- training curves -------------------------------------------------------------------
def _series(run: RunSpec) -> tuple[str, str]:
    """(algorithm, label) of a training run: its algorithm, plus other grid values."""
    attrs = run.attributes()
    algo = str(attrs.get("algorithm", ""))
    extra = [f"{k}={attrs[k]}" for k in run.grid if k != "algorithm"]
    return algo, " ".join([ALGORITHM_LABELS.get(algo, algo)] + extra)


def curves_figure(frame, title: str):
    """Train | test error per epoch, one line per algorithm, ± sample std band over seeds."""
    fig = _figure(DOUBLE_COLUMN, 2.3)
    axes = fig.subplots(1, 2, sharey=False)
    colors = iter(c for c in ELEMENT_COLORS if c not in ALGORITHM_COLORS.values())
    epochs_all = sorted(frame["epoch"].unique())
    for label, part in frame.groupby("series", sort=False):
        algo = part["algo"].iloc[0]
        color = ALGORITHM_COLORS.get(algo) or next(colors)
        for ax, col in zip(axes, ("train_error", "test_error")):
            g = part.dropna(subset=[col]).groupby("epoch")[col]
            if not g.ngroups:
                continue
            mean, std, n = g.mean(), g.std(ddof=1).fillna(0), g.count()
            ax.plot(mean.index, mean.to_numpy(), color=color, marker="o", markersize=2.5,
                    label=f"{label} (n={int(n.min())})", gid=f"{col}:{label}")
            if len(mean) > 1:
                ax.fill_between(mean.index, (mean - std).to_numpy(), (mean + std).to_numpy(), color=color,
                                alpha=0.2, linewidth=0, gid=f"{col}:{label}:band")
            elif std.iloc[0] > 0:
                ax.errorbar(mean.index, mean.to_numpy(), yerr=std.to_numpy(), color=color, capsize=2,
                            linewidth=0.8, gid=f"{col}:{label}:band")
    for ax, col in zip(axes, ("train error", "test error")):
        ax.set_title(col)
        ax.set_xlabel("epoch")
        ax.set_ylabel("error (%)")
        if len(epochs_all) <= 12:
            ax.set_xticks(epochs_all)
        vals = frame[col.replace(" ", "_")].dropna()
        if spans_decades(vals):
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        if ax.lines:
            ax.legend(loc="best")
    fig.suptitle(f"{title}: mean ± sample std over seeds (n = runs per line)", x=0.02, ha="left", fontsize=7)
    return fig


# -- the suite ---------------------------------------------------------------------------
def build_figures(suite: Suite, results_dir: Path, elements: int = 4) -> list[Drawn]:
    """Every figure the suite's finished runs allow, in suite order."""
    mpl = _matplotlib()
    drawn: list[Drawn] = []
    with mpl.rc_context(STYLE):
        gdu = _done(suite, results_dir, "gdu")
        for run, store in gdu:
            proc = load_processes(store)
            if proc is not None:
                label = run.id.rsplit("-", 1)[0]  # name, grid values, seed
                drawn.append(Drawn(f"processes-{label}", process_figure(proc, label, k=elements)))
        if gdu:
            _, records = collect(suite, results_dir)
            rel = records[(records["kind"] == "gdu") & (records["metric"] == "relmse")]
            labels = {r.id: _config_label(r) for r, _ in gdu}
            rel = rel.assign(config=rel["run"].map(labels)).dropna(subset=["config"])
            for config, part in rel.groupby("config", sort=False):
                n = part["run"].nunique()
                title = f"{config}" + (f" (n={n} seeds)" if n > 1 else "")
                drawn.append(Drawn(f"relmse-{config}", relmse_figure(part, title)))
        train = _done(suite, results_dir, "train")
        if train:
            frame = curves(suite, results_dir)
            done = {r.id: _series(r) for r, _ in train}
            frame = frame[frame["run"].isin(done)]
            frame = frame.assign(algo=frame["run"].map(lambda i: done[i][0]),
                                 series=frame["run"].map(lambda i: done[i][1]))
            for name, part in frame.groupby("name", sort=False):
                drawn.append(Drawn(f"errors-{name}", curves_figure(part, str(name))))
    return drawn


def save(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # No dates or versions in the files: the same results give the same bytes to commit.
    metadata = {".png": {"Software": None}, ".pdf": {"CreationDate": None, "Producer": None},
                ".svg": {"Date": None}}.get(path.suffix)
    figure.savefig(path, dpi=DPI, metadata=metadata)
    return path


def plot_suite(suite: Suite, results_dir: Path, output: Path | None = None, fmt: str = "png",
               elements: int = 4) -> list[Path]:
    """Write every figure of the suite under ``output`` (default ``<results>/<suite>/figures``)."""
    if fmt not in FORMATS:
        raise PlotError(f"unknown figure format {fmt!r}; use one of {', '.join(FORMATS)}")
    output = Path(output) if output else Path(results_dir) / suite.name / "figures"
    drawn = build_figures(suite, results_dir, elements)
    if not drawn:
        raise NothingToPlot(f"suite {suite.name}: no finished gdu or train runs under "
                        f"{Path(results_dir) / suite.name}; `bench status {suite.path}` shows what ran")
    return [save(d.figure, output / f"{slug(d.stem)}.{fmt}") for d in drawn]
