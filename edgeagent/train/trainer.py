"""LoRA / QLoRA fine-tuning of a small instruct model on tool-call data (the `train` extra).

The base model comes from a GGUF file (dequantized by transformers' `gguf_file` loading, so the
adapter is trained against the very weights the device runs) or a Hugging Face directory. Each
example is rendered through the one wire format with its loss mask (edgeagent.train.render) and
packed into rows with no padding (edgeagent.train.batches); transformers' Trainer and peft do the
rest, so `accelerate launch` spreads a run over several GPUs with no code of ours.

A run works in a hidden sibling folder of its output (`.NAME.partial`): checkpoints, TensorBoard
logs and finished adapters. A checkpoint counts only once its commit marker is written after all
its files, so a run killed at any moment resumes from its last whole checkpoint; the output
appears by one rename when everything is done, never half written.

Decoupled mode (DualTune) trains several adapters on the same base: a selector (loss on the
decision to call and the tool names) and one argument adapter per tool (loss on that tool's
arguments), written as `selector/` and `arguments/<tool>/` with a `decoupled.json` index.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import random
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

from edgeagent.basemodel import load_base
from edgeagent.errors import EdgeAgentError
from edgeagent.models import file_fingerprint
from edgeagent.paths import fsync_tree, publishing, swap_in
from edgeagent.train.batches import pack_rows, packed_collator, padded_collator, real_tokens
from edgeagent.train.data import Example
from edgeagent.train.render import (
    IGNORE,
    MaskKind,
    hf_offset_tokenizer,
    render_example,
    tokenize_with_mask,
)
from edgeagent.train.trainlog import data_fingerprint, run_card, write_log
from edgeagent.wireformat import ChatRenderer

log = logging.getLogger(__name__)

COMMIT = "edgeagent-commit"  # written last into a checkpoint folder: the checkpoint is whole


@dataclass
class LoraSettings:
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )
    mask: MaskKind = "assistant"
    quantization: Literal["none", "nf4"] = "none"  # nf4 = QLoRA (bitsandbytes, CUDA only)
    # auto: bf16 autocast where the hardware computes bf16 natively (a CUDA GPU that supports
    # it; a CPU with AVX512-BF16, AMX or Arm's BF16), else fp32. Weights stay fp32 either way.
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    lr: float = 2e-4
    lr_scheduler: str = "cosine"  # any transformers scheduler name
    warmup_ratio: float = 0.03
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 4  # rows a step: examples, or with packing rows of pack_length tokens
    packing: bool = True  # whole examples side by side in rows, no padding computed
    # a packed row's width; dense attention costs grow with it, masked pairs included, so rows
    # a little wider than a typical example beat long ones (benchmarks/bench_train.py)
    pack_length: int = 512
    grad_accum: int = 1
    max_length: int = 1024
    eval_fraction: float = 0.1
    eval_every: int = 0  # steps between evaluations and checkpoints; 0 = ten times a run
    early_stopping: int = 0  # stop after this many evaluations without a better eval loss
    resume: bool = True  # continue from the last whole checkpoint of the same run
    seed: int = 0
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        choices = (("mask", get_args(MaskKind)), ("quantization", ("none", "nf4")),
                   ("precision", ("auto", "fp32", "bf16")))  # fmt: skip
        for key, allowed in choices:
            if getattr(self, key) not in allowed:
                raise ValueError(f"lora.{key} must be one of {', '.join(allowed)}")


@dataclass
class TrainResult:
    adapter: str
    steps: int
    train_loss: list[float]
    eval_loss: float | None
    tokens_per_s: float
    resumed_from: int | None = None
    precision: str = "fp32"  # the compute path that ran: fp32, or bf16 autocast
    adapters: dict[str, dict[str, Any]] = field(default_factory=dict)  # decoupled: per adapter


@dataclass
class _Job:
    name: str  # folder inside the output; "" = the output itself
    mask: MaskKind
    examples: list[Example]
    only_tool: str | None = None


def encode(
    examples: list[Example],
    tokenizer: Any,
    mask: MaskKind,
    max_length: int,
    only_tool: str | None = None,
) -> list[dict[str, list[int]]]:
    """Examples as input ids and masked labels; those with nothing to learn after truncation
    are dropped."""
    renderer = ChatRenderer(tokenizer.chat_template)
    tokenize = hf_offset_tokenizer(tokenizer)
    rows = []
    for ex in examples:
        rendered = render_example(ex, renderer, mask, only_tool)
        ids, labels = tokenize_with_mask(rendered, tokenize)
        ids, labels = ids[:max_length], labels[:max_length]
        if any(label != IGNORE for label in labels):
            rows.append({"input_ids": ids, "labels": labels})
    return rows


def check_targets(model: Any, targets: list[str]) -> None:
    """Every LoRA target must name some linear layer; else say which ones exist."""
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__ in
             ("Linear", "Linear4bit", "Conv1D")}  # fmt: skip
    missing = [t for t in targets if t not in names]
    if missing:
        raise EdgeAgentError(
            f"LoRA target module {missing[0]!r} matches no layer of this model",
            hint=f"its linear layers: {', '.join(sorted(names))}",
        )


def plan_jobs(examples: list[Example], mask: MaskKind, decoupled: bool) -> list[_Job]:
    if not decoupled:
        return [_Job("", mask, examples)]
    jobs = [_Job("selector", "selector", examples)]
    tools = sorted({c.name for ex in examples for m in ex.messages for c in m.calls})
    for name in tools:
        subset = [ex for ex in examples if any(c.name == name for m in ex.messages
                                                for c in m.calls)]  # fmt: skip
        jobs.append(_Job(f"arguments/{name}", "arguments", subset, only_tool=name))
    return jobs


def train_lora(
    examples: list[Example],
    base: str | Path,
    out: str | Path,
    settings: LoraSettings | None = None,
    model_and_tokenizer: tuple[Any, Any] | None = None,
    decoupled: bool = False,
    init_adapter: str | Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train one LoRA adapter (or, decoupled, a selector and per-tool argument adapters) and
    write it to `out` in PEFT format, with a run card. `init_adapter` (a PEFT folder or a GGUF
    LoRA) is trained on from where it left off; its rank, alpha and targets replace those of
    `settings`."""
    from transformers import set_seed

    s = settings or LoraSettings()
    target = Path(out)
    work = target.with_name(f".{target.name}.partial")
    set_seed(s.seed)
    model, tokenizer = model_and_tokenizer or load_base(base, s.quantization)
    init = None
    if init_adapter is not None:
        if decoupled:
            raise EdgeAgentError("init_adapter continues one adapter: not with decoupled")
        config, init = load_init_adapter(init_adapter, model)
        s = replace(s, rank=config["r"], alpha=round(config["lora_alpha"]),
                    target_modules=sorted(config["target_modules"]))  # fmt: skip
    check_targets(model, s.target_modules)
    fingerprint = {
        "base": str(base),
        "data": data_fingerprint(examples),
        "settings": asdict(s),
        "decoupled": decoupled,
        "init_adapter": file_fingerprint(init_adapter) if init_adapter else None,
    }
    _prepare_work(work, fingerprint, s.resume)
    result_dir = work / "result"
    results: dict[str, TrainResult] = {}
    jobs = plan_jobs(examples, s.mask, decoupled)
    for job in jobs:
        done = result_dir / job.name if job.name else result_dir
        if (done / "adapter_config.json").exists():
            log.info("adapter %s was finished by an earlier run", job.name or target.name)
            results[job.name] = TrainResult(**json.loads((done / "result.json").read_text()))
            continue
        rows = encode(job.examples, tokenizer, job.mask, s.max_length, job.only_tool)
        if not rows:
            raise EdgeAgentError(f"no example has anything to learn under mask {job.mask!r}")
        final = target / job.name if job.name else target
        model, results[job.name] = _train_job(
            model, tokenizer, rows, s, work, job, done, final, init, progress
        )
    summary = _summary(results, target)
    card = run_card(
        base=str(base),
        base_sha256=file_fingerprint(base),
        data_sha256=fingerprint["data"],
        examples=len(examples),
        settings=asdict(s),
        decoupled=decoupled,
        init_adapter=str(init_adapter) if init_adapter else None,
        init_adapter_sha256=fingerprint["init_adapter"],
        metrics={k or "adapter": _metrics(r) for k, r in results.items()},
    )
    (result_dir / "run_card.json").write_text(json.dumps(card, indent=2))
    if decoupled:
        index = {"selector": "selector",
                 "arguments": {j.only_tool: j.name for j in jobs if j.only_tool}}  # fmt: skip
        (result_dir / "decoupled.json").write_text(json.dumps(index, indent=2))
    swap_in(result_dir, target)
    shutil.rmtree(work, ignore_errors=True)
    return summary


