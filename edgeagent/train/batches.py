"""Batches for training: packed (no compute spent on padding) or padded (the plain baseline).

Packing puts whole examples side by side in rows of at most `budget` tokens (first-fit
decreasing) and restarts the position ids at each example. transformers reads the restarts as
sequence boundaries and gives each example a block-diagonal causal mask, so an example never
attends to its neighbour: the loss is the same as if each example had its own row. The first
label of every example is ignored so that no token is learned from the end of the previous one.

Rows are bounded (the setting pack_length, 512 tokens) rather than one long row per step: with
a dense attention kernel (SDPA on a CPU) the cost and memory of attention grow with the square
of the row, masked pairs included. Several packed rows make a step; first-fit decreasing leaves them
nearly full, and the little tail padding of a batch is marked with position -1 (each pad token a
sequence of its own, never learned, never counted as a real token).
"""

from __future__ import annotations

from typing import Any

from edgeagent.train.render import IGNORE

Row = dict[str, list[int]]


def pack_rows(rows: list[Row], budget: int) -> list[Row]:
    """Bins of whole rows, each at most `budget` tokens; a longer row (already cut to the model's
    max_length by the encoder) gets a bin of its own, whole."""
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]["input_ids"]))
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        size = len(rows[i]["input_ids"])
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
            row_ids = rows[i]["input_ids"]
            ids += row_ids
            labels += [IGNORE] + rows[i]["labels"][1:]
            positions += list(range(len(row_ids)))
        packed.append({"input_ids": ids, "labels": labels, "position_ids": positions})
    return packed


def packed_collator(pad_id: int) -> Any:
    """Packed rows stacked into a batch, with no attention mask: transformers finds the
    boundaries in the position ids only when there is no attention mask and no KV cache, hence
    use_cache=False (a cache would silently let examples attend to each other)."""

    def collate(batch: list[Row]) -> dict[str, Any]:
        import torch

        width = max(len(r["input_ids"]) for r in batch)
        fill = [width - len(r["input_ids"]) for r in batch]
        pairs = list(zip(batch, fill, strict=True))
        return {
            "input_ids": torch.tensor([r["input_ids"] + [pad_id] * n for r, n in pairs]),
            "labels": torch.tensor([r["labels"] + [IGNORE] * n for r, n in pairs]),
            "position_ids": torch.tensor([r["position_ids"] + [-1] * n for r, n in pairs]),
            "use_cache": False,
        }

    return collate


def real_tokens(batch: dict[str, Any]) -> int:
    """Tokens of a collated batch that are not padding."""
    if "attention_mask" in batch:
        return int(batch["attention_mask"].sum())
    return int((batch["position_ids"] >= 0).sum())


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
