"""The figures of the built-in run kinds, drawn from stored results (the paper's figures).

* ``gdu`` runs: ΔEP and −∇BPTT over the steps of the second phase for a few neurons and
  synapses of every layer (Fig. 2, 4, 8–13), and RelMSE per layer for neurons and weights
  (Fig. 3, 15);
* ``train`` runs: train and test error per epoch, EP and BPTT on the same axes, mean ± sample
  std over seeds (Fig. 17–22).

Each run kind offers them as its ``figures`` attribute (the run-kind contract,
harness/api/hookspecs.py); ``harness.results.figures`` holds only the machinery (style, saving, which
runs are finished) and knows no run kind by name.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from typing import Any

from harness.results.aggregate import collect, curves
from harness.results.figures import (
    DOUBLE_COLUMN,
    ELEMENT_COLORS,
    OKABE_ITO,
    SINGLE_COLUMN,
    Drawn,
    config_label,
    new_figure,
    spans_decades,
)
from harness.results.store import RunStore
from harness.suite.spec import RunSpec, Suite

ALGORITHM_COLORS = {"ep": OKABE_ITO["vermillion"], "bptt": OKABE_ITO["blue"]}
ALGORITHM_LABELS = {"ep": "EP", "bptt": "BPTT"}
PROCESS_LABELS: dict[str | None, str] = {"ep": "ΔEP", "bptt": "−∇BPTT"}  # by a record's algorithm (or None)
T_LABEL = "t (steps of the second phase)"


def line_styles(reserved=()):
    """(color, linestyle, marker) for line after line: the palette's colours (those not ``reserved``),
    then again dashed, then dotted, each with its own marker, so that eight estimators on one axis
    stay apart (and a ninth does not run out of styles)."""
    palette = [c for c in ELEMENT_COLORS if c not in reserved]
    markers = "osD^v<>xP*"
    i = 0
    while True:
        yield palette[i % len(palette)], ("-", "--", ":")[(i // len(palette)) % 3], markers[i % len(markers)]
        i += 1


def select_elements(candidate, k: int) -> list[int]:
    """Columns of a ``K × n`` process with the largest Σ_t |ΔEP|, ties by column: reproducible."""
    score = candidate.abs().sum(0).tolist()
    return sorted(range(len(score)), key=lambda j: (-score[j], j))[:k]


def _is_bias(key: str) -> bool:
    return re.search(r"\.\d+$", key) is not None



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
    fig = new_figure(width, 0.35 + 1.45 * nrows)
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

    fig = new_figure(SINGLE_COLUMN, 2.2)
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


#: the panels of a training-curve figure: (curve column, title, y label); the last only where recorded
CURVE_PANELS = (("train_error", "train error", "error (%)"), ("test_error", "test error", "error (%)"),
                ("unsettled", "free phase not settled at T", "test images (%)"))


def curves_figure(frame, title: str):
    """Train | test error (| unsettled share, where runs recorded it) per epoch: per algorithm, the
    mean over seeds (thick) and each seed (thin)."""
    panels = [p for p in CURVE_PANELS
              if p[0] != "unsettled" or ("unsettled" in frame and frame["unsettled"].notna().any())]
    fig = new_figure(DOUBLE_COLUMN, 2.3)
    axes = fig.subplots(1, len(panels), sharey=False)
    styles = line_styles(reserved=ALGORITHM_COLORS.values())
    epochs_all = sorted(frame["epoch"].unique())
    styled: set[str] = set()  # algorithms whose own colour is taken: a sweep's other series get their own
    for label, part in frame.groupby("series", sort=False):
        algo = part["algo"].iloc[0]
        if algo in ALGORITHM_COLORS and algo not in styled:
            color, linestyle, marker = ALGORITHM_COLORS[algo], "-", "o"
        else:
            color, linestyle, marker = next(styles)
        styled.add(algo)
        for ax, (col, _, _) in zip(axes, panels):
            if col not in part:  # no run of the suite recorded it (e.g. eval_train = false everywhere)
                continue
            g = part.dropna(subset=[col]).groupby("epoch")[col]
            if not g.ngroups:
                continue
            mean, std, n = g.mean(), g.std(ddof=1).fillna(0), g.count()
            ax.plot(mean.index, mean.to_numpy(), color=color, linestyle=linestyle, marker=marker, markersize=2.5,
                    label=f"{label} (n={int(n.min())})", gid=f"{col}:{label}", zorder=3)
            if len(mean) > 1 and n.max() > 1:
                # each seed, not a ± std band: a seed that loses a class for 30 epochs makes the
                # band a bimodal blur (below 0 on a log axis); its own line shows what happened
                for _, run in part.dropna(subset=[col]).groupby("run", sort=False):  # a series may hold
                    ax.plot(run["epoch"].to_numpy(), run[col].to_numpy(), color=color,  # two runs of a seed
                            linestyle=linestyle, linewidth=0.5, alpha=0.45,
                            gid=f"{col}:{label}:seed{run['seed'].iloc[0]}")
            elif len(mean) == 1 and std.iloc[0] > 0:
                ax.errorbar(mean.index, mean.to_numpy(), yerr=std.to_numpy(), color=color, capsize=2,
                            linewidth=0.8, gid=f"{col}:{label}:band")
    for ax, (col, name, ylabel) in zip(axes, panels):
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        if len(epochs_all) <= 12:
            ax.set_xticks(epochs_all)
        vals = frame[col].dropna() if col in frame else []
        if spans_decades(vals):
            from matplotlib.ticker import FuncFormatter

            ax.set_yscale("log")
            # plain numbers (3, 20 %), not 3×10⁰; between the decades only 2, 3, 5 × 10ⁿ, and none
            # where the axis spans more than three decades (they would crowd)
            minor = "235" if not spans_decades(vals, 3.0) else ""
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(FuncFormatter(
                lambda v, _, minor=minor: f"{v:g}" if f"{v:.0e}"[0] in minor else ""))
        else:
            ax.set_ylim(bottom=0)
        if ax.lines:
            ax.legend(loc="best")
    fig.suptitle(f"{title}: mean over seeds (markers; n = runs per line) and each seed (thin lines)",
                 x=0.02, ha="left", fontsize=7)
    return fig




def gdu_figures(suite: Suite, results_dir: Path, finished: list[tuple[RunSpec, RunStore]], *,
                elements: int = 4) -> list[Drawn]:
    """The processes of every finished gdu run, and RelMSE per layer for each configuration."""
    drawn = []
    for run, store in finished:
        proc = load_processes(store)
        if proc is not None:
            label = run.id.rsplit("-", 1)[0]  # name, grid values, seed
            drawn.append(Drawn(f"processes-{label}", process_figure(proc, label, k=elements)))
    _, records = collect(suite, results_dir)
    rel = records[(records["kind"] == "gdu") & (records["metric"] == "relmse")]
    labels = {r.id: config_label(r) for r, _ in finished}
    rel = rel.assign(config=rel["run"].map(labels)).dropna(subset=["config"])
    for config, part in rel.groupby("config", sort=False):
        n = part["run"].nunique()
        title = f"{config}" + (f" (n={n} seeds)" if n > 1 else "")
        drawn.append(Drawn(f"relmse-{config}", relmse_figure(part, title)))
    return drawn


def train_figures(suite: Suite, results_dir: Path, finished: list[tuple[RunSpec, RunStore]], *,
                  elements: int = 4) -> list[Drawn]:
    """Train and test error per epoch of each configuration name, one line per algorithm."""
    frame = curves(suite, results_dir)
    done = {r.id: _series(r) for r, _ in finished}
    frame = frame[frame["run"].isin(done)]
    frame = frame.assign(algo=frame["run"].map(lambda i: done[i][0]),
                         series=frame["run"].map(lambda i: done[i][1]))
    return [Drawn(f"errors-{name}", curves_figure(part, str(name))) for name, part in frame.groupby("name", sort=False)]


# -- bias: error against β ------------------------------------------------------------------------
def bias_figures(suite: Suite, results_dir: Path, finished: list[tuple[RunSpec, RunStore]], *,
                 elements: int = 4) -> list[Drawn]:
    """Per configuration name: the relative error of each estimator's update (``grad_error``) against
    β, log–log, one panel per baseline, with guide lines of slope 1 and 2."""
    _, records = collect(suite, results_dir)
    series = {r.id: _series(r)[1] for r, _ in finished}
    rec = records[(records["kind"] == "bias") & (records["metric"] == "grad_error")]
    rec = rec.assign(series=rec["run"].map(series)).dropna(subset=["series"])
    drawn = []
    for name, part in rec.groupby("name", sort=False):
        baselines = list(dict.fromkeys(part["baseline"]))
        fig = new_figure(DOUBLE_COLUMN if len(baselines) > 1 else SINGLE_COLUMN, 2.4)
        axes = fig.subplots(1, len(baselines), squeeze=False)[0]
        for ax, base in zip(axes, baselines):
            styles = line_styles()
            sub = part[part["baseline"] == base]
            for label, line in sub.groupby("series", sort=False):
                g = line.groupby("beta")["value"].mean()
                color, linestyle, marker = next(styles)
                ax.plot(g.index, g.to_numpy(), marker=marker, markersize=2.5, color=color, linestyle=linestyle,
                        label=label, gid=f"{base}:{label}")
            betas = sorted(sub["beta"].unique())
            # the guides pass through the median error at the largest β (not through an outlier)
            anchor = float(sub[sub["beta"] == betas[-1]]["value"].median())
            for slope, style in ((1, ":"), (2, "--")):
                ref = [anchor * (b / betas[-1]) ** slope for b in betas]
                ax.plot(betas, ref, linestyle=style, color="gray", linewidth=0.6, label=f"slope {slope}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("β")
            ax.set_ylabel(f"‖update − (−∇{base.upper()})‖ / ‖∇{base.upper()}‖")
            ax.set_title(f"{name}: against {base.upper()}")
            ax.legend(loc="best")
        drawn.append(Drawn(f"bias-{name}", fig))
    return drawn
