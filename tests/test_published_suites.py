"""The GPU suites of the published DCHN setups (suites/laborieux2021.toml, suites/scellier2023.toml): they
validate here, their runs resolve to the settings their comments cite, and one batch of each CIFAR run
trains through `bench run` on synthetic files in the CIFAR format, with the published net unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import REPO, write_cifar
from harness.cli.commands import main
from harness.plugins import get_manager
from harness.suite.load import load_suite

SUITES = REPO / "suites"


@pytest.fixture(scope="module")
def registry():
    return get_manager().registry


def resolved(registry, name: str) -> list:
    return load_suite(SUITES / f"{name}.toml", registry).runs


def test_laborieux2021_resolves_to_the_authors_commands(registry):
    runs = resolved(registry, "laborieux2021")
    cells = {(r.name, r.slots["algorithm"]["name"]): r for r in runs}
    assert set(cells) == {("CIFAR-10 VGG-DCHN, cross-entropy", "ep-centered"), ("CIFAR-10 VGG-DCHN, cross-entropy", "bptt"),
                          ("CIFAR-10 VGG-DCHN, squared error", "ep-random-sign"),
                          ("CIFAR-10 VGG-DCHN, squared error", "ep-centered")}
    for (name, alg), r in cells.items():
        model, a, d = (r.slots[k]["params"] for k in ("model", "algorithm", "dataset"))
        assert r.slots["model"]["name"] == "dchn"
        assert model["loss"] == ("cross_entropy" if "cross-entropy" in name else "squared_error")
        assert model["channels"] == [128, 256, 512, 512] and model["padding"] == [1, 1, 1, 0]
        assert (model["activation"], model["init"], model["nudge"]) == ("half_hard_sigmoid", "torch", "inside")
        cross = "cross-entropy" in name
        assert (r.params["T"], r.params["K"], r.params["epochs"], r.params["batch_size"]) == \
            (250, 25 if cross else 30, 120, 128)
        assert a["lr"] == [0.25, 0.15, 0.1, 0.08, 0.05]  # four convolutions, then the output or readout
        assert (a["momentum"], a["weight_decay"], a["lr_schedule"], a["lr_period"], a["lr_floor"]) == \
            (0.9, 3e-4, "cosine", 100, 1e-5)
        if alg != "bptt":
            assert a["beta"] == (1.0 if cross else 0.5)
        assert d["augment"] and d["augment_padding"] == "edge" and d["augment_flip"]
        assert d["mean"] == [0.4914, 0.4822, 0.4465] and d["std"] == [0.6069, 0.5982, 0.603]


def test_scellier2023_crosses_its_seven_algorithms_with_five_datasets(registry):
    runs = resolved(registry, "scellier2023")
    algorithms = ("ep", "ep-negative", "ep-centered", "coupled", "coupled-negative", "coupled-centered", "contrastive")
    cells = {(r.name, r.slots["algorithm"]["name"]) for r in runs}
    assert cells == {(d, a) for d in ("MNIST", "Fashion-MNIST", "SVHN", "CIFAR-10", "CIFAR-100") for a in algorithms}
    for r in runs:
        a = r.slots["algorithm"]["params"]
        assert (a["schedule"], a["nudged_schedule"], a["warm_start"], r.params["T"], r.params["K"]) == \
            ("async", "async", True, 60, 15)
        # their Trainer: the next batch starts where the n₂ phase ended, each epoch from zero; their zero side
        # runs its K sweeps
        assert (a["warm_from"], a["warm_reset"], a["zero_phase"]) == ("second_phase", "epoch", True)
        assert r.params["drop_last"] is False  # their DataLoader keeps the last, smaller batch
        assert r.params["eval_schedule"] == "async"  # their inference: 60 asynchronous sweeps
        assert a.get("beta", 1.0) == (1.0 if r.slots["algorithm"]["name"] == "contrastive" else 0.25)
        assert a["lr"] == [0.0625, 0.0375, 0.025, 0.02, 0.0125] and a["lr_floor"] == 2e-6
        assert r.slots["model"]["params"]["output_size"] == (100 if r.name == "CIFAR-100" else 10)
        assert r.slots["model"]["params"]["init"] == "torch_half"  # ±0.5/√fan_in, weights and biases
        assert r.slots["model"]["params"]["output"] == "linear"  # o ← W·h + b − β(o − y)
        d = r.slots["dataset"]["params"]
        assert d["mean"] is not None and d["std"] is not None  # every dataset normalised, as their loaders
        assert d["augment"] and d["augment_padding"] == "edge"  # every training set cropped, edge-padded
        assert d["augment_flip"] == (r.name not in ("SVHN", "MNIST"))
        grey = r.name in ("MNIST", "Fashion-MNIST")
        assert (d["pad"], d["augment_pad"]) == ((2, 2) if grey else (0, 4))  # 28 → 32, cropped by 2
        assert r.slots["model"]["params"]["input_shape"] == ([1, 32, 32] if grey else [3, 32, 32])


@pytest.mark.parametrize("suite", ["laborieux2021", "scellier2023"])
def test_the_published_suites_validate(suite):
    result = CliRunner().invoke(main, ["validate", str(SUITES / f"{suite}.toml")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "valid:" in result.output


@pytest.mark.parametrize("suite, only", [("laborieux2021", "CIFAR-10 VGG-DCHN, cross-entropy"),
                                         ("scellier2023", "CIFAR-10")])
def test_one_batch_of_each_cifar_run_trains_on_synthetic_cifar_files(tmp_path: Path, monkeypatch, suite, only):
    """The published net as it is (128-256-512-512), one batch of 4, few steps: the smoke run of a GPU
    suite on a CPU. Every run ends done with finite errors."""
    data = tmp_path / "data"
    # `--data-dir` sets $BENCH_DATA_DIR for the run's workers, in this process too: restored after the test
    monkeypatch.setenv("BENCH_DATA_DIR", str(data))
    write_cifar(data, "cifar-10-batches-py", {f"data_batch_{i}": 4 for i in range(1, 6)} | {"test_batch": 4},
                b"labels", 10)
    results = tmp_path / "results"
    sets = ["epochs=1", "max_batches=1", "batch_size=4", "eval_batch_size=20", "T=3", "K=2", "device=cpu"]
    args = ["run", str(SUITES / f"{suite}.toml"), "--only", only, "--data-dir", str(data),
            "--results-dir", str(results), "--threads", "1"]
    for s in sets:
        args += ["--set", s]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    status = CliRunner().invoke(main, ["status", str(SUITES / f"{suite}.toml"), "--results-dir", str(results),
                                       *[x for s in sets for x in ("--set", s)]], catch_exceptions=False)
    assert f"{2 if suite == 'laborieux2021' else 7} done" in status.output, status.output
