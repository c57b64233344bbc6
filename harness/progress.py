"""Progress lines that read well on a terminal and in a non-interactive log.

On a terminal the current line is rewritten in place; in a log a line is
printed at most every ``interval`` seconds per run, so logs stay short.
"""

from __future__ import annotations

import sys
import time
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
        self.total_runs, self.index, self.quiet = total_runs, 0, quiet
        self._last = 0.0
        self._first: dict[str, tuple[float, int]] = {}  # run id -> (time, done) of its first update

    def start_run(self, index: int, run_id: str, size: int = 1) -> None:
        """Run ``index`` starts; a batch of ``size`` runs is numbered ``index``–``index + size − 1``."""
        index += self.first - 1
        self.index = index if size == 1 else f"{index}-{index + size - 1}"
        self._last = 0.0
        self._emit(f"[{self.index}/{self.total_runs}] {run_id}: started", final=not self.tty)

    def update(self, spec, done: int, total: int, unit: str, info: str, elapsed: float) -> None:
        """``done`` of ``total`` units. The ETA is the rate since this run's first update times what is
        left: set-up time (data, model) and work resumed from a checkpoint do not distort it, and no
        ETA is shown before there is a rate to take it from."""
        now = time.monotonic()
        t0, done0 = self._first.setdefault(spec.id, (now, done))
        if done < total and now - self._last < self.interval:
            return
        self._last = now
        rate = (done - done0) / (now - t0) if done > done0 and now > t0 else 0.0
        eta = f"  ETA {fmt_seconds((total - done) / rate)}" if rate > 0 and done < total else ""
        text = (f"[{self.index}/{self.total_runs}] {spec.id}: {unit} {done}/{total}"
                f"  {fmt_seconds(elapsed)} elapsed{eta}" + (f"  {info}" if info else ""))
        self._emit(text, final=not self.tty)

    def end_run(self, run_id: str, status: str, seconds: float, note: str = "", index: int | None = None) -> None:
        """A run ended (``index``: its own number within a batch)."""
        number = index + self.first - 1 if index else self.index
        self._emit(f"[{number}/{self.total_runs}] {run_id}: {status} in {fmt_seconds(seconds)}"
                   + (f"  {note}" if note else ""), final=True)

    def message(self, text: str) -> None:
        self._emit(text, final=True)

    def _emit(self, text: str, final: bool) -> None:
        if self.quiet:
            return
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
