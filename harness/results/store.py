"""The results store: one directory per run under ``<results>/<suite>/<run id>/``.

Files of a run directory:
  config.json       the resolved configuration (what ran)
  environment.json  Python, torch, CUDA, plugin versions, device, git commit; a resumed run's also
                    lists under "earlier" the invocations that trained the part it resumed ("until")
  metrics.json      final records and per-epoch curves
  status.json       written last: ``done`` only once everything else is in place
  error.txt         the traceback of a failed run
  artifacts/        tensors a run kind keeps (GDU processes, ...)
  checkpoint.pt     the latest epoch checkpoint of an unfinished run
  checkpoint.json   beside it, for `bench status`: how far it is, the run's time so far, when saved

Every file is written to a temporary name and renamed into place, so a crash
never leaves a half-written file that looks complete. A file damaged anyway
(truncated by a full disk, edited by hand, copied half-way) makes its run
``corrupt``: every reading command shows it as such and goes on, and the next
``bench run`` re-runs it. Files are readable by the group and others (as the
umask allows), so a shared results tree stays readable to collaborators.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any


class Status(StrEnum):
    """A run's state. The first five are what status.json records; a reader finds the last three
    (no status.json yet; a result file that cannot be read; a run not finished that a live ``bench
    run`` has yet to execute)."""

    DONE = "done"
    FAILED = "failed"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"
    RUNNING = "running"
    MISSING = "missing"
    CORRUPT = "corrupt"
    QUEUED = "queued"


#: The states status.json may hold.
STATUSES = (Status.DONE, Status.FAILED, Status.DIVERGED, Status.INTERRUPTED, Status.RUNNING)
#: Outcomes that did not finish cleanly: `bench status` exits 1, `bench run` re-runs them only on request.
UNSUCCESSFUL = (Status.FAILED, Status.DIVERGED, Status.CORRUPT)
#: Where a re-run of a recorded run writes (inside its directory), and where the old files wait
#: during the swap; both are removed once it is over.
NEXT, PREV = ".next", ".prev"


class CorruptResult(ValueError):
    """A result file that exists but cannot be read; the message names it."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "w") -> None:
    """Write through ``write(fileobj)`` into a temp file, fsync, then rename.

    ``mode`` is ``"w"`` for text or ``"wb"`` for bytes (e.g. ``torch.save``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are shared like any file
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _jsonable(value: Any) -> Any:
    """JSON without NaN literals: non-finite floats become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _unjsonable(value: Any) -> Any:
    """The inverse of :func:`_jsonable` for one value: "nan", "inf", "-inf" become floats again."""
    return float(value) if isinstance(value, str) and value in _NON_FINITE else value


_NON_FINITE = {str(float(v)) for v in ("nan", "inf", "-inf")}


def write_json(path: Path, data: Any) -> None:
    text = json.dumps(_jsonable(data), indent=2, sort_keys=False)
    atomic_write(path, lambda f: f.write(text + "\n"))


def read_json(path: Path) -> Any:
    with open(path) as f:
        return json.load(f)


def printable(text: str) -> str:
    """``text`` with every unprintable character (a terminal escape, a newline) shown as ``?``: for
    strings read from result files and printed to a terminal."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _duration(seconds: float) -> str:
    """A wall time for people: "under a minute", "12 min", "3.4 h"."""
    minutes = round(seconds / 60)
    return "under a minute" if minutes < 1 else f"{minutes} min" if minutes < 60 else f"{seconds / 3600:.1f} h"


def read_record(path: Path, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON object from a result file; :class:`CorruptResult` naming the file when it cannot be
    read or lacks a ``required`` key (``FileNotFoundError`` passes through)."""
    try:
        data = read_json(path)
    except (ValueError, UnicodeDecodeError) as exc:  # json.JSONDecodeError is a ValueError
        raise CorruptResult(f"{path} is damaged ({type(exc).__name__}: {exc})") from None
    except IsADirectoryError:
        raise CorruptResult(f"{path} is a directory, not a file") from None
    if not isinstance(data, dict) or any(k not in data for k in required):
        raise CorruptResult(f"{path} is damaged (expected a JSON object with {', '.join(required) or 'keys'})")
    return data


