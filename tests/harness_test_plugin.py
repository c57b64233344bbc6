"""A small plugin used by the harness tests (registered like any third-party plugin).

Run kind ``score`` records ``score = offset + seed`` for each seed, so means and
standard deviations over seeds are known exactly; it can also fail, produce
NaN, or be interrupted on request, and it counts its executions.
"""

import os
import time

from harness import Diverged, Param, Slot, hookimpl

EXECUTIONS: list[str] = []


class Const:
    def __init__(self, offset: float, width: int):
        self.offset, self.width = offset, width


BATCHES: list[list[str]] = []


def make_score(mode: str, epochs: int, hold_file: str = ""):
    def execute_batch(ctxs):
        BATCHES.append([c.spec.id for c in ctxs])
        for c in ctxs:
            c.reseed()
            execute(c)

    def execute(ctx):
        EXECUTIONS.append(ctx.spec.id)
        with open(ctx.store.dir / "executions.log", "a") as log:  # counts across processes
            log.write(f"{os.getpid()}\n")
        deadline = time.monotonic() + 60
        while hold_file and os.path.exists(hold_file) and time.monotonic() < deadline:
            time.sleep(0.02)  # a long run, until the test lets it finish
        model = ctx.build("model")
        for epoch in range(1, epochs + 1):
            # dip: lowest at epoch 2 and again at epoch 4 (a tie the first wins); "nan" for seed 6
            dip = float("nan") if ctx.seed == 6 else abs(epoch - 2) * abs(epoch - 4) + ctx.seed
            ctx.log_epoch(epoch, loss=1.0 / epoch, dip=dip)
            ctx.progress(epoch, epochs, "epoch")
        if mode == "fail" or (mode == "fail_seeds_from_3" and ctx.seed >= 3):
            raise RuntimeError("deliberate failure for the test")
        if mode == "interrupt":
            raise KeyboardInterrupt
        if mode == "diverge":
            raise Diverged("weights are NaN at epoch 1")
        value = float("nan") if mode == "nan" else model.offset + ctx.seed
        ctx.record("score", value)
        ctx.record("width", model.width)
        for layer in ("W01", "W12"):
            ctx.record("per_layer", model.offset * (2 if layer == "W12" else 1), layer=layer)

    execute.execute_batch = execute_batch
    return execute


@hookimpl
def register_models(register):
    register("const", Const, params=[Param("offset", float, doc="added to the seed"),
                                     Param("width", int, 3, "an integer parameter")],
             doc="A model that is a constant.")
    # a second component with fewer settings: a table note on model.width has no value for it
    register("point", lambda offset: Const(offset, 0), params=[Param("offset", float, doc="added to the seed")],
             doc="A constant without a width setting.")


@hookimpl
def register_run_kinds(register):
    register("score", make_score,
             params=[Param("mode", str, "ok", "what to do", choices=("ok", "fail", "fail_seeds_from_3", "nan", "diverge", "interrupt")),
                     Param("epochs", int, 2),
                     Param("hold_file", str, "", "while this file exists, the run waits (max 60 s)")],
             slots=[Slot("model", "model")],
             doc="Records offset + seed.")
