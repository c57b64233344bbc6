"""Figures and reports from small stored results written by hand (nothing is trained)."""

from __future__ import annotations

import os
import re
import textwrap

import pytest
import torch
from click.testing import CliRunner

pytest.importorskip("matplotlib")

from bench_runs import figures as run_figures  # noqa: E402
from harness.cli.commands import main  # noqa: E402
from harness.plugins import PluginManager  # noqa: E402
from harness.results import figures  # noqa: E402
from harness.results.report import write_report  # noqa: E402
from harness.results.store import write_json  # noqa: E402
from harness.suite.load import load_suite  # noqa: E402

SUITE = textwrap.dedent("""
    name = "figs"
    description = "hand-written results for the figure tests"

    [defaults]
    device = "cpu"
    dataset = { name = "blobs", input_size = 4, num_classes = 3, n_train = 40, n_test = 20 }
    model = { name = "p", input_size = 4, output_size = 3, hidden = [6] }
    T = 20
    K = 5

    [[runs]]
    name = "gdu-p"
    kind = "gdu"
    seeds = [0, 1]
    metrics = ["relmse", "sign"]
    algorithm = { name = "ep", beta = 0.01 }

    [[runs]]
    name = "P-tiny"
    kind = "train"
    seeds = [0, 1, 2]
    epochs = 3
    grid.algorithm = [{ name = "ep", beta = 0.1 }, "bptt"]

    [[references]]
    source = "made up for the test"
    columns = ["name", "algorithm", "test_error"]
    rows = [["P-tiny", "ep", 5.0]]

    [tables.gdu]
    title = "RelMSE per layer"
    where = { kind = "gdu" }
    rows = ["name", "layer"]
    columns = ["what", "metric"]

    [tables.errors]
    title = "Tiny training errors"
    where = { kind = "train" }
    rows = ["name"]
    columns = ["algorithm", "metric"]
    metrics = ["test_error"]
    format = ".2f"
""")

K = 5
NEURONS = {"s0": 3, "s1": 6}
WEIGHTS = {"W01": 18, "W01.1": 3, "W12": 24, "W12.1": 6}
# RelMSE per layer, spanning three decades, so the bar chart must be on a log scale.
RELMSE = {"s0": 1e-4, "s1": 1e-3, "W01": 1e-2, "W01.1": 2e-2, "W12": 1e-1, "W12.1": 5e-2}
ENV = {"python": "3.11.7", "torch": "2.13.0+cpu", "cuda": None, "device": "cpu", "device_name": "x86_64",
       "platform": "Linux", "cpu_count": 2, "torch_threads": 2, "git_commit": "abc1234",
       "plugins": {"models": "eqprop-bench 0.1.0"}}
# test error (%) per epoch of seed 0; other seeds add `seed`; BPTT is 1 point lower
TEST_ERRORS = [60.0, 20.0, 6.0]


def process(n: int, big: int, seed: int) -> dict:
    """A K × n process pair whose element ``big`` has by far the largest |ΔEP|."""
    g = torch.Generator().manual_seed(seed)
    cand = 0.01 * torch.randn(K, n, generator=g, dtype=torch.float64)
    cand[:, big] = torch.linspace(1.0, 0.2, K, dtype=torch.float64)
    ref = cand + 0.001 * torch.randn(K, n, generator=g, dtype=torch.float64)
    return {"shape": (n,), "index": torch.arange(n) * 2, "candidate": cand, "reference": ref}


def write_run(base, run, status="done", final=(), curves=(), processes=None):
    d = base / run.id
    write_json(d / "config.json", {"suite": "figs", "suite_file": "suite.toml", **run.config()})
    write_json(d / "environment.json", ENV)
    write_json(d / "metrics.json", {"final": list(final), "curves": list(curves)})
    if processes is not None:
        (d / "artifacts").mkdir(parents=True)
        torch.save(processes, d / "artifacts" / "processes.pt")
    write_json(d / "status.json", {"status": status, "finished": "2026-01-01T00:00:00+00:00", "seconds": 1.5,
                                   "error": "RuntimeError: boom" if status == "failed" else ""})


