"""The run folder: resolved config, metrics log, learning curves.

``RUN/config.yaml``     the resolved config (+ git commit): ``--resume RUN`` reads it back
``RUN/metrics.jsonl``   one JSON object per interval (train loss, lr, img/s, val metrics)
``RUN/curves.png``      training loss and validation mean IU against optimizer steps
``RUN/last.safetensors``, ``RUN/best.safetensors``, ``RUN/state.pt``  (see ``checkpoint.py``)
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .. import atomic
from ..checkpoint import jsonable


class RunLog:
    """Files of one run folder; only rank 0 creates one."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    def write_config(self, text: str) -> None:
        atomic.write_text(self.root / "config.yaml", text)

    def records(self) -> list[dict]:
        if not self.metrics_path.exists():
            return []
        lines = self.metrics_path.read_text().splitlines()
        # a run killed mid-write can leave a partial last line: skip it
        out = []
        for ln in lines:
            try:
                out.append(json.loads(ln))
            except json.JSONDecodeError:
                continue
        return out

    def append(self, record: dict, keep_until: int | None = None) -> None:
        """Append one record.  ``keep_until``: first drop records after this step (a resumed run
        repeats the steps since its checkpoint; their old lines would be duplicates)."""
        records = self.records()
        if keep_until is not None and any(r.get("step", 0) > keep_until for r in records):
            kept = [r for r in records if r.get("step", 0) <= keep_until]
            atomic.write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(jsonable(record)) + "\n")

    def plot(self, metric: str = "mean_iou") -> Path | None:
        """Draw ``curves.png`` from the metrics log (matplotlib imported only here)."""
        records = self.records()
        if not records:
            return None
        import matplotlib

        matplotlib.use("Agg")  # no display on servers
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
        steps = [r["step"] for r in records if r.get("train_loss") is not None]
        ax[0].plot(steps, [r["train_loss"] for r in records if r.get("train_loss") is not None])
        ax[0].set(xlabel="step", ylabel="training loss", title="training loss")
        if any(r["train_loss"] > 0 for r in records if r.get("train_loss") is not None):
            ax[0].set_yscale("log")
        val = [
            (r["step"], r["val"][metric])
            for r in records
            if isinstance(r.get("val"), dict) and r["val"].get(metric) is not None and not math.isnan(r["val"][metric])
        ]
        if val:
            ax[1].plot([s for s, _ in val], [100 * v for _, v in val], marker="o")
        ax[1].set(xlabel="step", ylabel=f"val {metric} (%)", title=f"validation {metric}")
        for a in ax:
            a.grid(alpha=0.3)
        fig.tight_layout()
        out = self.root / "curves.png"
        with atomic.atomic_path(out) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)
        return out
