"""Our P-2h and EB-1h against the authors' public code (github.com/ernoult/updatesEPgradientsBPTT), run
unmodified from a local checkout as an external reference: same initial weights, same mini-batch (the
first 20 MNIST training images), then the free phase (after 1 and after T steps), EP's update (the
second phase's states, ΔW before the learning rate, the weight change of one training step) and BPTT's
gradient (and its training step), layer by layer; each comparison in float32 and again in float64.

Settings: suites/table1.toml's P-2h (sigmoid, T = 100, K = 20, β = 0.5, lr 0.2, 0.05, 0.005 input →
output) and EB-1h (sigmoid, ε = 0.2, clip, T = 100, K = 12, β = 0.5, lr 0.1, 0.05); the authors' nets
from their README's Table 1 command lines (parsed by their own parser), with dt = 1 for P-2h (the paper's
P setting) and again with their default dt = 0.2 (what their P-2h command runs), against ours at dt = 1
and at dt = 0.2 (suites/table1.toml's "P-2h (authors' settings)"). Weights: PyTorch's
default init (±1/√fan_in, as their code), torch.manual_seed(--seed), drawn by our PNet/EBNet with
init = "torch" and copied into their nn.Linear modules (mapping printed; no transposition needed).

Their main.py (imported by their netClasses.py for ρ and ρ') parses sys.argv and builds torchvision
MNIST loaders (download=True) at import time; torchvision is not a dependency of ours, so a stand-in
module ``torchvision`` (datasets.MNIST reading --data-dir's IDX files, transforms.ToTensor as
torchvision's uint8 → float / 255, transforms.Compose) is put in sys.modules while their code imports,
and sys.argv is set to their own flags then. That is the only run-time patch: no file, function or
attribute of theirs (or of torch) is changed, and none of their code is copied here.

About 20 seconds on one CPU thread.
Run from the repository root, with a checkout of their repository outside it:
    git clone https://github.com/ernoult/updatesEPgradientsBPTT /tmp/authors
    python results/table1/authors_code_check.py --authors-code /tmp/authors --data-dir ../shared/data
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]  # our code, ahead of any installed copy

import argparse
import contextlib
import copy
import importlib
import io
import os
import subprocess
import types

os.environ.setdefault("MPLBACKEND", "Agg")  # their netFunctions/plotFunctions import matplotlib.pyplot

import torch

from bench_algorithms.bptt import BPTT
from bench_algorithms.ep import EP
from bench_datasets.idx import read_idx
from bench_datasets.idx_images import FILES, raw_dir
from bench_models import EBNet, PNet
from harness.api.dataset import default_data_dir
from harness.api.model import per_group

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mnist_check import mnist

TOL = 1e-5  # relative to the compared values' scale: float32 rounding, with room for accumulation
TOL64 = 1e-10  # the same comparison in float64: anything structural stays far above this
B = 20

# Their README's Table 1 commands (their lr_tab runs output → input), with --device-label -1 for the CPU.
# P-2h: the command has no --dt, so their default dt = 0.2 applies; the like-for-like run adds --dt 1.
THEIR_P2H = ("--discrete --size_tab 10 512 512 784 --lr_tab 0.005 0.05 0.2 --epochs 50 --T 100 --Kmax 20 "
             "--beta 0.5 --device-label -1")
THEIR_EB1H = ("--size_tab 10 512 784 --lr_tab 0.05 0.1 --epochs 30 --T 100 --Kmax 12 --beta 0.5 --dt 0.2 "
              "--device-label -1")
OUR_P2H = {"T": 100, "K": 20, "beta": 0.5, "lr": [0.2, 0.05, 0.005]}  # suites/table1.toml, P-2h
OUR_EB1H = {"T": 100, "K": 12, "beta": 0.5, "lr": [0.1, 0.05]}  # suites/table1.toml, EB-1h


# --------------------------------------------------------------------------- the authors' code
def _stand_in_torchvision(data_dir: str) -> types.ModuleType:
    """What their main.py uses of torchvision at import: datasets.MNIST (here read from ``data_dir``'s
    IDX files; ``root`` and ``download`` ignored), transforms.ToTensor (torchvision's rule for uint8:
    ``img.to(default float dtype).div(255)``, shape (1, 28, 28)) and transforms.Compose."""
    tv = types.ModuleType("torchvision")
    datasets, transforms = types.ModuleType("torchvision.datasets"), types.ModuleType("torchvision.transforms")

    class MNIST(torch.utils.data.Dataset):
        def __init__(self, root, train=True, download=False, transform=None, target_transform=None):
            self.split = "train" if train else "test"
            self.transform, self.target_transform = transform, target_transform
            self._data = None

        def _load(self):
            if self._data is None:
                out = []
                for what in ("images", "labels"):
                    name = FILES[(self.split, what)]
                    d = raw_dir(data_dir)
                    out.append(read_idx(d / name if (d / name).is_file() else d / f"{name}.gz"))
                self._data = out
            return self._data

        def __len__(self):
            return self._load()[0].shape[0]

        def __getitem__(self, i):
            images, labels = self._load()
            img, target = images[i], int(labels[i])  # torchvision: a PIL 'L' image and an int
            if self.transform is not None:
                img = self.transform(img)
            if self.target_transform is not None:
                target = self.target_transform(target)
            return img, target

    class ToTensor:
        def __call__(self, pic):
            return pic.unsqueeze(0).to(dtype=torch.get_default_dtype()).div(255)

    class Compose:
        def __init__(self, fs):
            self.fs = fs

        def __call__(self, v):
            for f in self.fs:
                v = f(v)
            return v

    datasets.MNIST, transforms.ToTensor, transforms.Compose = MNIST, ToTensor, Compose
    tv.datasets, tv.transforms = datasets, transforms
    return tv


def import_authors(path: Path, data_dir: str):
    """Their netClasses (which imports their main.py for ρ, ρ'), netFunctions and main, from ``path``."""
    for f in ("main.py", "netClasses.py", "netFunctions.py", "plotFunctions.py"):
        if not (path / f).is_file():
            sys.exit(f"--authors-code {path}: no {f} (expected a checkout of ernoult/updatesEPgradientsBPTT)")
    tv = _stand_in_torchvision(data_dir)
    # left in place afterwards: their modules hold it (as `torchvision`, `datasets`, `transforms`)
    sys.modules.update({"torchvision": tv, "torchvision.datasets": tv.datasets,
                        "torchvision.transforms": tv.transforms})
    # their parser runs at import: their defaults (activation 'sigm'), on the CPU
    saved_argv, sys.argv = sys.argv, ["main.py", "--device-label", "-1"]
    sys.path.insert(0, str(path))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            nc = importlib.import_module("netClasses")
            nf = importlib.import_module("netFunctions")
    finally:
        sys.argv = saved_argv
    main = sys.modules["main"]
    for m in (nc, nf, main):
        assert Path(m.__file__).resolve().parent == path, f"{m.__name__} imported from {m.__file__}, not {path}"
    return nc, nf, main


def authors_commit(path: Path) -> str:
    """The commit their checkout is at, for the printed record."""
    try:
        return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def their_args(main, flags: str, **override):
    args = main.parser.parse_args(flags.split())
    for k, v in override.items():
        setattr(args, k, v)
    args.conv = bool(args.C_tab)  # as their main.py does after parsing (`not not args.C_tab`)
    return args


# --------------------------------------------------------------------------- the two nets side by side
def param_pairs(ours):
    """(our parameter name, their parameter name): our edge (group, lower n, upper) is their w[2n]
    (nn.Linear(size_tab[n+1], size_tab[n]) drives layer n; weight (out, in) = our (size[lower], size[upper]));
    our bias of layer n is w[2n].bias."""
    pairs = [(f"w.{g}", f"w.{2 * lower}.weight") for g, lower, _ in ours.edges]
    pairs += [(f"b.s{n}", f"w.{2 * n}.bias") for n in ours.bias_groups]
    return pairs


def load_same_weights(ours, theirs):
    op, tp = dict(ours.named_parameters()), dict(theirs.named_parameters())
    pairs = param_pairs(ours)
    assert sorted(t for _, t in pairs) == sorted(tp), (pairs, list(tp))
    with torch.no_grad():
        for o, t in pairs:
            assert op[o].shape == tp[t].shape, (o, op[o].shape, t, tp[t].shape)
            tp[t].copy_(op[o])
    for o, t in pairs:
        assert torch.equal(op[o], tp[t])
    return pairs


def gparams(model, grads_by_group):
    """Our per-group lists [W, b] as {parameter name: tensor}."""
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: g for grp, ps in model.param_groups().items() for p, g in zip(ps, grads_by_group[grp])}


