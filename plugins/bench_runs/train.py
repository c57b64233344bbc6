"""Run kind ``train``: SGD on a dataset with one algorithm (the paper's Table 1).

Per epoch: seeded shuffled mini-batches, one ``algorithm.train_step`` each, then
train and test error (prediction = argmax of the output layer after ``T`` free
steps from a zero state). The model is built right after the runner seeds the
run, before anything else draws random numbers, so EP and BPTT runs with the
same seed start from the same weights (as in the paper). An epoch checkpoint
lets an interrupted run continue where it stopped, with the same result.
"""

from __future__ import annotations

import resource
import sys
import time

import torch

from harness.context import Diverged, RunContext
from harness.model import ConvergentRNN


def weights_checksum(model: torch.nn.Module) -> float:
    """A float fingerprint of the weights (to show that paired runs share them)."""
    with torch.no_grad():
        return float(sum((p.double() * (i + 1)).sum() for i, p in enumerate(model.parameters())))


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of the run: CUDA allocations on a GPU, the process's peak RSS on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def error_rate(model: ConvergentRNN, x: torch.Tensor, labels: torch.Tensor, T: int, batch: int) -> float:
    """Misclassified share in % after ``T`` free steps from zero (one host sync at the end)."""
    wrong = torch.zeros((), dtype=torch.int64, device=labels.device)
    for i in range(0, len(labels), batch):
        xb = x[i:i + batch]
        state = model.relax(xb, model.init_state(xb), T)
        wrong += (model.predict(state) != labels[i:i + batch]).sum()
    return 100.0 * wrong.item() / max(1, len(labels))


class Train:
    def __init__(self, T: int, K: int, epochs: int = 1, batch_size: int = 20, max_batches: int | None = None,
                 eval_batch_size: int = 1000, eval_T: int | None = None, eval_train: bool = True,
                 checkpoint: bool = True):
        if not 0 < K <= T:
            raise ValueError(f"train needs 0 < K <= T, got T={T}, K={K}")
        if epochs < 1 or batch_size < 1:
            raise ValueError(f"epochs and batch_size must be positive, got {epochs}, {batch_size}")
        self.T, self.K, self.epochs, self.batch_size = T, K, epochs, batch_size
        self.max_batches, self.eval_batch_size = max_batches, eval_batch_size
        self.eval_T = eval_T or T
        self.eval_train, self.checkpoint = eval_train, checkpoint

    def __call__(self, ctx: RunContext) -> None:
        model = ctx.build("model").to(ctx.device, ctx.dtype)  # first draw after seeding: shared init
        ctx.record("init_checksum", weights_checksum(model))
        algorithm = ctx.build("algorithm")
        data = ctx.build("dataset").load(ctx.device, ctx.dtype)
        n = len(data.train)
        batches = n // self.batch_size  # the last partial batch is dropped, as a DataLoader with drop_last
        if self.max_batches is not None:
            batches = min(batches, self.max_batches)
        if batches < 1:
            raise ValueError(f"the dataset has {n} training samples, fewer than batch_size = {self.batch_size}")
        shuffle = ctx.generator(offset=1)
        first_epoch, history = 1, []
        saved = ctx.load_checkpoint() if self.checkpoint else None
        if saved is not None:
            model.load_state_dict(saved["model"])
            shuffle.set_state(saved["shuffle"])
            first_epoch, history = saved["epoch"] + 1, saved["history"]
            for point in history:
                ctx.log_epoch(**point)
        if ctx.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(ctx.device)

        for epoch in range(first_epoch, self.epochs + 1):
            order = torch.randperm(n, generator=shuffle)[: batches * self.batch_size].to(ctx.device)
            _sync(ctx.device)
            start = time.perf_counter()
            for b in range(batches):
                idx = order[b * self.batch_size:(b + 1) * self.batch_size]
                x, y = data.train.x[idx], model.target(data.train.y[idx])
                algorithm.train_step(model, x, y, T=self.T, K=self.K)
                ctx.progress((epoch - 1) * batches + b + 1, self.epochs * batches, "batch",
                             f"epoch {epoch}/{self.epochs}")
            _sync(ctx.device)
            seconds = time.perf_counter() - start
            for name, p in model.named_parameters():
                if not bool(torch.isfinite(p).all()):
                    raise Diverged(f"parameter {name} is not finite after epoch {epoch}; "
                                   "lower the learning rates or β")
            test = error_rate(model, data.test.x, data.test.y, self.eval_T, self.eval_batch_size)
            train = (error_rate(model, data.train.x, data.train.y, self.eval_T, self.eval_batch_size)
                     if self.eval_train else float("nan"))
            point = {"epoch": epoch, "train_error": train, "test_error": test, "seconds": seconds,
                     "samples_per_s": batches * self.batch_size / seconds}
            history.append(point)
            ctx.log_epoch(**point)
            ctx.progress(epoch * batches, self.epochs * batches, "batch",
                         f"epoch {epoch}/{self.epochs} test {test:.2f}% train {train:.2f}%")
            if self.checkpoint and epoch < self.epochs:
                ctx.save_checkpoint({"model": model.state_dict(), "shuffle": shuffle.get_state(),
                                     "epoch": epoch, "history": history})

        last = history[-1]
        ctx.record("test_error", last["test_error"])
        if self.eval_train:
            ctx.record("train_error", last["train_error"])
        ctx.record("seconds_per_epoch", sum(h["seconds"] for h in history) / len(history))
        ctx.record("samples_per_s", sum(h["samples_per_s"] for h in history) / len(history))
        ctx.record("peak_memory_mb", peak_memory_mb(ctx.device))
        ctx.record("final_checksum", weights_checksum(model))
