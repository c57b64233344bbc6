"""Figures drawn from stored results only (nothing is re-run): the machinery.

Each run kind draws its own figures through its ``figures`` attribute (the run-kind contract in
harness/api/hookspecs.py; the built-in ``gdu`` and ``train`` figures are in
plugins/bench_runs/figures.py); this module knows no run kind by name. It holds the house
style (a paper's column widths, Okabe–Ito colours), which runs are finished, and saving.

matplotlib is optional (``pip install -e ".[plot]"``) and imported lazily. Figures are
``matplotlib.figure.Figure`` objects rendered by Agg, without pyplot, so nothing global (an
interactive backend, open-figure bookkeeping) is touched. :func:`build_figures` returns them
for inspection; :func:`plot_suite` writes them.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.api.components import Registry
from harness.api.run_kind import capability
from harness.results.store import RunStore
from harness.suite.spec import RunSpec, Suite, slug

FORMATS = ("png", "pdf", "svg")
#: Okabe & Ito (2008): distinguishable with every common colour-vision deficiency.
OKABE_ITO = {"blue": "#0072B2", "vermillion": "#D55E00", "green": "#009E73", "purple": "#CC79A7",
             "orange": "#E69F00", "sky": "#56B4E9", "yellow": "#F0E442", "black": "#000000"}
ELEMENT_COLORS = [OKABE_ITO[c] for c in ("blue", "vermillion", "green", "purple", "orange", "sky", "black")]
SINGLE_COLUMN, DOUBLE_COLUMN = 3.3, 6.8  # inches: a paper's column and full text width
STYLE = {"font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "xtick.labelsize": 6,
         "ytick.labelsize": 6, "legend.fontsize": 6, "lines.linewidth": 1.0, "axes.linewidth": 0.6,
         "axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False,
         "svg.fonttype": "none", "pdf.fonttype": 42}
DPI = 200


class PlotError(Exception):
    """A figure that cannot be drawn (matplotlib missing, no finished runs); the CLI prints it."""


class NothingToPlot(PlotError):
    """No finished run of a kind that has figures."""


def load_matplotlib():
    """Import matplotlib on first use, on Agg unless pyplot already chose a backend."""
    try:
        import matplotlib
    except ImportError:
        raise PlotError('figures need matplotlib, an optional extra: pip install -e ".[plot]"') from None
    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    return matplotlib


def new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def spans_decades(values, decades: float = 1.0) -> bool:
    """Whether positive values spread over at least ``decades`` orders of magnitude (→ log axis)."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return bool(vals) and min(vals) > 0 and math.log10(max(vals) / min(vals)) >= decades


def config_label(run: RunSpec) -> str:
    """A run's id without seed and hash: the name and its grid values (one curve or bar group)."""
    return run.id.rsplit("-", 2)[0]


@dataclass
class Drawn:
    """A figure and the file stem it is saved under."""

    stem: str
    figure: Any


# -- the suite ---------------------------------------------------------------------------
def finished(suite: Suite, results_dir: Path, kind: str) -> list[tuple[RunSpec, RunStore]]:
    """The suite's finished runs of one kind, with their stores, in suite order."""
    base = Path(results_dir) / suite.name
    return [(r, RunStore(base / r.id)) for r in suite.runs
            if r.kind == kind and RunStore(base / r.id).is_complete()]


def _registry(registry: Registry | None) -> Registry:
    if registry is None:
        from harness.plugins import get_manager

        registry = get_manager().registry
    return registry


def drawers(suite: Suite, registry: Registry | None = None) -> dict[str, Any]:
    """The suite's run kinds that draw figures (a ``figures`` attribute), in suite order."""
    registry, out = _registry(registry), {}
    for kind in dict.fromkeys(r.kind for r in suite.runs):
        try:
            draw = capability(registry.get("run_kind", kind).factory, "figures")
        except LookupError:
            continue  # validated suites name installed kinds; a filtered registry draws what it has
        if draw is not None:
            out[kind] = draw
    return out


def build_figures(suite: Suite, results_dir: Path, elements: int = 4, registry: Registry | None = None) -> list[Drawn]:
    """Every figure the suite's finished runs allow: each run kind draws its own through its
    ``figures`` attribute (the run-kind contract), in the order the kinds appear in the suite."""
    mpl = load_matplotlib()
    drawn: list[Drawn] = []
    with mpl.rc_context(STYLE):
        for kind, draw in drawers(suite, registry).items():
            done = finished(suite, results_dir, kind)
            if done:
                drawn += draw(suite, results_dir, done, elements=elements)
    return drawn


def nothing_to_draw(suite: Suite, registry: Registry | None = None) -> str:
    kinds = list(drawers(suite, registry))
    return (f"no finished runs of the kinds that draw figures ({', '.join(kinds)})" if kinds
            else "no run kind of this suite draws figures")


def save(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # No dates or versions in the files: the same results give the same bytes to commit.
    metadata = {".png": {"Software": None}, ".pdf": {"CreationDate": None, "Producer": None},
                ".svg": {"Date": None}}.get(path.suffix)
    figure.savefig(path, dpi=DPI, metadata=metadata)
    return path


def plot_suite(suite: Suite, results_dir: Path, output: Path | None = None, fmt: str = "png",
               elements: int = 4, registry: Registry | None = None) -> list[Path]:
    """Write every figure of the suite under ``output`` (default ``<results>/<suite>/figures``)."""
    if fmt not in FORMATS:
        raise PlotError(f"unknown figure format {fmt!r}; use one of {', '.join(FORMATS)}")
    output = Path(output) if output else Path(results_dir) / suite.name / "figures"
    drawn = build_figures(suite, results_dir, elements, registry)
    if not drawn:
        raise NothingToPlot(f"suite {suite.name}: {nothing_to_draw(suite, registry)} under "
                            f"{Path(results_dir) / suite.name}; `bench status {suite.path}` shows what ran")
    return [save(d.figure, output / f"{slug(d.stem)}.{fmt}") for d in drawn]
