"""What a training run leaves beside its adapter: train_log.csv, loss.png and run_card.json."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from edgeagent.train.data import Example, example_to_dict

log = logging.getLogger(__name__)


def write_log(history: list[dict[str, Any]], folder: Path, title: str = "LoRA training") -> None:
    """train_log.csv (step, loss, eval_loss, learning rate) and loss.png."""
    rows = [h for h in history if "loss" in h or "eval_loss" in h]
    with (folder / "train_log.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["step", "loss", "eval_loss", "learning_rate"])
        for h in rows:
            writer.writerow([h.get("step"), h.get("loss", ""), h.get("eval_loss", ""),
                             h.get("learning_rate", "")])  # fmt: skip
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is missing: no loss.png")
        return
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    train = [(h["step"], h["loss"]) for h in rows if "loss" in h]
    evals = [(h["step"], h["eval_loss"]) for h in rows if "eval_loss" in h]
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss", linewidth=1)
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (learned tokens only)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "loss.png")
    plt.close(fig)


def data_fingerprint(examples: list[Example]) -> str:
    """SHA-256 of the examples in canonical form (independent of file name and formatting)."""
    digest = hashlib.sha256()
    for ex in examples:
        digest.update(json.dumps(example_to_dict(ex), sort_keys=True).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def run_card(**fields: Any) -> dict[str, Any]:
    from edgeagent._version import __version__

    return {"edgeagent": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ",
            time.gmtime()), **fields}  # fmt: skip
