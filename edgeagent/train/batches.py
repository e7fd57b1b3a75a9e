"""Batches for training: packed (no compute spent on padding) or padded (the plain baseline).

Packing puts whole examples side by side in one row of at most `budget` tokens (first-fit
decreasing) and restarts the position ids at each example. transformers reads the restarts as
sequence boundaries and gives each example a block-diagonal causal mask, so an example never
attends to its neighbour: the loss is the same as if each example had its own row, and the only
tokens computed are real ones. The first label of every example is ignored so that no token is
learned from the end of the previous example.
"""

from __future__ import annotations

from typing import Any

from edgeagent.train.render import IGNORE

Row = dict[str, list[int]]


def pack_rows(rows: list[Row], budget: int) -> list[Row]:
    """Bins of whole rows, each at most `budget` tokens (a longer row gets a bin of its own and
    is cut to `budget`)."""
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]["input_ids"]))
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        size = min(len(rows[i]["input_ids"]), budget)
        for b, free in enumerate(room):
            if size <= free:
                bins[b].append(i)
                room[b] -= size
                break
        else:
            bins.append([i])
            room.append(budget - size)
    packed = []
    for members in bins:
        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for i in members:
            row_ids = rows[i]["input_ids"][:budget]
            ids += row_ids
            labels += [IGNORE] + rows[i]["labels"][1 : len(row_ids)]
            positions += list(range(len(row_ids)))
        packed.append({"input_ids": ids, "labels": labels, "position_ids": positions})
    return packed


def collate_packed(batch: list[Row]) -> dict[str, Any]:
    """One packed row per step. transformers finds the boundaries in the position ids only when
    there is no attention mask and no KV cache, hence use_cache=False (a cache would silently
    let examples attend to each other)."""
    import torch

    assert len(batch) == 1, "packed training uses one packed row per device step"
    row = batch[0]
    tensors: dict[str, Any] = {k: torch.tensor([row[k]]) for k in ("input_ids", "labels",
                                                                  "position_ids")}  # fmt: skip
    return tensors | {"use_cache": False}


def padded_collator(pad_id: int) -> Any:
    def collate(batch: list[Row]) -> dict[str, Any]:
        import torch

        width = max(len(r["input_ids"]) for r in batch)
        fill = [width - len(r["input_ids"]) for r in batch]
        return {
            "input_ids": torch.tensor(
                [r["input_ids"] + [pad_id] * n for r, n in zip(batch, fill, strict=True)]
            ),
            "labels": torch.tensor(
                [r["labels"] + [IGNORE] * n for r, n in zip(batch, fill, strict=True)]
            ),
            "attention_mask": torch.tensor(
                [[1] * len(r["input_ids"]) + [0] * n for r, n in zip(batch, fill, strict=True)]
            ),
        }

    return collate