@pytest.fixture
def stored(tmp_path):
    """(suite, results dir) with two gdu seeds and 3 × 2 train runs, one of them failed."""
    path = tmp_path / "suite.toml"
    path.write_text(SUITE)
    manager = PluginManager()
    manager.load_entry_points()
    suite = load_suite(path, manager.registry)
    results = tmp_path / "results"
    base = results / suite.name
    for run in suite.runs:
        if run.kind == "gdu":
            final = [{"metric": m, "value": v * (1 + run.seed) if m == "relmse" else 1.0, "layer": layer,
                      "what": "neurons" if layer.startswith("s") else "weights"}
                     for layer, v in RELMSE.items() for m in ("relmse", "sign")]
            proc = {"T": 20, "K": K, "algorithm": "ep", "baseline": "bptt",
                    "neurons": {k: process(n, n - 1, i) for i, (k, n) in enumerate(NEURONS.items())},
                    "weights": {k: process(n, 1, 9 + i) for i, (k, n) in enumerate(WEIGHTS.items())}}
            write_run(base, run, final=final, processes=proc)
        else:
            algo = run.attributes()["algorithm"]
            if algo == "bptt" and run.seed == 2:
                write_run(base, run, status="failed")  # must not be drawn
                continue
            shift = run.seed - (1.0 if algo == "bptt" else 0.0)
            curve = [{"epoch": e + 1, "train_error": v / 2 + shift, "test_error": v + shift, "seconds": 1.0,
                      "samples_per_s": 40.0} for e, v in enumerate(TEST_ERRORS)]
            write_run(base, run, final=[{"metric": "test_error", "value": curve[-1]["test_error"]}], curves=curve)
    return suite, results


def by_stem(drawn):
    return {d.stem: d.figure for d in drawn}


def test_select_elements_is_reproducible_with_ties_by_index():
    cand = torch.tensor([[1.0, -3.0, 2.0, 3.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0]])
    assert run_figures.select_elements(cand, 3) == [1, 3, 0]  # |Σ| 3, 3 (tie: lower index first), 2 vs 2
    assert run_figures.select_elements(cand, 10) == [1, 3, 0, 2, 4]


def test_process_figures_draw_both_processes_of_the_largest_elements(stored):
    suite, results = stored
    figs = by_stem(figures.build_figures(suite, results, elements=2))
    assert {"processes-gdu-p-s0", "processes-gdu-p-s1"} <= set(figs)
    fig = figs["processes-gdu-p-s0"]
    axes = [ax for ax in fig.axes if ax.get_visible()]
    # neurons s0, s1 and weights W01, W12: biases are left to the bar chart
    assert [ax.get_title() for ax in axes] == ["s0 (neurons)", "s1 (neurons)", "W01 (synapses)", "W12 (synapses)"]
    for ax in axes:
        gids = [line.get_gid() for line in ax.lines if line.get_gid()]
        assert len(gids) == 4  # 2 elements × (ΔEP, −∇BPTT)
        assert sum(g.endswith(":cand") for g in gids) == 2
        assert ax.get_xlabel() == run_figures.T_LABEL
        dashed = [line for line in ax.lines if (line.get_gid() or "").endswith(":cand")]
        assert all(line.get_linestyle() == "--" for line in dashed)
        assert len(dashed[0].get_xdata()) == K
    # the largest element first, identified by its stored index (2 × column)
    s1 = axes[1]
    first = [line.get_gid() for line in s1.lines if line.get_gid()][0]
    assert first == f"neurons:s1:{2 * (NEURONS['s1'] - 1)}:ref"
    assert axes[2].lines[1].get_gid() == "weights:W01:2:cand"
    assert "ΔEP" in axes[0].get_ylabel() and "−∇BPTT" in axes[0].get_ylabel()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["ΔEP (dashed)", "−∇BPTT (solid)"]
    assert fig.get_figwidth() == pytest.approx(figures.DOUBLE_COLUMN)


