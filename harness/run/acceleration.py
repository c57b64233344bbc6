"""Step acceleration, owned by the core because every run kind and algorithm shares it: a training
step replayed as a CUDA graph, or compiled with ``torch.compile``, checked against the eager step at
first use.

A mini-batch step of EP or BPTT on these nets is hundreds of tiny kernels launched
one after another; on a GPU the launches, not the arithmetic, set the pace.
:class:`GraphedStep` captures ``algorithm.train_step(model, x, y, T=T, K=K)`` once
(``torch.cuda.graph``: the whole free phase, nudged phase or backward pass, and the
in-place parameter update) and replays it for every later mini-batch of the same
shape, after copying the batch into the captured input buffers.

Defensive by construction, because a capture can silently differ (an operation that
synchronises, allocates outside the pool, or reads a host value):

* on first use (and after a shape change) it runs the eager step on the batch, records
  the parameters it produced, restores the parameters, captures, replays once, and
  compares; if the parameters or the returned values differ beyond ``rtol``/``atol``,
  or the capture raises, it warns, keeps the eager result and stays eager for good;
* anything but CUDA (or ``enabled = False``) is eager: it is the identity wrapper.

The capture mechanism is a small *backend* object (``capture(fn) -> outputs``,
``replay()``), so everything but the CUDA calls themselves is tested on a CPU with a
stand-in backend (tests/test_fast_paths.py). What could not be verified without a GPU:
that ``torch.cuda.graph`` captures these steps (autograd included) and how fast the
replay is.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from harness.api.algorithm import capability as algorithm_capability
from harness.api.model import capability as model_capability

StepFn = Callable[[Tensor, Tensor], dict[str, Tensor]]


class CudaGraphBackend:
    """Capture with ``torch.cuda.graph`` after warm-up iterations on a side stream."""

    def __init__(self, warmup: int = 3):
        self.warmup = warmup
        self.graph: Any = None

    def capture(self, fn: Callable[[], dict[str, Tensor]], restore: Callable[[], None]) -> dict[str, Tensor]:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(self.warmup):  # cuBLAS workspaces, autograd's buffers: before capture
                fn()
                restore()
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            out = fn()
        return out

    def replay(self) -> None:
        self.graph.replay()


class GraphedStep:
    """``step(x, y)`` for one model and algorithm: replayed as a graph where possible."""

    def __init__(self, step: StepFn, model: torch.nn.Module, *, backend: Any = None, enabled: bool | None = None,
                 rtol: float = 1e-4, atol: float = 1e-6, warn: Callable[[str], None] | None = None):
        """``warn``: where the fallback's reason goes (a run's ``ctx.warn``, so that `bench status` and
        status.json keep it); by default a ``RuntimeWarning``."""
        self.step, self.model, self.warn = step, model, warn
        if enabled is None:
            enabled = backend is not None or next(model.parameters()).device.type == "cuda"
        self.enabled = enabled
        self.backend_factory = (lambda: backend) if backend is not None else CudaGraphBackend
        self.rtol, self.atol = rtol, atol
        self.key: tuple | None = None
        self.static: tuple[Tensor, Tensor] | None = None
        self.out: dict[str, Tensor] | None = None
        self.backend: Any = None
        self.fallback_reason = ""
        self.replays = 0

    @property
    def graphed(self) -> bool:
        return self.backend is not None

    def __call__(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        if not self.enabled:
            return self.step(x, y)
        key = (tuple(x.shape), tuple(y.shape), x.dtype, y.dtype, x.device)
        if self.backend is None or key != self.key:
            return self._capture(x, y, key)
        assert self.static is not None and self.out is not None  # set with the backend, by _capture
        self.static[0].copy_(x)
        self.static[1].copy_(y)
        self.backend.replay()
        self.replays += 1
        return self.out

    def _params(self) -> list[Tensor]:
        return [p.detach() for p in self.model.parameters()]

    def _set(self, values: list[Tensor]) -> None:
        with torch.no_grad():
            for p, v in zip(self._params(), values):
                p.copy_(v)

    def _give_up(self, reason: str, backend: Any = None) -> None:
        self.enabled, self.backend, self.fallback_reason = False, None, reason
        message = f"{getattr(backend, 'name', 'CUDA graph')} not used, running eagerly: {reason}"
        if self.warn is not None:
            self.warn(message)
        else:
            warnings.warn(message, RuntimeWarning, stacklevel=3)

    def _capture(self, x: Tensor, y: Tensor, key: tuple) -> dict[str, Tensor]:
        start = [p.clone() for p in self._params()]
        eager_out = {k: v.clone() for k, v in self.step(x, y).items()}
        eager_params = [p.clone() for p in self._params()]
        self._set(start)
        static = (x.clone(), y.clone())
        backend = self.backend_factory()
        try:
            out = backend.capture(lambda: self.step(*static), lambda: self._set(start))
            self._set(start)
            backend.replay()
        except Exception as exc:  # noqa: BLE001 - any failure to capture means: stay eager
            self._set(eager_params)
            self._give_up(f"capture failed ({type(exc).__name__}: {exc})", backend)
            return eager_out
        bad: list[int | str] = [i for i, (p, e) in enumerate(zip(self._params(), eager_params))
                                if not torch.allclose(p, e, rtol=self.rtol, atol=self.atol)]
        bad += [k for k in eager_out if k not in out or not torch.allclose(out[k], eager_out[k], rtol=self.rtol,
                                                                           atol=self.atol, equal_nan=True)]
        if bad:
            self._set(eager_params)
            self._give_up(f"the replay differs from the eager step (in {bad[:3]})", backend)
            return eager_out
        self.backend, self.key, self.static, self.out = backend, key, static, out
        return out


def compile_step(fn: Callable[..., Any]) -> Any:
    """``torch.compile(fn)`` without inductor's benchmark harness: inductor writes the argument after
    ``--only`` on the command line into each compiled module as a Python string, so ``bench run
    --only "EB-1h (authors' settings)"`` made every compile fail with a SyntaxError (torch 2.13)."""
    return torch.compile(fn, options={"benchmark_harness": False})


class CompileBackend:
    """The same first-use check for ``torch.compile`` of the step: "capture" compiles it and runs it
    once, "replay" runs the compiled step again (on the static inputs GraphedStep fills) and copies
    its outputs into the first call's, which GraphedStep hands out."""

    name = "torch.compile"

    def __init__(self):
        self.fn: Any = None
        self.out: dict[str, Tensor] | None = None

    def capture(self, fn: Callable[[], dict[str, Tensor]], restore: Callable[[], None]) -> dict[str, Tensor]:
        self.fn = compile_step(fn)
        self.out = {k: v.clone() for k, v in self.fn().items()}
        return self.out

    def replay(self) -> None:
        assert self.out is not None  # set by capture, which comes first
        for k, v in self.fn().items():
            self.out[k].copy_(v)


