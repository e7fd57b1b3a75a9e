"""LoRA fine-tuning of a small instruct model on tool-call data (the `train` extra).

The base model comes from a GGUF file (dequantized by transformers' `gguf_file` loading, so the
adapter is trained against the very weights the device runs) or a Hugging Face directory. Each
example is rendered through the one wire format and its loss mask (edgeagent.train.render);
training runs in transformers' Trainer with a peft LoRA adapter; the adapter is written to a
temporary folder and renamed into place, so an interrupted run never leaves a half adapter.

Still to come (issue 4): QLoRA on CUDA, packing, early stopping, resume, config files, the
loss-curve plot and the DualTune selector/argument pairs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeagent.train.data import Example
from edgeagent.train.render import (
    IGNORE,
    MaskKind,
    hf_offset_tokenizer,
    render_example,
    tokenize_with_mask,
)
from edgeagent.wireformat import ChatRenderer

log = logging.getLogger(__name__)


@dataclass
class LoraSettings:
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )
    mask: MaskKind = "assistant"
    lr: float = 2e-4
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = 1024
    eval_fraction: float = 0.1
    seed: int = 0
    gradient_checkpointing: bool = False


def write_log(history: list[dict[str, Any]], folder: Path) -> None:
    """train_log.csv (step, loss, eval_loss, learning rate) and loss.png beside the adapter."""
    import csv

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
        ax.plot(*zip(*train, strict=True), label="train loss")
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (masked tokens)")
    ax.set_title("LoRA training")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "loss.png")
    plt.close(fig)


@dataclass
class TrainResult:
    adapter: str
    steps: int
    train_loss: list[float]
    eval_loss: float | None


def load_base(base: str | Path) -> tuple[Any, Any]:
    """(model, tokenizer) from a GGUF file or a Hugging Face directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(base)
    if path.suffix == ".gguf":
        kw = {"gguf_file": path.name}
        folder = str(path.parent)
        return (
            AutoModelForCausalLM.from_pretrained(folder, **kw),
            AutoTokenizer.from_pretrained(folder, **kw),
        )
    return AutoModelForCausalLM.from_pretrained(str(path)), AutoTokenizer.from_pretrained(str(path))


def encode(
    examples: list[Example], tokenizer: Any, mask: MaskKind, max_length: int
) -> list[dict[str, list[int]]]:
    """Examples as input ids and masked labels; those with nothing to learn after truncation
    are dropped."""
    renderer = ChatRenderer(tokenizer.chat_template)
    tokenize = hf_offset_tokenizer(tokenizer)
    rows = []
    for ex in examples:
        ids, labels = tokenize_with_mask(render_example(ex, renderer, mask), tokenize)
        ids, labels = ids[:max_length], labels[:max_length]
        if any(label != IGNORE for label in labels):
            rows.append({"input_ids": ids, "labels": labels})
    return rows


def train_lora(
    examples: list[Example],
    base: str | Path,
    out: str | Path,
    settings: LoraSettings | None = None,
    model_and_tokenizer: tuple[Any, Any] | None = None,
) -> TrainResult:
    """Train a LoRA adapter and write it (PEFT format) to `out`, atomically."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments, set_seed

    s = settings or LoraSettings()
    set_seed(s.seed)
    model, tokenizer = model_and_tokenizer or load_base(base)
    rows = encode(examples, tokenizer, s.mask, s.max_length)
    if not rows:
        raise ValueError("no example has anything to learn under this mask")
    n_eval = int(len(rows) * s.eval_fraction) if len(rows) >= 10 else 0
    train_rows, eval_rows = rows[n_eval:], rows[:n_eval]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def collate(batch: list[dict[str, list[int]]]) -> dict[str, Any]:
        width = max(len(r["input_ids"]) for r in batch)
        ids = [r["input_ids"] + [pad] * (width - len(r["input_ids"])) for r in batch]
        labels = [r["labels"] + [IGNORE] * (width - len(r["labels"])) for r in batch]
        att = [[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"])) for r in batch]
        return {
            "input_ids": torch.tensor(ids),
            "labels": torch.tensor(labels),
            "attention_mask": torch.tensor(att),
        }

    lora = LoraConfig(
        r=s.rank,
        lora_alpha=s.alpha,
        lora_dropout=s.dropout,
        target_modules=s.target_modules,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    target = Path(out)
    work = target.with_name(f".{target.name}.partial-{os.getpid()}")
    args = TrainingArguments(
        output_dir=str(work / "checkpoints"),
        per_device_train_batch_size=s.batch_size,
        per_device_eval_batch_size=s.batch_size,
        gradient_accumulation_steps=s.grad_accum,
        learning_rate=s.lr,
        num_train_epochs=s.epochs,
        max_steps=s.max_steps,
        logging_steps=1,
        eval_strategy="epoch" if eval_rows else "no",
        save_strategy="no",
        report_to=[],
        seed=s.seed,
        gradient_checkpointing=s.gradient_checkpointing,
        use_cpu=not torch.cuda.is_available(),
        remove_unused_columns=False,
        disable_tqdm=False,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_rows,
        eval_dataset=eval_rows or None,
        data_collator=collate,
    )
    trainer.train()
    history = trainer.state.log_history
    losses = [h["loss"] for h in history if "loss" in h]
    eval_loss = next((h["eval_loss"] for h in reversed(history) if "eval_loss" in h), None)
    adapter_dir = work / "adapter"
    model.save_pretrained(str(adapter_dir))
    write_log(history, adapter_dir)
    (adapter_dir / "edgeagent.json").write_text(
        json.dumps({"base": str(base), "settings": asdict(s), "examples": len(rows)}, indent=2)
    )
    if target.exists():
        shutil.rmtree(target)
    os.replace(adapter_dir, target)  # the adapter appears whole or not at all
    shutil.rmtree(work, ignore_errors=True)
    return TrainResult(str(target), trainer.state.global_step, losses, eval_loss)