def change(before, after):
    """{parameter name: after − before} of two copies of one module."""
    return {n: p1.detach() - p0.detach() for (n, p0), (_, p1) in zip(before.named_parameters(),
                                                                     after.named_parameters())}


def ours_all(model, x, y, cfg):
    """Everything compared, from our code: states, EP (direction, train step), BPTT (direction, train step)."""
    T, K, beta, lr = cfg["T"], cfg["K"], cfg["beta"], cfg["lr"]
    out = {}
    with torch.no_grad():
        xp = model.prepare(x)
        s, trace = model.init_state(x), []
        for _ in range(T):
            s = model.step(xp, s)
            trace.append(s)
    free = model.relax(xp, model.init_state(x), T)
    assert all(torch.equal(a, b) for a, b in zip(free, trace[-1]))
    out["trace"] = trace
    ep = EP(beta=beta, lr=lr)
    out["nudged"] = model.relax(xp, free, K, y, beta)
    k = 1.0 / (beta * model.nudge_scale * B)
    out["ep_dW"] = {n: k * d for n, d in gparams(model, ep.direction(model, xp, free, y, K)).items()}
    m = copy.deepcopy(model)
    ep.train_step(m, x, y, T=T, K=K)
    out["ep_step"] = change(model, m)
    bp = BPTT(lr=lr)
    for steps in (K, K + 1):  # BPTT.train_step's own path, truncated to `steps` steps
        with torch.enable_grad():
            xg = model.prepare(x)
        st = model.relax(xg, model.init_state(x), T - steps, output_at=T)
        _, _, g = bp.direction(model, xg, st, y, steps, output_at=steps)
        out[f"bptt_{steps}"] = gparams(model, g)
    m = copy.deepcopy(model)
    bp.train_step(m, x, y, T=T, K=K)
    out["bptt_step"] = change(model, m)
    out["theta"] = {n: p.detach() for n, p in model.named_parameters()}
    return out


