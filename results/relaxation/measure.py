"""Synchronous against asynchronous relaxation (harness.api.relaxation) on EB-2h, P-2h and a CPU-sized DCHN:
sweeps and step evaluations to a residual max |F(s) − s| below TOL, the wall-clock ratio (median of
REPEATS, both schedules interleaved in one run), and the largest relative difference between EP's
update computed from the two fixed points.

One MNIST mini-batch of 20 (the DCHN: random 3×16×16 images), float64, at the Glorot initialisation
the paper's text states and at PyTorch's default (the authors' code), tanh as in the paper's Table 3
for the dense nets, the hard sigmoid for the DCHN.

    python3 results/relaxation/measure.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from harness.api.relaxation import relax
from harness.plugins import PluginManager

TOL, MAX_SWEEPS, REPEATS = 1e-8, 20000, 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    m = PluginManager()
    m.load_entry_points()
    reg = m.registry
    mnist = reg.get("dataset", "mnist").build({"n_train": 20, "n_test": 20, "data_dir": args.data_dir})
    data = mnist.load(torch.device("cpu"), torch.float64)
    nets = {
        "EB-2h": ("eb", {"hidden": [512, 512], "activation": "tanh", "eps": 0.2}, data.train.x),
        "P-2h": ("p", {"hidden": [512, 512], "activation": "tanh"}, data.train.x),
        "DCHN (8, 16 maps)": ("dchn", {"input_shape": [3, 16, 16], "channels": [8, 16], "padding": [1, 1]},
                              torch.rand(20, 3, 16, 16, dtype=torch.float64,
                                         generator=torch.Generator().manual_seed(0))),
    }
    y = torch.nn.functional.one_hot(data.train.y[:20], 10).double()
    print(f"tolerance {TOL:g}, at most {MAX_SWEEPS} sweeps; wall time: median of {REPEATS}, interleaved; "
          f"threads {torch.get_num_threads()}")
    print("| net | init | schedule | sweeps | step evaluations | residual | seconds | async / sync time "
          "| EP update: max rel. diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, (kind, params, x) in nets.items():
        for init in ("glorot", "torch"):
            torch.manual_seed(0)
            model = reg.get("model", kind).build({**params, "init": init}).double()
            x0 = model.prepare(x)
            times: dict[str, list[float]] = {"sync": [], "async": []}
            out = {}
            for _ in range(REPEATS):
                for schedule in ("sync", "async"):
                    t0 = time.perf_counter()
                    out[schedule] = relax(model, x0, model.init_state(x), max_steps=MAX_SWEEPS, tol=TOL,
                                          schedule=schedule)
                    times[schedule].append(time.perf_counter() - t0)
            med = {k: statistics.median(v) for k, v in times.items()}
            both = all(r.residual < 10 * TOL for r in out.values())
            if both:
                ep = reg.get("algorithm", "ep").build({"beta": 1e-3})
                d1, d2 = (ep.direction(model, x0, out[k].state, y, 20) for k in ("sync", "async"))
                diff = max(float((a - b).abs().max()) / max(float(a.abs().max()), 1e-30)
                           for g in d1 for a, b in zip(d1[g], d2[g]))
                diff_text = f"{diff:.1e}"
            else:
                diff_text = "— (a schedule did not settle)"
            for schedule in ("sync", "async"):
                r = out[schedule]
                ratio = f"{med['async'] / med['sync']:.2f}" if schedule == "async" else ""
                print(f"| {name} | {init} | {schedule} | {r.sweeps} | {r.evaluations} | {r.residual:.1e} | "
                      f"{med[schedule]:.2f} | {ratio} | {diff_text if schedule == 'async' else ''} |")


if __name__ == "__main__":
    main()
