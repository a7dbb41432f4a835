"""Per-epoch metrics: ``metrics.jsonl`` (appended), ``metrics.csv`` and ``curves.png`` (rewritten).

``curves.png`` is redrawn at most once a ``PLOT_SECONDS`` as epochs end, and whenever the run ends or
stops (:meth:`MetricsLog.plot`): drawing it (matplotlib, about 0.3 s a figure and 0.5 s to import)
was most of an epoch's fixed cost in small runs.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from pathlib import Path

from ..atomic import atomic_write_bytes
from ..untrusted import parse_json

__all__ = ["MetricsLog", "PLOT_SECONDS"]

PLOT_SECONDS = 60.0


class MetricsLog:
    def __init__(self, run_dir: Path) -> None:
        self.jsonl, self.csv, self.png = run_dir / "metrics.jsonl", run_dir / "metrics.csv", run_dir / "curves.png"
        self.drawn_at = time.monotonic()  # of the last drawing; a run's first epoch counts from its start
        self.behind = False  # records appended since the last drawing

    def records(self, repair: bool = False) -> list[dict]:
        """The records of ``metrics.jsonl``. A kill while appending can leave a torn last line: with
        ``repair`` it is dropped (and said); any other unreadable line is an error naming the file."""
        if not self.jsonl.is_file():
            return []
        lines = [line for line in self.jsonl.read_text(errors="replace").splitlines() if line.strip()]
        records = []
        for number, line in enumerate(lines, 1):
            try:
                record = parse_json(line, "the line")
                if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
                    raise ValueError("not a record with an epoch")
            except ValueError as error:
                if repair and number == len(lines):
                    print(f"{self.jsonl}: dropped an incomplete last line (written when the run was killed)",
                          file=sys.stderr)
                    break
                raise ValueError(f"{self.jsonl}, line {number}: unreadable ({error}); remove or fix that line") from None
            records.append(record)
        return records

    def truncate(self, epochs: int) -> None:
        """Keep the records of the first ``epochs`` epochs (a resumed run rewrites what came after)."""
        kept = [r for r in self.records(repair=True) if r["epoch"] <= epochs]
        atomic_write_bytes(self.jsonl, "".join(json.dumps(r) + "\n" for r in kept).encode())

    def append(self, record: dict) -> None:
        with open(self.jsonl, "a") as stream:
            stream.write(json.dumps(record) + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        self._write_csv()
        self.behind = True
        if time.monotonic() - self.drawn_at >= PLOT_SECONDS:
            self.plot()

    def plot(self) -> None:
        """Redraw ``curves.png`` if records came since it was drawn."""
        if self.behind:
            self._plot()
            self.drawn_at, self.behind = time.monotonic(), False

    def _write_csv(self) -> None:
        records = self.records()
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(dict.fromkeys(key for r in records for key in r)))
        writer.writeheader()
        writer.writerows(records)
        atomic_write_bytes(self.csv, text.getvalue().encode())

    def _plot(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        records = self.records()
        epochs = [r["epoch"] for r in records]
        metric = records[0]["metric_name"]
        panels = [("loss", "train_loss", "val_loss")]
        if metric != "cross_entropy":  # the copy task's metric is its loss: one panel, not two identical ones
            panels.append((metric, "train_metric", "val_metric"))
        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
        for ax, (title, train_key, val_key) in zip(axes[0], panels):
            ax.plot(epochs, [r[train_key] for r in records], "o-", label="train")
            ax.plot(epochs, [r[val_key] for r in records], "o-", label="validation")
            ax.set(xlabel="epoch", ylabel=title, title=title)
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        plt.close(fig)
        atomic_write_bytes(self.png, buffer.getvalue())