def theirs_all(nf, net, x, y):
    """The same from their code: stepper/forward('nograd') for the phases, computeGradients for ΔW,
    forward('withgrad') + their loss for the gradient, netFunctions.train for one training step."""
    T, K = net.T, net.Kmax
    out = {}
    with torch.no_grad():
        s, trace = net.initHidden(B), []
        for _ in range(T):
            s = list(net.stepper(x, s))
            trace.append([t.clone() for t in s])
        free = net.forward(x, net.initHidden(B))  # T steps, method 'nograd'
        assert all(torch.equal(a, b) for a, b in zip(free, trace[-1]))
        seq = [t.clone() for t in free]
        nudged = net.forward(x, free, target=y, beta=net.beta, method="nograd")  # Kmax nudged steps
        gw, gb = net.computeGradients(net.beta, x, nudged, seq)
    out["trace"], out["nudged"] = trace, [t.clone() for t in nudged]
    out["ep_dW"] = {}
    for i, m in enumerate(net.w):
        if m is not None:
            out["ep_dW"][f"w.{i}.weight"], out["ep_dW"][f"w.{i}.bias"] = gw[i], gb[i]
    criterion = torch.nn.MSELoss(reduction="sum")
    for label, kw in (("bptt_train", {}), ("bptt_K", {"K": K - 1})):
        # their train(): forward(method='withgrad') detaches at t == T − 1 − K, so K + 1 steps carry a graph
        net.zero_grad()
        s = net.forward(x, net.initHidden(B), method="withgrad", **kw)
        loss = (1 / (2 * s[0].size(0))) * criterion(s[0], y)  # their train()'s loss
        loss.backward()
        out[label] = {n: p.grad.detach().clone() for n, p in net.named_parameters()}
        net.zero_grad()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=B, shuffle=False)
    for label, method in (("ep_step", "eqprop"), ("bptt_step", "BPTT")):
        m = copy.deepcopy(net)
        with contextlib.redirect_stdout(io.StringIO()):
            nf.train(m, loader, 1, method)
        out[label] = change(net, m)
    out["theta"] = {n: p.detach() for n, p in net.named_parameters()}
    return out