def test_relmse_bars_per_layer_mean_over_seeds_on_a_log_scale(stored):
    suite, results = stored
    fig = by_stem(figures.build_figures(suite, results))["relmse-gdu-p"]
    ax = fig.axes[0]
    bars = ax.patches
    assert len(bars) == len(RELMSE)  # every layer, biases included
    heights = [b.get_height() for b in bars]
    assert heights == pytest.approx([v * 1.5 for v in RELMSE.values()])  # mean of ×1 and ×2
    assert [t.get_text() for t in ax.get_xticklabels()] == list(RELMSE)
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["neurons", "weights"]
    assert "RelMSE" in ax.get_ylabel() and ax.get_xlabel() == "layer"
    assert "n=2 seeds" in ax.get_title()
    assert fig.get_figwidth() == pytest.approx(figures.SINGLE_COLUMN)


def test_relmse_bars_stay_linear_when_values_do_not_span_decades():
    import pandas as pd

    frame = pd.DataFrame({"layer": ["s0", "W01"], "what": ["neurons", "weights"], "value": [0.2, 0.3]})
    with figures.load_matplotlib().rc_context(figures.STYLE):
        ax = run_figures.relmse_figure(frame, "t").axes[0]
    assert ax.get_yscale() == "linear"


def test_error_curves_mean_and_each_seed_skip_failed_runs(stored):
    suite, results = stored
    figs = by_stem(figures.build_figures(suite, results))
    assert set(figs) == {"processes-gdu-p-s0", "processes-gdu-p-s1", "relmse-gdu-p", "errors-P-tiny"}
    train_ax, test_ax = figs["errors-P-tiny"].axes
    assert (train_ax.get_title(), test_ax.get_title()) == ("train error", "test error")
    for ax in (train_ax, test_ax):
        assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "error (%)"
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["EP (n=3)", "BPTT (n=2)"]
        assert not ax.collections  # no ± std band: each seed is drawn instead
    lines = {line.get_gid(): line for line in test_ax.lines}
    assert set(lines) == {"test_error:EP", "test_error:BPTT", *(f"test_error:EP:seed{s}" for s in (0, 1, 2)),
                          "test_error:BPTT:seed0", "test_error:BPTT:seed1"}
    ep, bptt = lines["test_error:EP"], lines["test_error:BPTT"]
    assert list(ep.get_xdata()) == [1, 2, 3]
    assert list(ep.get_ydata()) == pytest.approx([v + 1.0 for v in TEST_ERRORS])  # mean of seeds 0, 1, 2
    assert list(bptt.get_ydata()) == pytest.approx([v - 0.5 for v in TEST_ERRORS])  # seeds 0, 1 only
    seeds = [list(lines[f"test_error:EP:seed{s}"].get_ydata()) for s in (0, 1, 2)]
    assert [sum(v) / 3 for v in zip(*seeds)] == pytest.approx(list(ep.get_ydata()))
    assert seeds[0] != seeds[1] and lines["test_error:EP:seed0"].get_color() == ep.get_color()
    assert ep.get_color().lower() != bptt.get_color().lower()
    assert test_ax.get_yscale() == "log"  # 5 % … 62 % spans a decade
    major, minor = test_ax.yaxis.get_major_formatter(), test_ax.yaxis.get_minor_formatter()
    assert (major(10.0, 0), minor(30.0, 0), minor(0.5, 0), minor(4.0, 0), minor(70.0, 0)) == ("10", "30", "0.5", "", "")