def load_init_adapter(path: str | Path, model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(LoRA config, weights as PEFT saves them) of a PEFT folder or a GGUF LoRA adapter."""
    from edgeagent.converters.lora_gguf import read_adapter_config, read_lora_gguf

    path = Path(path)
    if not path.exists():
        raise EdgeAgentError(f"init adapter {path} does not exist")
    if path.is_dir():
        from safetensors.numpy import load_file

        config = read_adapter_config(path)
        if not isinstance(config.get("target_modules"), list):
            raise EdgeAgentError(f"{path}: target_modules must be a list of module names")
        return config, load_file(str(path / "adapter_model.safetensors"))
    cfg = model.config
    heads = cfg.num_attention_heads
    modules = [name for name, _ in model.named_modules()]
    return read_lora_gguf(path, modules, heads, getattr(cfg, "num_key_value_heads", heads))


def _summary(results: dict[str, TrainResult], target: Path) -> TrainResult:
    if list(results) == [""]:
        return results[""]  # its result already names `target`
    first = next(iter(results.values()))
    return TrainResult(
        adapter=str(target),
        steps=sum(r.steps for r in results.values()),
        train_loss=first.train_loss,
        eval_loss=first.eval_loss,
        tokens_per_s=first.tokens_per_s,
        precision=first.precision,
        adapters={name: asdict(r) for name, r in results.items()},
    )


def _prepare_work(work: Path, fingerprint: dict[str, Any], resume: bool) -> None:
    """Keep an earlier run's folder only to resume the very same run."""
    marker = work / "run.json"
    if work.exists():
        same = marker.exists() and json.loads(marker.read_text()) == fingerprint
        if resume and same:
            return
        if resume and marker.exists():
            raise EdgeAgentError(
                f"{work} holds checkpoints of a different run (other data or settings)",
                hint="train again with --fresh to discard them, or restore the original "
                "config to resume",
            )
        shutil.rmtree(work)
    work.mkdir(parents=True)
    with publishing(marker) as tmp:
        tmp.write_text(json.dumps(fingerprint, indent=2))


def _last_checkpoint(folder: Path) -> Path | None:
    """The newest whole checkpoint; folders without a commit marker were cut off: removed."""
    whole = []
    for ckpt in folder.glob("checkpoint-*") if folder.exists() else []:
        if (ckpt / COMMIT).exists():
            whole.append(ckpt)
        else:
            shutil.rmtree(ckpt, ignore_errors=True)
    return max(whole, key=lambda p: int(p.name.rsplit("-", 1)[1]), default=None)


def _train_job(
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, list[int]]],
    s: LoraSettings,
    work: Path,
    job: _Job,
    done: Path,
    final: Path,
    init: dict[str, Any] | None = None,
    progress: bool = True,
) -> tuple[Any, TrainResult]:
    """Train one job into `done` (in the work folder); its result names `final`, where the
    adapter lands when the whole run is done."""
    import time

    import torch
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from transformers import (
        EarlyStoppingCallback,
        PrinterCallback,
        ProgressCallback,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    class _CountingTrainer(Trainer):  # type: ignore[misc]
        """Counts the real (non-pad) tokens it trains on, for tokens/s; computes the vocabulary
        logits only where a label is learned (when the model's logits are its head applied to
        its decoder's output, checked once): most tokens of a tool-calling example are prompt
        and schemas, and the head is a fifth of a small model's compute."""

        real_tokens = 0
        learned_only = False

        def training_step(self, model: Any, inputs: dict[str, Any], *args: Any) -> Any:
            self.real_tokens += real_tokens(inputs)
            return super().training_step(model, inputs, *args)

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            if not self.learned_only:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            # accelerate autocasts by wrapping model.forward, which this path does not call:
            # without its context a CUDA GPU trains in fp32 (the CPU autocasts in the Trainer)
            with self.accelerator.autocast():
                loss = learned_positions_loss(
                    self.accelerator.unwrap_model(model).get_base_model(),
                    inputs,
                    num_items_in_batch,
                )
            return (loss, {"loss": loss}) if return_outputs else loss

    class TokensPerSecond(TrainerCallback):  # type: ignore[misc]
        """Real tokens/s on the progress bar, beside transformers' steps and remaining time."""

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            bars = [
                c for c in trainer.callback_handler.callbacks if isinstance(c, ProgressCallback)
            ]
            bar = bars[0].training_bar if bars else None
            if bar is not None:
                rate = trainer.real_tokens / max(time.perf_counter() - started, 1e-9)
                bar.set_postfix_str(f"{rate:.0f} tokens/s", refresh=False)

    class CommitCheckpoints(TrainerCallback):  # type: ignore[misc]
        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.is_world_process_zero:
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                fsync_tree(folder)
                (folder / COMMIT).write_text(str(state.global_step))
                fsync_tree(folder)

    shuffled = rows[:]
    random.Random(s.seed).shuffle(shuffled)
    n_eval = int(len(rows) * s.eval_fraction) if len(rows) >= 10 else 0
    train_rows, eval_rows = shuffled[n_eval:], shuffled[:n_eval]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    if s.packing:
        width = min(s.pack_length, s.max_length)
        train_rows = pack_rows(train_rows, width)
        eval_rows = pack_rows(eval_rows, width)
        collate = packed_collator(pad)
    else:
        collate = padded_collator(pad)
    steps_per_epoch = max(1, len(train_rows) // (s.batch_size * s.grad_accum))
    total = s.max_steps if s.max_steps > 0 else int(steps_per_epoch * s.epochs)
    every = s.eval_every or max(1, total // 10)
    peft_model = get_peft_model(
        model,
        LoraConfig(
            r=s.rank,
            lora_alpha=s.alpha,
            lora_dropout=s.dropout,
            target_modules=s.target_modules,
            task_type="CAUSAL_LM",
        ),  # fmt: skip
    )
    if init is not None:
        try:
            loaded: Any = set_peft_model_state_dict(
                peft_model, {k: torch.from_numpy(v) for k, v in init.items()}
            )
        except RuntimeError as exc:  # a size mismatch: trained on another model
            raise EdgeAgentError(f"the init adapter does not fit this base model: {exc}") from None
        if loaded.unexpected_keys:
            raise EdgeAgentError(
                f"the init adapter has weights this model lacks: {loaded.unexpected_keys[0]}"
            )
    label = job.name.replace("/", "-") or "adapter"
    checkpoints = work / "checkpoints" / label
    resume_from = _last_checkpoint(checkpoints) if s.resume else None
    tensorboard = importlib.util.find_spec("tensorboard") is not None
    cuda = torch.cuda.is_available()
    bf16 = use_bf16(s.precision)
    # TrainingArguments starts this from its last value and only ever sets it to a half
    # precision: after a bf16 run in the same process, an fp32 run would autocast too
    os.environ["ACCELERATE_MIXED_PRECISION"] = "bf16" if bf16 else "no"
    args = TrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=s.batch_size,
        per_device_eval_batch_size=s.batch_size,
        gradient_accumulation_steps=s.grad_accum,
        learning_rate=s.lr,
        lr_scheduler_type=s.lr_scheduler,
        warmup_ratio=s.warmup_ratio,
        num_train_epochs=s.epochs,
        max_steps=s.max_steps,
        logging_steps=1,
        eval_strategy="steps" if eval_rows else "no",
        eval_steps=every,
        save_strategy="steps",
        save_steps=every,
        save_total_limit=2,
        load_best_model_at_end=bool(eval_rows) and s.early_stopping > 0,
        metric_for_best_model="eval_loss",
        report_to=["tensorboard"] if tensorboard else [],
        logging_dir=str(work / "tensorboard" / label),
        seed=s.seed,
        bf16=bf16,
        prediction_loss_only=True,  # the eval loss is all we read; no logits gathered
        gradient_checkpointing=s.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        use_cpu=not cuda,
        remove_unused_columns=False,
        disable_tqdm=not progress,
    )
    callbacks: list[Any] = [CommitCheckpoints(), TokensPerSecond()]
    if eval_rows and s.early_stopping > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=s.early_stopping))
    trainer = _CountingTrainer(
        model=peft_model,
        args=args,
        train_dataset=train_rows,
        eval_dataset=eval_rows or None,
        data_collator=collate,
        callbacks=callbacks,
    )
    if not progress:
        trainer.remove_callback(PrinterCallback)  # its loss line per step
    trainer.learned_only = head_only_logits(peft_model.get_base_model(), rows[0]["input_ids"])
    log.info("precision %s; logits %s", "bf16 autocast" if bf16 else "fp32",
             "at learned positions only" if trainer.learned_only else "everywhere")  # fmt: skip
    steps_before = 0
    if resume_from is not None:
        steps_before = json.loads((resume_from / "trainer_state.json").read_text())["global_step"]
        log.warning("resuming %s from step %d", label, steps_before)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    elapsed = time.perf_counter() - started
    state = trainer.state
    history = state.log_history
    result = TrainResult(
        adapter=str(final),
        precision="bf16" if bf16 else "fp32",
        steps=state.global_step,
        train_loss=[h["loss"] for h in history if "loss" in h],
        eval_loss=state.best_metric
        if s.early_stopping and state.best_metric is not None
        else next((h["eval_loss"] for h in reversed(history) if "eval_loss" in h), None),
        tokens_per_s=round(trainer.real_tokens / elapsed, 1),
        resumed_from=steps_before or None,
    )
    if trainer.is_world_process_zero():
        with publishing(done) as tmp:
            peft_model.save_pretrained(str(tmp))
            title = f"LoRA {job.name or 'adapter'} (mask: {job.mask})"
            write_log(history, tmp, title)
            if (work / "tensorboard" / label).exists():
                shutil.move(str(work / "tensorboard" / label), tmp / "tensorboard")
            (tmp / "result.json").write_text(json.dumps(asdict(result), indent=2))
        shutil.rmtree(checkpoints, ignore_errors=True)
    return peft_model.unload(), result  # the base without LoRA layers, for the next job


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16, AMX, Arm's BF16): without it
    autocast emulates bf16 and runs slower than fp32. Read from /proc/cpuinfo (Linux); False
    where it cannot tell."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = {f for line in text.splitlines() if line.startswith(("flags", "Features"))
             for f in line.split(":", 1)[1].split()}  # fmt: skip
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def use_bf16(precision: str) -> bool:
    """The precision setting resolved on this machine (bf16 asked where it cannot run: refused)."""
    import torch

    cuda = torch.cuda.is_available()
    native = torch.cuda.is_bf16_supported() if cuda else cpu_has_bf16()
    if precision == "bf16" and not native:
        raise EdgeAgentError(
            "precision bf16: this machine has no native bf16 compute",
            hint='set lora.precision = "auto" or "fp32"',
        )
    return precision == "bf16" or (precision == "auto" and native)


