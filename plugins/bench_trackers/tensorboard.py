"""TensorBoard: each run's curves (step = epoch) and final values as scalars in its own directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.tracker import flat_metric_name


class TensorBoardTracker:
    def __init__(self, log_dir: str | None = None):
        try:
            from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package
        except ImportError:
            raise ImportError('the tensorboard tracker needs tensorboard: pip install -e ".[tensorboard]"') from None
        self._writer_class = SummaryWriter
        self.log_dir = log_dir
        self.writers: dict[str, Any] = {}
        self.last_epoch: dict[str, int] = {}

    def start(self, run_id: str, config: dict[str, Any], results_dir: Path) -> None:
        base = Path(self.log_dir) if self.log_dir else Path(results_dir) / "_tensorboard"
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
