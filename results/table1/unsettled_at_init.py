"""Table 1's fully connected nets at their initial weights: the share of the first 1,000 MNIST test images
whose free phase of the row's T steps has not settled (what the train kind records as
``unsettled_at_init``: one more step moves some unit by 1e-3 or more), for the Glorot initialisation the
paper's text states (the suite's) and PyTorch's default (the authors' code); seeds 0–2 of
torch.manual_seed, not the suite's streams. About two minutes on one core (EB-2h's T = 500 the most).
Run from the repository root: python results/table1/unsettled_at_init.py --data-dir ../shared/data"""

import torch
from mnist_check import mnist

from bench_models import EBNet, PNet
from bench_runs.settle import unsettled_share

x = mnist(n_train=10, n_test=1000)[1].test.x
ROWS = [  # name, model, T: as in suites/table1.toml
    ("EB-1h", lambda init: EBNet(hidden=[512], activation="sigmoid", eps=0.2, clip=True, init=init), 100),
    ("EB-2h", lambda init: EBNet(hidden=[512, 512], activation="sigmoid", eps=0.2, clip=True, init=init), 500),
    ("P-1h", lambda init: PNet(hidden=[512], activation="sigmoid", init=init), 30),
    ("P-2h", lambda init: PNet(hidden=[512, 512], activation="sigmoid", init=init), 100),
    ("P-3h", lambda init: PNet(hidden=[512, 512, 512], activation="sigmoid", init=init), 180),
]
for name, make, T in ROWS:
    for init in ("glorot", "torch"):
        shares = []
        for seed in range(3):
            torch.manual_seed(seed)
            shares.append(unsettled_share(make(init), x, T)[0])
        print(f"{name:6s} init {init:6s} T = {T:3d}: unsettled (seeds 0, 1, 2): "
              + ", ".join(f"{s:4.1f} %" for s in shares), flush=True)