def test_curves_without_a_train_error_draw_the_test_error_only(stored):
    """Runs with eval_train = false: older ones stored a NaN train error (written "nan" in JSON, which
    once stopped `bench plot` with a TypeError); they draw a test line and no train line."""
    from harness.results.store import RunStore, read_json

    suite, results = stored
    for run in suite.runs:
        store = RunStore(results / suite.name / run.id)
        if run.kind == "train" and run.attributes()["algorithm"] == "bptt" and store.status() == "done":
            data = read_json(store.dir / "metrics.json")
            write_json(store.dir / "metrics.json", {**data, "curves": [{**c, "train_error": float("nan")}
                                                                       for c in data["curves"]]})
            assert '"train_error": "nan"' in (store.dir / "metrics.json").read_text()
            assert all(c["train_error"] != c["train_error"] for c in store.metrics()["curves"])  # a float NaN
    train_ax, test_ax = by_stem(figures.build_figures(suite, results))["errors-P-tiny"].axes
    assert [t.get_text() for t in test_ax.get_legend().get_texts()] == ["EP (n=3)", "BPTT (n=2)"]
    assert [t.get_text() for t in train_ax.get_legend().get_texts()] == ["EP (n=3)"]
    # newer runs record no train error at all; with none in the suite, the train panel is empty
    for run in suite.runs:
        store = RunStore(results / suite.name / run.id)
        if run.kind == "train" and store.status() == "done":
            data = read_json(store.dir / "metrics.json")
            write_json(store.dir / "metrics.json", {**data, "curves": [{k: v for k, v in c.items() if k != "train_error"}
                                                                       for c in data["curves"]]})
    train_ax, test_ax = by_stem(figures.build_figures(suite, results))["errors-P-tiny"].axes
    assert not train_ax.lines and {line.get_gid() for line in test_ax.lines if "seed" not in line.get_gid()} == {
        "test_error:EP", "test_error:BPTT"}


def test_each_run_is_its_own_thin_line_even_where_two_runs_of_a_series_share_a_seed():
    """Two configurations that differ only in an algorithm parameter share a series label; their
    seed-0 runs are two lines, not one line zig-zagging back to epoch 1."""
    import pandas as pd

    frame = pd.DataFrame([{"run": run, "seed": 0, "series": "EP", "algo": "ep", "epoch": e,
                           "train_error": err, "test_error": err}
                          for run, base in (("a-s0", 10.0), ("b-s0", 20.0)) for e, err in ((1, base), (2, base / 2))])
    with figures.load_matplotlib().rc_context(figures.STYLE):
        ax = run_figures.curves_figure(frame, "t").axes[1]
    thin = [line for line in ax.lines if line.get_gid().endswith(":seed0")]
    assert [list(line.get_xdata()) for line in thin] == [[1, 2], [1, 2]]
    assert sorted(list(line.get_ydata()) for line in thin) == [[10.0, 5.0], [20.0, 10.0]]


def test_a_sweeps_series_of_one_algorithm_can_be_told_apart():
    """Four β values of EP: four series with four (colour, marker) pairs, each in the legend; the first
    keeps EP's colour, as a suite with one EP series draws it."""
    import pandas as pd

    frame = pd.DataFrame([{"run": f"b{beta}-s0", "seed": 0, "series": f"EP algorithm.beta={beta}", "algo": "ep",
                           "epoch": e, "train_error": 10.0 / e + beta, "test_error": 12.0 / e + beta}
                          for beta in (0.05, 0.1, 0.2, 0.5) for e in (1, 2)])
    with figures.load_matplotlib().rc_context(figures.STYLE):
        ax = run_figures.curves_figure(frame, "t").axes[1]
    means = [line for line in ax.lines if line.get_gid() and not line.get_gid().endswith(":seed0")]
    assert len(means) == 4
    styles = {(str(line.get_color()), line.get_marker(), line.get_linestyle()) for line in means}
    assert len(styles) == 4 and len({str(line.get_color()) for line in means}) == 4
    assert means[0].get_color() == run_figures.ALGORITHM_COLORS["ep"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        f"EP algorithm.beta={b} (n=1)" for b in (0.05, 0.1, 0.2, 0.5)]


