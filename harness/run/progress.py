"""Progress lines that read well on a terminal and in a non-interactive log.

On a terminal the current line is rewritten in place, and a warning printed meanwhile clears it
first (so the two are never glued together); in a log a line is printed at most every
``interval`` seconds per run, so logs stay short.

An ETA extrapolates a rate, so it is shown only when the units are worth the same: a kind says
after how many units its rate holds (``eta_after``: a training run, after its first epoch and
evaluation; ``None``: never, for phases of unequal cost). Beside it, the time left for every run this
process has still to execute, from the time the ended ones took (labelled ``≈``: runs differ).
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from collections.abc import Iterator
from typing import TextIO


def fmt_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    def __init__(self, total_runs: int | None, stream: TextIO | None = None, interval: float | None = None,
                 quiet: bool = False, first: int = 1):
        self.first = first  # the number the first run shown gets (a worker's share of a suite)
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if interval is not None else (0.5 if self.tty else 10.0)
        self.total_runs, self.quiet = total_runs, quiet
        self.index: int | str = 0  # the run's number, or "first-last" for a batch
        self._last = 0.0
        self._first: dict[str, tuple[float, int]] = {}  # run id -> (time, done) of its first update
        self.expected = 0  # runs this process will execute (set by the runner), for the ETA of all
        self._ended, self._size = 0, 1  # runs ended, and the size of the current one (a batch)
        self._began: float | None = None  # when the first run began
        self._line = ""  # the progress line on screen (a terminal), redrawn after a warning

    def start_run(self, index: int, run_id: str, size: int = 1) -> None:
        """Run ``index`` starts; a batch of ``size`` runs is numbered ``index``–``index + size − 1``."""
        index += self.first - 1
        self.index = index if size == 1 else f"{index}-{index + size - 1}"
        self._last, self._size = 0.0, size
        if self._began is None:
            self._began = time.monotonic()
        self._emit(f"[{self.index}/{self.total_runs}] {run_id}: started", final=not self.tty)

    def update(self, spec, done: int, total: int, unit: str, info: str, elapsed: float,
               eta_after: int | None = 0) -> None:
        """``done`` of ``total`` units. The ETA is the rate since this run's first update times what is
        left: set-up time (data, model) and work resumed from a checkpoint do not distort it. It is
        shown once ``eta_after`` units are done since then (``None``: never)."""
        now = time.monotonic()
        t0, done0 = self._first.setdefault(spec.id, (now, done))
        if done < total and now - self._last < self.interval:
            return
        self._last = now
        rate = (done - done0) / (now - t0) if done > done0 and now > t0 else 0.0
        eta = ""
        if rate > 0 and done < total and eta_after is not None and done - done0 >= eta_after:
            left = (total - done) / rate
            eta = f"  ETA {fmt_seconds(left)}" + self._all_left(left, elapsed + left)
        elif self._ended and done < total:  # no rate to trust yet: this run as long as the ended ones
            eta = self._all_left(None, None, elapsed)
        text = (f"[{self.index}/{self.total_runs}] {spec.id}: {unit} {done}/{total}"
                f"  {fmt_seconds(elapsed)} elapsed{eta}" + (f"  {info}" if info else ""))
        self._emit(text, final=not self.tty)

    def _all_left(self, left: float | None, projected: float | None, elapsed: float = 0.0) -> str:
        """The time left for every run this process has yet to execute: this run's ETA, and the
        runs after it at the mean wall time per run of those ended (or this one's projection). Without
        an ETA (``left`` None), this run is taken to last as long as the ended ones did on average."""
        after = self.expected - self._ended - self._size
        began = self._began if self._began is not None else time.monotonic()
        if self._ended:
            per_run = (time.monotonic() - began) / self._ended
        elif projected is not None:
            per_run = projected / self._size
        else:
            return ""
        if left is None:
            left = max(per_run * self._size - elapsed, 0.0)
        elif after <= 0:
            return ""
        n = max(after, 0) + self._size
        what = f"all {n} runs" if n > 1 else "this run"
        return f" ({what} left ≈ {fmt_seconds(left + max(after, 0) * per_run)})"

    def end_run(self, run_id: str, status: str, seconds: float, note: str = "", index: int | None = None) -> None:
        """A run ended (``index``: its own number within a batch)."""
        number = index + self.first - 1 if index else self.index
        self._ended += 1
        self._emit(f"[{number}/{self.total_runs}] {run_id}: {status} in {fmt_seconds(seconds)}"
                   + (f"  {note}" if note else ""), final=True)

    def message(self, text: str) -> None:
        """A line of its own; on a terminal it replaces the progress line, which is drawn again below."""
        line = self._line
        self._emit(text, final=True)
        if line and self.tty and not self.quiet:
            self._emit(line, final=False)

    @contextlib.contextmanager
    def warnings_as_messages(self) -> Iterator[None]:
        """Python warnings (torch's, a plugin's) printed as messages while runs execute."""
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            self.message(warnings.formatwarning(message, category, filename, lineno, line).rstrip())

        warnings.showwarning = show
        try:
            yield
        finally:
            warnings.showwarning = shown

    def _emit(self, text: str, final: bool) -> None:
        if self.quiet:
            return
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
            self._line = "" if final else text
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