# --------------------------------------------------------------------------- comparing
def diff(a, b):
    a, b = a.detach().double(), b.detach().double()
    d = float((a - b).abs().max())
    scale = max(float(a.abs().max()), float(b.abs().max()))
    return d, scale, (d / scale if scale > 0 else (0.0 if d == 0 else float("inf")))


def rows(o, t, pairs, layers, K, bptt=("K",)):
    """(quantity, layer, ours, theirs, θ for the update rows) for one pair of runs."""
    T = len(o["trace"])
    r = []
    for li, name in enumerate(layers):
        r.append(("free s(1)", name, o["trace"][0][li], t["trace"][0][li], None))
    for li, name in enumerate(layers):
        r.append((f"free s(T={T})", name, o["trace"][-1][li], t["trace"][-1][li], None))
    for li, name in enumerate(layers):
        r.append((f"nudged s(K={K})", name, o["nudged"][li], t["nudged"][li], None))
    for on, tn in pairs:
        r.append(("EP dW (before lr)", on, o["ep_dW"][on], t["ep_dW"][tn], None))
    for on, tn in pairs:
        r.append(("EP train-step change", on, o["ep_step"][on], t["ep_step"][tn], o["theta"][on]))
    for which in bptt:
        for on, tn in pairs:
            if which == "K":  # both truncated to K steps
                r.append((f"BPTT grad, {K} steps both", on, o[f"bptt_{K}"][on], t["bptt_K"][tn], None))
            elif which == "train":  # ours (K steps) vs their training gradient (K + 1 steps)
                r.append((f"BPTT grad, ours {K} / their train", on, o[f"bptt_{K}"][on], t["bptt_train"][tn], None))
            elif which == "train+1":  # ours with K + 1 steps vs their training gradient
                r.append((f"BPTT grad, ours {K + 1} / their train", on, o[f"bptt_{K + 1}"][on],
                          t["bptt_train"][tn], None))
    for on, tn in pairs:
        r.append(("BPTT train-step change", on, o["bptt_step"][on], t["bptt_step"][tn], o["theta"][on]))
    return r


def verdict(d32, rel32, rel64, theta):
    """Equal to float32 rounding: relative difference ≤ TOL, or, for a weight change Δθ = θ' − θ, a
    difference of at most 4 ulps of max|θ| (θ' − θ inherits the rounding of θ')."""
    ulp = torch.finfo(torch.float32).eps
    ok32 = rel32 <= TOL or (theta is not None and d32 <= 4 * ulp * float(theta.abs().max()))
    if ok32 and rel64 <= TOL64:
        return "equal"
    if rel64 <= TOL64:
        return "f64 equal; f32 rounding grew"
    return "DIFFERS"


def print_table(title, r32, r64):
    print(f"\n{title}")
    print(f"  {'quantity':34s} {'layer':8s} {'max|diff|':>9s} {'scale':>9s} {'rel f32':>9s} {'rel f64':>9s}  verdict")
    for (q, layer, a, b, th), (q64, l64, a64, b64, _) in zip(r32, r64):
        assert (q, layer) == (q64, l64)
        d, s, rel = diff(a, b)
        rel64 = diff(a64, b64)[2]
        v = verdict(d, rel, rel64, th)
        print(f"  {q:34s} {layer:8s} {d:9.2e} {s:9.2e} {rel:9.2e} {rel64:9.2e}  {v}")


