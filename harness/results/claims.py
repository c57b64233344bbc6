"""Claiming a run before executing it, so that no run executes twice at once.

Several workers (processes, machines, ``bench run`` invocations) may share one
results tree. Before a run starts, its worker creates ``claim.json`` in the run
directory with ``O_CREAT | O_EXCL`` (atomic on local file systems and NFSv3+),
and refreshes its expiry from a heartbeat thread while the run executes. A
claim is stale, and may be broken, when its expiry has passed (the worker died
or hangs) or when it was made on this host by a process that no longer exists
(a SIGKILLed worker, detected at once).
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import uuid
from pathlib import Path

from harness.results.store import RunStore, Status, write_json

#: Seconds a claim lives without a heartbeat. Heartbeats come every TTL / 4.
DEFAULT_TTL = float(os.environ.get("BENCH_CLAIM_TTL", "120"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_claim(path: Path) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def is_stale(claim: dict | None, now: float | None = None) -> bool:
    if claim is None:
        return True
    now = time.time() if now is None else now
    if claim.get("expires", 0) < now:
        return True
    if claim.get("host") == socket.gethostname() and not _pid_alive(int(claim.get("pid", -1))):
        return True
    return False


class Claim:
    """An exclusive, expiring claim on one run directory."""

    def __init__(self, run_dir: Path, ttl: float = DEFAULT_TTL, name: str = "claim.json"):
        self.path = Path(run_dir) / name
        self.ttl = ttl
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _record(self) -> dict:
        return {"token": self.token, "host": socket.gethostname(), "pid": os.getpid(),
                "expires": time.time() + self.ttl}

    def acquire(self) -> bool:
        """True when this worker now owns the run; False when a live worker does."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                current = read_claim(self.path)
                if current is None:  # being written by its creator right now, or torn
                    time.sleep(0.05)
                    current = read_claim(self.path)
                if not is_stale(current):
                    return False
                self._break(current)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(self._record(), f)
                f.flush()
                os.fsync(f.fileno())
            self._start_heartbeat()
            return True
        return False

    def _break(self, stale: dict | None) -> None:
        """Move a stale claim aside; if another worker replaced it meanwhile, put theirs back."""
        aside = self.path.with_name(f"{self.path.stem}.stale-{uuid.uuid4().hex}.json")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        moved = read_claim(aside)
        if stale is not None and moved is not None and moved.get("token") != stale.get("token"):
            try:
                os.link(aside, self.path)  # fails if a third worker claimed in between
            except FileExistsError:
                pass
        aside.unlink(missing_ok=True)

    def _start_heartbeat(self) -> None:
        def beat():
            while not self._stop.wait(self.ttl / 4):
                if (read_claim(self.path) or {}).get("token") != self.token:
                    return  # lost (broken by someone who judged us dead): stop refreshing
                write_json(self.path, self._record())

        self._thread = threading.Thread(target=beat, name="bench-claim-heartbeat", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if (read_claim(self.path) or {}).get("token") == self.token:
            self.path.unlink(missing_ok=True)


#: The name of a :class:`Queue` file begins with this, then the host and the pid.
QUEUE_PREFIX = "queue-"


class Queue(Claim):
    """The runs a live ``bench run`` has yet to execute, in one file per invocation in the suite's
    results directory (``queue-HOST-PID.json``, kept alive by a heartbeat as a claim is), so that
    ``bench status`` says a run waiting for its turn is queued, not interrupted or missing. It only
    informs: each run's own claim still decides who executes it."""

    def __init__(self, base: Path, run_ids: list[str], ttl: float = DEFAULT_TTL):
        host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())
        super().__init__(base, ttl, name=f"{QUEUE_PREFIX}{host}-{os.getpid()}.json")
        self.runs, self.started = list(run_ids), time.time()

    def _record(self) -> dict:
        return {**super()._record(), "runs": self.runs, "started": self.started}

    def __enter__(self) -> Queue:
        for path in self.path.parent.glob(f"{QUEUE_PREFIX}*.json"):  # those of dead invocations
            if path != self.path and is_stale(read_claim(path)):
                path.unlink(missing_ok=True)
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def live_queues(base: Path) -> dict[str, dict]:
    """Run id -> the record of the live ``bench run`` that has it queued (see :class:`Queue`)."""
    out: dict[str, dict] = {}
    for path in sorted(Path(base).glob(f"{QUEUE_PREFIX}*.json")) if Path(base).is_dir() else []:
        record = read_claim(path)
        if record is not None and not is_stale(record):
            out.update({str(r): record for r in record.get("runs", [])})
    return out


def live_claim(run_dir: Path) -> dict | None:
    """The claim of a live worker on this run, or None."""
    claim = read_claim(Path(run_dir) / "claim.json")
    return None if is_stale(claim) else claim


def run_state(store: RunStore, record: dict | None = None) -> str:
    """The run's status as people should see it: status.json's, except that a run "running" with no
    live worker's claim is "interrupted" (its worker died without recording an outcome; the next
    `bench run` resumes it). ``record``: its status.json, when already read."""
    state = (record if record is not None else store.status_record()).get("status", Status.MISSING)
    return Status.INTERRUPTED if state == Status.RUNNING and live_claim(store.dir) is None else state