def compiled_train_step(algorithm: Any, model: torch.nn.Module, *, T: int, K: int,
                        warn: Callable[[str], None] | None = None) -> GraphedStep:
    """``algorithm.train_step`` compiled with ``torch.compile``, checked against the eager step at
    first use (and after a shape change): where they differ, or compiling fails, it warns and stays
    eager (results/speed/TABLE-cpu.md: it caught torch 2.13 dropping a coefficient, harness/api/optimizer.py)."""
    enabled = not algorithm_capability(algorithm, "stateful")
    return GraphedStep(lambda x, y: algorithm.train_step(model, x, y, T=T, K=K), model,
                       backend=CompileBackend(), enabled=enabled, rtol=1e-4, atol=1e-6, warn=warn)


def graphed_train_step(algorithm: Any, model: torch.nn.Module, *, T: int, K: int, **kwargs: Any) -> GraphedStep:
    """``algorithm.train_step`` as a :class:`GraphedStep` (graphed on CUDA, eager elsewhere).

    Used only for models on the fast path (``model.fast``): the generic path stays eager, and so does
    a ``stateful`` algorithm (an optimizer's moments, a drawn sign: a replay would repeat or skip them).
    """
    enabled = kwargs.pop("enabled", None)
    if not model_capability(model, "fast") or algorithm_capability(algorithm, "stateful"):
        enabled = False
    return GraphedStep(lambda x, y: algorithm.train_step(model, x, y, T=T, K=K), model, enabled=enabled, **kwargs)
