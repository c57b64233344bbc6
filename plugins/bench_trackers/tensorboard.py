"""TensorBoard: each run's curves (step = epoch) and final values as scalars in its own directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from harness.api.components import Param
from harness.api.tracker import Tracker, flat_metric_name


class TensorBoardTracker(Tracker):
    """TensorBoard event files: per-epoch curves and final values of every run, one directory per run"""

    params: ClassVar[tuple[Param, ...]] = (
        Param("log_dir", str | None, None, "where to write: absolute, or relative to results/<suite>/ "
              "and inside it (default: _tensorboard)"),
    )

    def __init__(self, log_dir: str | None = None):
        """``log_dir``: absolute, or relative to the suite's results directory and inside it (a suite
        must not write elsewhere unless its author wrote an absolute path)."""
        if log_dir and not Path(log_dir).is_absolute() and os.path.normpath(log_dir).split(os.sep)[0] == "..":
            raise ValueError(f"log_dir {log_dir!r} leads outside the suite's results directory; give a path "
                             "inside it (relative to results/<suite>/) or an absolute one")
        try:
            from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package
        except ImportError:
            raise ImportError('the tensorboard tracker needs tensorboard: pip install -e ".[tensorboard]"') from None
        self._writer_class = SummaryWriter
        self.log_dir = log_dir
        self.writers: dict[str, Any] = {}
        self.last_epoch: dict[str, int] = {}

    def start(self, run_id: str, config: dict[str, Any], results_dir: Path) -> None:
        base = Path(results_dir) / (self.log_dir or "_tensorboard")  # an absolute log_dir replaces the join
        writer = self._writer_class(log_dir=str(base / run_id))
        writer.add_text("config", "```\n" + "\n".join(f"{k}: {v}" for k, v in config.items()) + "\n```")
        self.writers[run_id], self.last_epoch[run_id] = writer, 0

    def log_epoch(self, run_id: str, epoch: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.writers[run_id].add_scalar(f"epoch/{key}", value, epoch)
        self.last_epoch[run_id] = epoch

    def finish(self, run_id: str, status: str, final: list[dict[str, Any]]) -> None:
        writer = self.writers.pop(run_id)
        for record in final:
            writer.add_scalar(f"final/{flat_metric_name(record)}", record["value"], self.last_epoch.get(run_id, 0))
        writer.add_text("status", status)
        writer.close()
