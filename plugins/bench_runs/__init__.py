"""Built-in run kinds, each in its own module: ``gdu``, ``bias``, ``train``, ``speed``."""

from __future__ import annotations

from harness.api.components import Param, Slot
from harness.api.hookspecs import hookimpl
from harness.api.steps import MAX_STEPS, batch_size, step_params

from .bias import Bias
from .gdu import GDU
from .speed import Speed
from .train import Train

#: Upper bound of epochs: the paper's longest row trains 100; a million is a typo, refused before a run
#: starts with an ETA of centuries.
MAX_EPOCHS = 10**5


@hookimpl
def register_run_kinds(register):
    register("gdu", GDU, doc="GDU demonstration (Table 3): one mini-batch, processes of an algorithm "
             "vs a baseline, metrics per layer for neurons and weights", params=[
                 *step_params(k_doc="second-phase / truncation steps compared"),
                 Param("batch_size", int, 20, min=1, doc="the first batch_size training samples; processes are "
                       "averaged over them (Appendix C.1)", max=10**7),
                 Param("keep_processes", bool, True, "save the processes as artifacts/processes.pt"),
                 Param("keep_elements", int, 1000, min=0, doc="per layer, how many elements' processes to save "
                       "(a seeded sample; 0 = all, which can be hundreds of MB for 512-wide nets)", max=10**10),
             ], slots=[
                 Slot("model", "model", "the network"),
                 Slot("dataset", "dataset", "where the mini-batch comes from"),
                 Slot("algorithm", "algorithm", "the candidate (its processes are ΔEP)", default="ep"),
                 Slot("baseline", "algorithm", "the reference (its processes are −∇BPTT)", default="bptt"),
                 Slot("metrics", "metric", "metrics per layer", many=True, default=["relmse", "sign"]),
             ], example={"T": 10, "K": 2})
    register("bias", Bias, doc="Estimator bias against β (the EP family): on one mini-batch, each β of a "
             "log grid builds the candidate with that β; RelMSE of its processes and the relative error of its "
             "summed update against each baseline (−∇BPTT, −∇RBP), and the fitted log–log slopes", params=[
                 *step_params(k_doc="second-phase / truncation steps compared"),
                 Param("betas", list[float], [1e-4, 1e-3, 1e-2, 1e-1], min=0, distinct=True,
                       doc="the β grid (log-spaced)"),
                 batch_size("the first batch_size training samples"),
                 Param("fit", list[float] | None, None, min=0, doc="[low, high]: the β range of the slope "
                       "fit (None: the whole grid)"),
             ], slots=[
                 Slot("model", "model", "the network"),
                 Slot("dataset", "dataset", "where the mini-batch comes from"),
                 Slot("algorithm", "algorithm", "the estimator (must have a beta parameter)", default="ep"),
                 Slot("baselines", "algorithm", "the exact gradients it is compared with", many=True,
                      default=["bptt", "rbp"]),
                 Slot("metric", "metric", "the process metric", default="relmse"),
             ], example={"T": 10, "K": 2, "betas": [0.01, 0.1]})
    register("train", Train, doc="Training (Table 1): SGD on mini-batches with one algorithm, train and "
             "test error per epoch (and unpredicted_classes: classes predicted for no test sample; "
             "unsettled: % of test images whose free phase has not settled after T steps), time and memory", params=[
                 *step_params(t_doc="first-phase steps (also used to predict)"),
                 Param("epochs", int, 1, min=1, max=MAX_EPOCHS, doc="passes over the training set"),
                 batch_size(),
                 Param("max_batches", int | None, None, min=1, doc="stop each epoch after this many batches "
                       "(quick suites and speed checks); None = the whole training set", max=10**12),
                 Param("eval_batch_size", int, 1000, min=1, doc="batch size when measuring errors", max=10**7),
                 Param("eval_T", int | None, None, min=1, max=MAX_STEPS,
                       doc="free steps when measuring errors (default T)"),
                 Param("eval_train", bool, True, "also measure the error on the whole training set"),
                 Param("checkpoint", bool, True, "save a checkpoint after every epoch, to resume"),
             ], slots=[
                 Slot("model", "model", "the network"),
                 Slot("algorithm", "algorithm", "how it learns (ep or bptt, with lr and β)"),
                 Slot("dataset", "dataset", "the data (mnist, blobs, ...)"),
             ], example={"T": 10, "K": 2})
    register("speed", Speed, doc="Training speed (the speed suite): samples/s, s/epoch and peak memory of "
             "the fast path and of the generic path (fast = false: autograd on Φ, no fast paths) in the same "
             "run, interleaved repetitions after a warm-up, medians, and the speed-up", params=[
                 *step_params(),
                 batch_size(),
                 Param("batches", int, 5, min=1,
                       doc="mini-batches per repetition (a seeded sample of the training set)", max=10**9),
                 Param("warmup", int, 1, min=0, doc="untimed repetitions of each path first", max=10**6),
                 Param("repeats", int, 5,
                       min=1, doc="timed repetitions of each path, interleaved; the median is kept", max=10**6),
                 Param("epoch_samples", int, 60000, min=1, doc="samples of the epoch that seconds_per_epoch is "
                       "extrapolated to (MNIST: 60,000)", max=10**12),
                 Param("threads", int, 0, min=0,
                       doc="torch intra-op threads during the run (0: leave torch's setting)", max=4096),
                 Param("members", int, 0, min=0, doc="also time this many runs batched as one stacked model "
                       "(batch_seeds), and for EP, paired with as many BPTT runs at the same learning rates "
                       "(batch_algorithms); 0: not measured", max=10**4),
                 Param("compiled", bool, False, "also time torch.compile of the whole training step (its compile "
                       "time apart) and check its parameters against the fast path's", quiet_default=True),
             ], slots=[
                 Slot("model", "model", "the network"),
                 Slot("algorithm", "algorithm", "how it learns (ep or bptt, with lr and β)"),
                 Slot("dataset", "dataset", "where the mini-batches come from"),
             ], example={"T": 10, "K": 2})