def test_curves_add_the_unsettled_share_where_runs_recorded_it(stored):
    """EP's update assumes a settled free phase: where runs recorded the share of test images that
    had not settled, a third panel draws it (here EP seeds only; BPTT's runs predate the record)."""
    from harness.results.store import RunStore, read_json

    suite, results = stored
    assert len(by_stem(figures.build_figures(suite, results))["errors-P-tiny"].axes) == 2  # none recorded
    for run in suite.runs:
        store = RunStore(results / suite.name / run.id)
        if run.kind == "train" and run.attributes()["algorithm"] == "ep":
            data = read_json(store.dir / "metrics.json")
            write_json(store.dir / "metrics.json", {**data, "curves": [{**c, "unsettled": 0.1 * (run.seed + e)}
                                                                       for e, c in enumerate(data["curves"])]})
    axes = by_stem(figures.build_figures(suite, results))["errors-P-tiny"].axes
    assert [ax.get_title() for ax in axes] == ["train error", "test error", "free phase not settled at T"]
    lines = {line.get_gid(): line for line in axes[2].lines}
    assert set(lines) == {"unsettled:EP", *(f"unsettled:EP:seed{s}" for s in (0, 1, 2))}
    assert list(lines["unsettled:EP"].get_ydata()) == pytest.approx([0.1, 0.2, 0.3])  # seeds 0-2, mean
    assert axes[2].get_ylabel() == "test images (%)"


@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG"), ("pdf", b"%PDF"), ("svg", b"<svg")])
@pytest.mark.slow
def test_plot_suite_writes_every_figure_in_each_format(stored, tmp_path, fmt, magic):
    suite, results = stored
    paths = figures.plot_suite(suite, results, tmp_path / "out", fmt)
    assert sorted(p.name for p in paths) == sorted(f"{s}.{fmt}" for s in (
        "processes-gdu-p-s0", "processes-gdu-p-s1", "relmse-gdu-p", "errors-P-tiny"))
    for p in paths:
        data = p.read_bytes()
        head = data[:4] if fmt != "svg" else data[data.index(b"<svg"):][:4]
        assert head == magic, p
        assert len(data) > 5000, p
    if fmt == "svg":  # series ids survive into the file: they were really drawn
        text = (tmp_path / "out" / "processes-gdu-p-s0.svg").read_text()
        assert 'id="neurons:s1:10:cand"' in text and 'id="weights:W12:2:ref"' in text
        curves = (tmp_path / "out" / "errors-P-tiny.svg").read_text()
        assert 'id="test_error:BPTT"' in curves and "error (%)" in curves
    if fmt == "png":
        from matplotlib.image import imread

        image = imread(tmp_path / "out" / "relmse-gdu-p.png")
        assert image.shape[1] == round(figures.SINGLE_COLUMN * figures.DPI)


def test_missing_matplotlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    with pytest.raises(figures.PlotError, match=r'pip install -e "\.\[plot\]"'):
        figures.load_matplotlib()


@pytest.mark.slow
def test_plot_cli_and_nothing_to_plot(stored, tmp_path):
    suite, results = stored
    runner = CliRunner()
    out = runner.invoke(main, ["plot", str(suite.path), "--results-dir", str(results), "--format", "pdf"])
    assert out.exit_code == 0, out.output
    written = out.output.split()
    assert len(written) == 4 and all(w.endswith(".pdf") for w in written)
    assert all(str(results / "figs" / "figures") in w for w in written)
    empty = runner.invoke(main, ["plot", str(suite.path), "--results-dir", str(tmp_path / "none")])
    assert empty.exit_code == 1
    assert "no finished runs of the kinds that draw figures (gdu, train)" in empty.output


@pytest.mark.slow
def test_report_cli_has_tables_figures_environment_and_commands(stored):
    suite, results = stored
    out = CliRunner().invoke(main, ["report", str(suite.path), "--results-dir", str(results)])
    assert out.exit_code == 0, out.output
    path = results / "figs" / "report.md"
    text = path.read_text()
    assert text.startswith("# figs\n")
    assert "hand-written results for the figure tests" in text
    for cmd in ("bench run", "bench plot", "bench report"):
        assert f"{cmd} {suite.path} --results-dir {results}" in text
    assert "**RelMSE per layer**" in text and "**Tiny training errors**" in text
    # the table's cells, its reference and difference, and the flag of the failed run
    cells = re.sub(r" +", " ", text)
    assert "| P-tiny | 7.00 ± 1.00 | 5.00 | +2.00 | 5.50 ± 0.71 † |" in cells
    assert "ep test_error (ref)" in text and "ep test_error Δ" in text
    assert "ref: made up for the test" in text
    assert "| gdu-p | W12 | | | 0.15 ± 0.0707 | 1 ± 0 |" in cells
    links = [line[line.index("](") + 2:-1] for line in text.splitlines() if line.startswith("![")]
    assert len(links) == 4
    for link in links:
        assert not link.startswith("/") and (path.parent / link).is_file(), link
    assert "| python | 3.11.7 | 7 |" in text  # the 7 finished runs recorded it
    assert "| git_commit | abc1234 | 7 |" in text
    assert "| cuda | None | 7 |" in text  # recorded as null: no CUDA
    assert "cpu_model" not in text and "cudnn" not in text  # recorded by no run: no row of "None"
    assert "| failed | 1.5 | RuntimeError: boom |" in text
    assert "Total: 7 done, 1 failed" in text


