"""The results store: one directory per run under ``<results>/<suite>/<run id>/``.

Files of a run directory:
  config.json       the resolved configuration (what ran)
  environment.json  Python, torch, CUDA, plugin versions, device, git commit
  metrics.json      final records and per-epoch curves
  status.json       written last: ``done`` only once everything else is in place
  error.txt         the traceback of a failed run
  artifacts/        tensors a run kind keeps (GDU processes, ...)
  checkpoint.pt     the latest epoch checkpoint of an unfinished run

Every file is written to a temporary name and renamed into place, so a crash
never leaves a half-written file that looks complete.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

STATUSES = ("done", "failed", "diverged", "interrupted", "running")


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "w") -> None:
    """Write through ``write(fileobj)`` into a temp file, fsync, then rename.

    ``mode`` is ``"w"`` for text or ``"wb"`` for bytes (e.g. ``torch.save``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
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


def write_json(path: Path, data: Any) -> None:
    text = json.dumps(_jsonable(data), indent=2, sort_keys=False)
    atomic_write(path, lambda f: f.write(text + "\n"))


def read_json(path: Path) -> Any:
    with open(path) as f:
        return json.load(f)


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

    def status(self) -> str:
        """``done``, ``failed``, ... or ``missing`` when no status was written."""
        try:
            return read_json(self.dir / "status.json")["status"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            return "missing"

    def status_record(self) -> dict[str, Any]:
        try:
            return read_json(self.dir / "status.json")
        except (FileNotFoundError, json.JSONDecodeError):
            return {"status": "missing"}

    def is_complete(self) -> bool:
        # metrics.json is written before status.json; both must be present.
        return self.status() == "done" and (self.dir / "metrics.json").exists()

    def metrics(self) -> dict[str, Any]:
        try:
            return read_json(self.dir / "metrics.json")
        except FileNotFoundError:
            return {"final": [], "curves": []}

    def config(self) -> dict[str, Any]:
        return read_json(self.dir / "config.json")
