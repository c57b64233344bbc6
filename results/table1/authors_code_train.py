"""Train EB-1h with the authors' public code (github.com/ernoult/updatesEPgradientsBPTT), run unmodified
from a local checkout as an external reference, and count the output classes its net predicts for no
test image: does their training loop lose classes with BPTT, as ours does?

Per seed: ``seed_everything(seed)`` (random, torch, numpy: what our runner does before a run), then our
EBNet with ``init = "torch"`` draws the initial weights, which are copied into their EPcont (the same
weights our `EB-1h (torch init)` and `EB-1h (authors' settings)` runs of that seed start from: the
column "init checksum" is our runs' ``init_checksum``, which their metrics.json records); then
their own ``netFunctions.train(net, train_loader, epoch, method)`` for each epoch, on their main.py's
MNIST ``train_loader`` (batch 20, shuffled by torch's generator, seeded here), and a free phase of
their net (their ``forward(..., method='nograd')``, T = 100) on the 10,000 test images, whose
predictions (argmax of s⁰, as their ``evaluate``) give the test error and the classes predicted for
no test image. Their settings: their README's EB-1h command (``--size_tab 10 512 784 --lr_tab 0.05 0.1
--T 100 --Kmax 12 --beta 0.5 --dt 0.2``, sigmoid, clamp to [0, 1]); their BPTT backpropagates through
Kmax + 1 = 13 steps and their output step has no σ'(s⁰) (authors_code_check.md).

After the table, each epoch's test errors and seeds with a class lost are set beside those of our
committed `EB-1h (authors' settings)` runs (the same initial weights and settings, our data order) with
Welch's test (harness.results.compare.welch, as error_tests.py) and Fisher's (failure_counts.py).

Their modules are imported as authors_code_check.py imports them (a stand-in torchvision reading the
IDX files); nothing of theirs is changed or copied here.

About 5 minutes per seed and epoch (BPTT) on one CPU thread. Run from the repository root:
    git clone https://github.com/ernoult/updatesEPgradientsBPTT /tmp/authors
    python results/table1/authors_code_train.py --authors-code /tmp/authors --data-dir ../shared/data \\
        --seeds 0 1 2 3 4 --epochs 1 --method BPTT
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

# importing it also puts our code on sys.path
from authors_code_check import (  # noqa: E402
    ROOT,
    THEIR_EB1H,
    authors_commit,
    import_authors,
    load_same_weights,
    their_args,
)
from failure_counts import fisher  # noqa: E402

from bench_models import EBNet  # noqa: E402
from bench_runs.train import weights_checksum  # noqa: E402
from harness.api.dataset import default_data_dir  # noqa: E402
from harness.results.aggregate import epoch_point  # noqa: E402
from harness.results.compare import welch  # noqa: E402
from harness.results.store import finished_runs  # noqa: E402
from harness.run.environment import seed_everything  # noqa: E402


def predictions(net, test_loader) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted class, true class) of every test image after their net's free phase."""
    preds, labels = [], []
    with torch.no_grad():
        for data, targets in test_loader:
            s = net.initHidden(data.size(0))
            s = net.forward(data, s, method="nograd")
            preds.append(s[0].argmax(1))
            labels.append(targets.argmax(1))
    return torch.cat(preds), torch.cat(labels)


OURS = "EB-1h (authors' settings)"  # suites/table1.toml's row at the same settings


def ours_at(results: Path, epoch: int) -> list[tuple[float, float]]:
    """(test error, classes predicted for no test image) after ``epoch`` of each finished run of ours."""
    out = []
    for config, metrics in finished_runs(results):
        if config["name"] == OURS and config["slots"]["algorithm"]["name"] == "bptt":
            point = epoch_point(metrics.get("curves") or [], epoch)
            if point is not None:
                out.append((float(point["test_error"]), float(point["unpredicted_classes"])))
    return out


def compare(epoch: int, theirs: list[tuple[float, float]], ours: list[tuple[float, float]]) -> str:
    def describe(rows):
        errors = [e for e, _ in rows]
        std = statistics.stdev(errors) if len(errors) > 1 else 0.0
        return statistics.mean(errors), std, len(errors), sum(u > 0 for _, u in rows)

    (m1, s1, n1, k1), (m2, s2, n2, k2) = describe(ours), describe(theirs)
    p = welch(m1, s1, n1, m2, s2, n2)[2] if n1 > 1 and n2 > 1 else float("nan")
    return (f"epoch {epoch}: test error ours {m1:.2f} ± {s1:.2f} % (n = {n1}), theirs {m2:.2f} ± {s2:.2f} % "
            f"(n = {n2}), Welch p = {p:.2g}; seeds with a class lost: ours {k1} of {n1}, theirs {k2} of {n2}, "
            f"Fisher p = {fisher(k1, n1, k2, n2)[0]:.2g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--authors-code", required=True, type=Path, help="a checkout of their repository")
    parser.add_argument("--data-dir", default=None, help="holds MNIST/raw (default: $BENCH_DATA_DIR or ./data)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--method", choices=["BPTT", "eqprop"], default="BPTT")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "results", help="holds table1/ (default: results)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data_dir = args.data_dir or str(default_data_dir())
    nc, nf, their_main = import_authors(args.authors_code.resolve(), data_dir)
    print(f"authors' code: {args.authors_code} at commit {authors_commit(args.authors_code)}; "
          f"torch {torch.__version__}, 1 thread")
    print(f"their EB-1h command: {THEIR_EB1H}; method {args.method}; {args.epochs} epoch(s)")
    print(f"their loaders: train batch {their_main.train_loader.batch_size}, shuffled; "
          f"test batch {their_main.test_loader.batch_size}")
    print()
    print("| seed | init checksum | epoch | their train error (%) | test error (%) | "
          "classes predicted for no test image | seconds |")
    print("|---|---|---|---|---|---|---|")
    theirs_by_epoch: dict[int, list[tuple[float, float]]] = {}
    for seed in args.seeds:
        seed_everything(seed)
        ours = EBNet(hidden=[512], activation="sigmoid", eps=0.2, clip=True, init="torch")
        checksum = weights_checksum(ours)
        theirs = nc.EPcont(their_args(their_main, THEIR_EB1H))
        load_same_weights(ours, theirs)
        for epoch in range(1, args.epochs + 1):
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # their per-100-batch progress lines
                train_error = nf.train(theirs, their_main.train_loader, epoch, args.method)
            pred, label = predictions(theirs, their_main.test_loader)
            seconds = time.perf_counter() - start
            unpredicted = sorted(set(range(10)) - set(pred.tolist()))
            error = 100.0 * (pred != label).double().mean().item()
            print(f"| {seed} | {checksum!r} | {epoch} | {train_error:.2f} | {error:.2f} | "
                  f"{len(unpredicted)} {unpredicted if unpredicted else ''} | {seconds:.0f} |", flush=True)
            theirs_by_epoch.setdefault(epoch, []).append((error, float(len(unpredicted))))
    if args.method != "BPTT":
        return
    print()
    print(f"Against our `{OURS}` BPTT runs ({os.path.relpath(args.results_dir / 'table1')}):")
    for epoch, theirs in theirs_by_epoch.items():
        ours = ours_at(args.results_dir / "table1", epoch)
        print(f"  {compare(epoch, theirs, ours)}" if ours else f"  epoch {epoch}: no finished run of ours reaches it")


if __name__ == "__main__":
    main()
