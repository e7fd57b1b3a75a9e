"""The comparison chart: accuracy per category, one bar per configuration (matplotlib, the
`eval` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_comparison(reports: list[Any], out: str | Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    categories = [c.category for c in reports[0].categories] + ["overall"]
    width = 0.8 / len(reports)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(categories) + 2), 4.2), dpi=120)
    for i, rep in enumerate(reports):
        scores = {c.category: c.accuracy for c in [*rep.categories, rep.overall]}
        xs = [j + (i - (len(reports) - 1) / 2) * width for j in range(len(categories))]
        bars = ax.bar(xs, [scores.get(c, 0.0) for c in categories], width, label=rep.config)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.set_xticks(range(len(categories)), categories, rotation=15, ha="right")
    ax.set_ylabel("accuracy (BFCL AST check)")
    ax.set_ylim(0, 1.25)
    n = reports[0].overall.cases
    ax.set_title(title or f"{Path(reports[0].model).name}: {n} cases")
    ax.legend(fontsize=8, loc="upper center", ncol=len(reports), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