def print_trace(o32, t32, o64, t64, layers):
    """Per layer: the largest relative difference over the T free steps and the first step above TOL
    (float32; float64), and each code's last-step change max|s(T) − s(T−1)|."""
    for li, name in enumerate(layers):
        parts = []
        for tag, o, t, tol in (("f32", o32, t32, TOL), ("f64", o64, t64, TOL64)):
            rels = [diff(a[li], b[li])[2] for a, b in zip(o["trace"], t["trace"])]
            first = next((i + 1 for i, v in enumerate(rels) if v > tol), None)
            parts.append(f"{tag}: max rel {max(rels):8.2e}, first step > {tol:.0e}: {first if first else 'none'}")
        lo = float((o32["trace"][-1][li] - o32["trace"][-2][li]).abs().max())
        lt = float((t32["trace"][-1][li] - t32["trace"][-2][li]).abs().max())
        print(f"  free-phase trace {name}: {'; '.join(parts)}; max|s(T)-s(T-1)| ours {lo:.1e}, theirs {lt:.1e}")


def compare(title, ours32, theirs32, nf, x, y, cfg, layers, bptt):
    pairs = load_same_weights(ours32, theirs32)
    ours64, theirs64 = copy.deepcopy(ours32).double(), copy.deepcopy(theirs32).double()
    o32 = ours_all(ours32, x, y, cfg)
    t32 = theirs_all(nf, theirs32, x, y)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # their initHidden makes its zeros in the default dtype
    try:
        o64 = ours_all(ours64, x.double(), y.double(), cfg)
        t64 = theirs_all(nf, theirs64, x.double(), y.double())
    finally:
        torch.set_default_dtype(prev)
    print_table(title, rows(o32, t32, pairs, layers, cfg["K"], bptt),
                rows(o64, t64, pairs, layers, cfg["K"], bptt))
    print_trace(o32, t32, o64, t64, layers)
    return pairs, o64, t64