def head_only_logits(causal_lm: Any, ids: list[int]) -> bool:
    """Whether the model's logits are exactly its output head applied to its decoder's hidden
    states (no soft-capping or scaling after the head), tried on a few tokens: then the loss
    can apply the head at the learned positions only."""
    import torch

    try:
        decoder, head = causal_lm.get_decoder(), causal_lm.get_output_embeddings()
    except (AttributeError, NotImplementedError):
        return False
    if decoder is None or head is None:
        return False
    x = torch.tensor([ids[:8]], device=causal_lm.device)
    training = causal_lm.training
    causal_lm.eval()  # no dropout: the two ways must see the same weights
    try:
        with torch.no_grad():
            full = causal_lm(input_ids=x, use_cache=False).logits
            ours = head(decoder(input_ids=x, use_cache=False).last_hidden_state)
    finally:
        causal_lm.train(training)
    return full.shape == ours.shape and bool(torch.allclose(full, ours, atol=1e-5))


def learned_positions_loss(causal_lm: Any, inputs: dict[str, Any], num_items: Any = None) -> Any:
    """The causal LM loss of a batch with the head applied only where a label is learned:
    summed over those tokens and divided by `num_items` (the learned tokens of the whole step,
    as transformers' own loss does under gradient accumulation), else by their count."""
    import torch.nn.functional as F

    labels = inputs["labels"]
    rest = {k: v for k, v in inputs.items() if k != "labels"}
    hidden = causal_lm.get_decoder()(**rest).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != IGNORE
    logits = causal_lm.get_output_embeddings()(hidden[:, :-1][keep]).float()
    loss = F.cross_entropy(logits, targets[keep], reduction="sum")
    return loss / (num_items if num_items is not None else keep.sum().clamp(min=1))


def _metrics(result: TrainResult) -> dict[str, Any]:
    return {k: v for k, v in asdict(result).items() if k not in ("adapter", "adapters")}