#: Written by an executor that queues a run (not a result: it survives a re-run's replacement).
SUBMISSION = "submission.json"


class RunStore:
    """Reads and writes the files of one run."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)

    @property
    def artifacts(self) -> Path:
        return self.dir / "artifacts"

    @property
    def checkpoint(self) -> Path:
        return self.dir / "checkpoint.pt"

    @property
    def checkpoint_note_path(self) -> Path:
        """Beside the checkpoint: how far it is and when it was saved (RunContext.save_checkpoint)."""
        return self.dir / "checkpoint.json"

    def checkpoint_note(self) -> str | None:
        """Where an unfinished run would resume, for people (``bench status``): "after epoch 30 of 50, 3.4 h
        of the run so far, about 2.1 h more at that pace, saved ..." (the pace of the invocation that saved
        it, or of the whole run for an older note); None without a checkpoint. A note that is damaged, or that describes
        another checkpoint (its size differs: a crash between the two writes, a file copied by hand), says
        so instead of describing the wrong one."""
        if not self.checkpoint.is_file():
            return None
        path = self.checkpoint_note_path
        if not path.exists():
            return "present; saved before checkpoints had notes (its epoch is inside checkpoint.pt)"
        try:
            note, current = self._checkpoint_record(("progress", "seconds", "saved"))
            seconds, progress, saved = note["seconds"], note["progress"], note["saved"]
            if not (isinstance(progress, str) and isinstance(saved, str)
                    and isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
                    and math.isfinite(seconds) and seconds >= 0):
                raise CorruptResult(f"{path} is damaged (unexpected values)")
        except (CorruptResult, OSError, RecursionError):
            return f"present; its note {path.name} is damaged (the checkpoint itself is read when the run resumes)"
        if not current:
            return f"present; its note {path.name} describes another checkpoint (a crash between the two, or a copy)"
        done = note.get("done")  # the share of the run behind the checkpoint, where its kind says it
        pace = note.get("pace")  # the whole run's seconds at the pace of the invocation that saved it
        rest = math.nan
        if isinstance(done, float) and 1e-6 <= done < 1:
            if isinstance(pace, (int, float)) and not isinstance(pace, bool) and 0 < pace < math.inf:
                rest = pace * (1 - done)
            else:
                rest = seconds * (1 - done) / done
        left = ""
        if math.isfinite(rest):
            rest_text = _duration(rest)
            left = f"{'' if rest_text.startswith('under') else 'about '}{rest_text} more at that pace"
        text = ", ".join(filter(None, [progress, f"{_duration(seconds)} of the run so far", left, f"saved {saved}"]))
        return printable(text)

    def checkpoint_done(self) -> Any:
        """The share of the run that checkpoint.json says is behind the checkpoint, if the note describes this
        checkpoint; else None (what a resumed run's pace for ``bench status`` starts from)."""
        try:
            note, current = self._checkpoint_record(("done",))
        except (CorruptResult, OSError, RecursionError):
            return None
        return note["done"] if current else None

    def _checkpoint_record(self, keys: tuple[str, ...]) -> tuple[dict[str, Any], bool]:
        """checkpoint.json with ``keys``, and whether it describes checkpoint.pt as it is now (the size it
        recorded matches: the two are written one after the other, so a crash or a copy can part them).
        Raises CorruptResult or OSError when the note cannot be read."""
        path = self.checkpoint_note_path
        if not path.is_file():
            raise CorruptResult(f"{path} is not a file")
        note = read_record(path, (*keys, "bytes"))
        if not isinstance(note["bytes"], int) or isinstance(note["bytes"], bool):
            raise CorruptResult(f"{path} is damaged (its bytes is not a count)")
        return note, note["bytes"] == self.checkpoint.stat().st_size

    def status(self) -> str:
        """``done``, ``failed``, ..., ``missing`` when no status was written, or ``corrupt``."""
        return self.status_record()["status"]

    def status_record(self) -> dict[str, Any]:
        """status.json; ``{"status": "corrupt", "error": ...}`` when it, or a done run's
        metrics.json, cannot be read."""
        try:
            record = read_record(self.dir / "status.json", ("status",))
            if record["status"] not in STATUSES:
                raise CorruptResult(f"{self.dir / 'status.json'} is damaged (unknown status {record['status']!r})")
            if record["status"] == "done":
                self.metrics(required=True)  # metrics.json is written before status.json
        except FileNotFoundError as exc:
            if Path(exc.filename or "").name == "metrics.json":
                return {"status": Status.CORRUPT, "error": f"{exc.filename} is missing; the next `bench run` "
                        "re-runs this run"}
            return {"status": Status.MISSING}
        except (CorruptResult, OSError) as exc:
            return {"status": Status.CORRUPT, "error": f"{exc}; the next `bench run` re-runs this run"}
        return record

    def is_complete(self) -> bool:
        return self.status() == "done"

    def metrics(self, required: bool = False) -> dict[str, Any]:
        """Final values and curves; empty for a run that wrote none yet (unless ``required``).
        Raises :class:`CorruptResult` when the file is damaged."""
        path = self.dir / "metrics.json"
        try:
            data = read_record(path, ("final", "curves"))
        except FileNotFoundError:
            if required:
                raise
            return {"final": [], "curves": []}
        if not isinstance(data["final"], list) or not isinstance(data["curves"], list) or \
                not all(isinstance(r, dict) and "metric" in r and "value" in r for r in data["final"]):
            raise CorruptResult(f"{path} is damaged (final values or curves malformed)")
        # non-finite floats were written as strings (JSON has no NaN): readers get floats back
        data["final"] = [{**r, "value": _unjsonable(r["value"])} for r in data["final"]]
        data["curves"] = [{k: _unjsonable(v) for k, v in point.items()} if isinstance(point, dict) else point
                          for point in data["curves"]]
        return data

    def config(self) -> dict[str, Any]:
        return read_record(self.dir / "config.json")

    def submission(self) -> dict[str, Any] | None:
        """Where an executor queued this run (a cluster job: ``executor``, ``job_id``, ``log``), so that
        ``bench status`` can say where it is and where its log lies; None when it was not queued."""
        try:
            record = read_json(self.dir / SUBMISSION)
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def write_submission(self, record: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json(self.dir / SUBMISSION, record)


def finished_runs(base: Path) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """The configuration and the metrics (final values, curves) of each finished run under ``base``
    (a suite's results), in directory order: what the analysis scripts beside the results read."""
    for status in sorted(Path(base).glob("*/status.json")):
        store = RunStore(status.parent)
        if store.status() == Status.DONE:
            yield store.config(), store.metrics()


def replace_run(live: Path, new: Path) -> None:
    """Move a finished re-run from ``new`` into the run directory ``live``. The old status.json
    leaves first and the new one arrives last, so no reader ever takes a mixture for a finished
    run; the old files wait in ``.prev`` until the new ones are in; ``claim.json`` stays."""
    prev = live / PREV
    shutil.rmtree(prev, ignore_errors=True)
    prev.mkdir()
    old = sorted((p for p in live.iterdir() if p.name not in ("claim.json", SUBMISSION, NEXT, PREV)),
                 key=lambda p: p.name != "status.json")
    for p in old:
        p.rename(prev / p.name)
    for p in sorted(new.iterdir(), key=lambda p: p.name == "status.json"):
        p.rename(live / p.name)
    new.rmdir()
    shutil.rmtree(prev)