def lr_table(title, ours, theirs, pairs, o64, t64, cfg):
    """Learning rate per layer: ours (per_group of the suite's list, input → output), theirs
    (lr_tab[floor(i/2)] for w[i], their updateWeights and train()), and both measured from one training
    step in float64: EP Δθ / ΔW, BPTT −Δθ / ∇ (each code's own ΔW and training gradient)."""
    ours_lr = per_group(cfg["lr"], ours, "lr")
    group_of = {f"w.{g}": g for g in ours_lr} | {f"b.s{n}": g for n, g in ours.bias_groups.items()}
    print(f"\n{title}: learning rate per parameter")
    print(f"  {'ours':7s} {'theirs':12s} {'our lr':>7s} {'their lr':>8s}   {'measured EP ours / theirs':>26s}"
          f"   {'BPTT ours / theirs':>22s}")

    def ratio(step, g):
        return float((step * g).sum() / (g * g).sum())

    for on, tn in pairs:
        i = int(tn.split(".")[1])
        their = theirs.lr_tab[i // 2]
        ep_o, ep_t = ratio(o64["ep_step"][on], o64["ep_dW"][on]), ratio(t64["ep_step"][tn], t64["ep_dW"][tn])
        bp_o = -ratio(o64["bptt_step"][on], o64[f"bptt_{cfg['K']}"][on])
        bp_t = -ratio(t64["bptt_step"][tn], t64["bptt_train"][tn])
        print(f"  {on:7s} {tn:12s} {ours_lr[group_of[on]]:7g} {their:8g}   {ep_o:12.6g} / {ep_t:<11.6g}"
              f"   {bp_o:10.6g} / {bp_t:<9.6g}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--authors-code", required=True,
                        help="a checkout of github.com/ernoult/updatesEPgradientsBPTT")
    parser.add_argument("--seed", type=int, default=0, help="torch.manual_seed for the initial weights")
    args, data = mnist(n_train=B, n_test=1, parser=parser)  # sets one torch thread
    path = Path(args.authors_code).resolve()
    nc, nf, their_main = import_authors(path, args.data_dir or str(default_data_dir()))
    print(f"authors' code: {path} at commit {authors_commit(path)}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread")

    # the mini-batch: ours (bench_datasets.MNIST) and theirs (main.py's transforms on the same IDX files)
    x, labels = data.train.x, data.train.y
    y = torch.nn.functional.one_hot(labels, 10).to(x.dtype)  # what our models' target() gives
    items = [their_main.train_loader.dataset[i] for i in range(B)]
    tx, ty = torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])
    print(f"mini-batch: first {B} training images; ours {tuple(x.shape)} {x.dtype} in "
          f"[{float(x.min())}, {float(x.max())}], "
          f"theirs {tuple(tx.shape)} {tx.dtype}; images identical: {torch.equal(x, tx)} "
          f"(max|diff| {float((x - tx).abs().max()):.1e}); one-hot targets identical: {torch.equal(y, ty)}")
    assert torch.equal(x, tx) and torch.equal(y, ty)
    print(f"tolerances: 'equal' = relative difference (max|diff| / max|value|) <= {TOL:.0e} in float32 (for a "
          f"training step's weight change: <= 4 ulps of max|θ|) and <= {TOL64:.0e} in float64")

    # P-2h, dt = 1 (like for like), ours at dt = 1 against their default dt = 0.2 (which their P-2h
    # command runs), and ours at dt = 0.2 (the "P-2h (authors' settings)" row) against the same
    for our_dt, dt, bptt in ((1.0, 1.0, ("K", "train", "train+1")), (1.0, 0.2, ("K",)),
                             (0.2, 0.2, ("K", "train", "train+1"))):
        torch.manual_seed(args.seed)
        ours = PNet(hidden=[512, 512], activation="sigmoid", init="torch", dt=our_dt)
        theirs = nc.EPdisc(their_args(their_main, THEIR_P2H, dt=dt))
        title = f"P-2h: ours (PNet, dt = {our_dt:g}) vs theirs (EPdisc, dt = {dt:g})"
        pairs, o64, t64 = compare(title, ours, theirs, nf, x, y, OUR_P2H, ["s0", "s1", "s2"], bptt)
        if dt == 1.0:
            print("  parameter map (ours -> theirs, same shape, no transposition): "
                  + ", ".join(f"{o} -> {t} {tuple(dict(ours.named_parameters())[o].shape)}" for o, t in pairs))
            lr_table("P-2h", ours, theirs, pairs, o64, t64, OUR_P2H)

    # EB-1h: ours, and ours without σ'(s^0) on the output layer, vs theirs
    for variant in ("ours", "no_sigma_prime"):
        torch.manual_seed(args.seed)
        if variant == "ours":
            model = EBNet(hidden=[512], activation="sigmoid", eps=0.2, clip=True, init="torch")
            title = "EB-1h: ours (EBNet) vs theirs (EPcont, dt = eps = 0.2)"
        else:
            model = EBNet(hidden=[512], activation="sigmoid", eps=0.2, clip=True, init="torch",
                          output_sigma_prime=False)
            title = "EB-1h: ours with output_sigma_prime = false (the output's sigma'(s0) dropped) vs theirs (EPcont)"
        theirs = nc.EPcont(their_args(their_main, THEIR_EB1H))
        pairs, o64, t64 = compare(title, model, theirs, nf, x, y, OUR_EB1H, ["s0", "s1"],
                                  ("K", "train", "train+1"))
        if variant == "ours":
            print("  parameter map (ours -> theirs, same shape, no transposition): "
                  + ", ".join(f"{o} -> {t} {tuple(dict(model.named_parameters())[o].shape)}" for o, t in pairs))
            lr_table("EB-1h", model, theirs, pairs, o64, t64, OUR_EB1H)


if __name__ == "__main__":
    main()