@pytest.mark.slow
def test_report_tells_an_environment_key_some_runs_lack_from_a_recorded_null(stored):
    """Runs from before a key was recorded lack it: "(not recorded)", not "None", and a data
    directory recorded by the newer runs still goes into the command that reproduces them."""
    from harness.results.store import read_json

    suite, results = stored
    done = [d for d in sorted((results / suite.name).iterdir())
            if read_json(d / "status.json")["status"] == "done"]
    for d in done[:3]:
        write_json(d / "environment.json", {**ENV, "cpu_model": "Xeon", "data_dir": str(results / "data")})
    text = write_report(suite, results, default_results=False).read_text()
    assert "| cpu_model | Xeon | 3 |" in text and "| cpu_model | (not recorded) | 4 |" in text
    assert "| cuda | None | 7 |" in text
    assert f"--data-dir {os.path.relpath(results / 'data')}" in text
    # a run resumed on another machine counts under both CPUs (its environment.json's `earlier`)
    write_json(done[0] / "environment.json", {**ENV, "cpu_model": "Xeon", "data_dir": str(results / "data"),
                                              "earlier": [{**ENV, "cpu_model": "EPYC", "until": "after epoch 1"}]})
    text = write_report(suite, results, default_results=False).read_text()
    assert "| cpu_model | Xeon | 3 |" in text and "| cpu_model | EPYC | 1 |" in text


def test_report_without_finished_runs_still_writes_the_page(stored, tmp_path):
    suite, _ = stored
    path = write_report(suite, tmp_path / "empty", default_results=False)
    text = path.read_text()
    assert "No finished runs of the kinds that draw figures (gdu, train) yet." in text
    assert "Total: 8 missing" in text and "| — | no finished runs | 0 |" in text
    assert not (path.parent / "figures").exists()


def test_a_report_is_not_replaced_by_one_with_fewer_finished_runs(stored, tmp_path):
    """The usual cause: `bench report` without the --set the runs were made with; the good page stays."""
    suite, results = stored
    path = write_report(suite, results, default_results=False, figures=False)
    good = path.read_text()
    out = CliRunner().invoke(main, ["report", str(suite.path), "--results-dir", str(results), "--set",
                                    "T=7", "--no-figures"])
    assert out.exit_code == 1 and "reports 7 finished runs and this one would report 0; not replaced" in out.output
    assert "Give the same --set" in out.output and path.read_text() == good
    forced = CliRunner().invoke(main, ["report", str(suite.path), "--results-dir", str(results), "--set", "T=7",
                                       "--no-figures", "--force"])
    assert forced.exit_code == 0 and "0/8 runs done" in path.read_text()


def test_a_report_without_figures_or_without_matplotlib(stored, monkeypatch):
    suite, results = stored
    text = write_report(suite, results, default_results=False, figures=False).read_text()
    assert "## Figures" not in text and "## Tables" in text
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    out = CliRunner().invoke(main, ["report", str(suite.path), "--results-dir", str(results)])
    assert out.exit_code == 0, out.output
    text = (results / suite.name / "report.md").read_text()
    assert 'Figures skipped: figures need matplotlib, an optional extra: pip install -e ".[plot]".' in text
    assert "Total: 7 done, 1 failed" in text
