"""Training throughput: edgeagent's trainer vs plain transformers Trainer + peft. Prints JSON.

Same base model (the embedded SmolLM2-135M-Instruct, dequantized from its GGUF), same data
(synthesized calls to the demo tools, rendered and masked the same way), same LoRA config and
learning rate, same number of optimizer steps. The baseline is what a user writes by hand:
Trainer with a padding collator, `batch_size` examples a step, fp32. edgeagent packs whole
examples into rows of `pack_length` tokens, as many rows a step as hold the same real tokens on
average, computes the vocabulary logits only where a label is learned, and autocasts to bf16
where the CPU computes it natively (precision "auto"); it runs a second time in fp32 to show
what bf16 adds and what it costs in held-out loss. Reported: real (non-pad) tokens per second,
tokens computed per second (pad included), and the loss on the same held-out rows after the run.

On a CUDA GPU both sides train in bf16 mixed precision, and `--qlora` adds the QLoRA pair: the
base loaded in bitsandbytes NF4 by hand (BitsAndBytesConfig + prepare_model_for_kbit_training,
peft's documented recipe) under the plain Trainer, against `lora.quantization = "nf4"` in ours.
Peak GPU memory is reported for each; a short untimed run goes first, so that no side pays
for the GPU's first kernels. `--base DIR` trains another HF model; a folder holding
only a config and a tokenizer is initialized at random (seeded): throughput does not depend on
the weights' values, and that is how the model reaches a machine its 98 MB GGUF cannot.

    python benchmarks/bench_train.py [--steps 12] [--batch-size 8] [--pack-length 512]
    python benchmarks/bench_train.py --base DIR --qlora --steps 40      # on a CUDA GPU
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time

os.environ.setdefault("EDGEAGENT_HOME", tempfile.mkdtemp(prefix="edgeagent-bench-"))

import torch  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from transformers import (  # noqa: E402
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    Trainer,
    TrainingArguments,
)

from edgeagent.demo_tools import DEMO_TOOLS  # noqa: E402
from edgeagent.models import default_model_path  # noqa: E402
from edgeagent.train.batches import padded_collator  # noqa: E402
from edgeagent.train.data import parse_example  # noqa: E402
from edgeagent.train.synth import synthesize  # noqa: E402
from edgeagent.train.trainer import (  # noqa: E402
    LoraSettings,
    cpu_has_bf16,
    encode,
    load_base,
    train_lora,
)

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]
DEVICE = f"cuda {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "cpu"


def eval_loss(model, rows) -> float:
    """Mean loss over the learned tokens of held-out rows, one row at a time (no padding)."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for r in rows:
            ids = torch.tensor([r["input_ids"]], device=model.device)
            labels = torch.tensor([r["labels"]], device=model.device)
            n = int((labels[0, 1:] != -100).sum())
            total += float(model(input_ids=ids, labels=labels).loss) * n
            count += n
    return total / count


def peak_gpu_memory(start: bool = False) -> float | None:
    """GiB allocated at the peak since the last start (None without CUDA)."""
    if not torch.cuda.is_available():
        return None
    if start:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    return round(torch.cuda.max_memory_allocated() / 2**30, 3)


def nf4_by_hand(base: str):
    """QLoRA as peft's docs write it: NF4 weights, bf16 compute, prepared for k-bit training."""
    from peft import prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    nf4 = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                             bnb_4bit_compute_dtype=torch.bfloat16,
                             bnb_4bit_use_double_quant=True)  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(
        base, quantization_config=nf4, dtype=torch.bfloat16, device_map={"": 0}
    )
    return prepare_model_for_kbit_training(model)


def plain(model, tokenizer, rows, held_out, args) -> dict:
    peak_gpu_memory(start=True)
    model = get_peft_model(
        model,
        LoraConfig(
            r=8, lora_alpha=16, lora_dropout=0.05, target_modules=TARGETS, task_type="CAUSAL_LM"
        ),
    )
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    collate = padded_collator(pad)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(
            model=model,
            args=TrainingArguments(
                output_dir=out,
                per_device_train_batch_size=args.batch_size,
                learning_rate=args.lr,
                max_steps=args.steps,
                lr_scheduler_type="cosine",
                warmup_ratio=0.03,
                logging_steps=1,
                save_strategy="no",
                report_to=[],
                use_cpu=not torch.cuda.is_available(),
                remove_unused_columns=False,
                bf16=torch.cuda.is_available(),
                disable_tqdm=True,
                seed=0,
                include_num_input_tokens_seen="non_padding",
            ),
            train_dataset=rows,
            data_collator=collate,
        )
        start = time.perf_counter()
        trainer.train()
        elapsed = time.perf_counter() - start
    real = trainer.state.num_input_tokens_seen
    computed = 0  # tokens incl. padding: the same batches again, widths only
    loader = trainer.get_train_dataloader()
    for i, batch in enumerate(loader):
        if i >= args.steps:
            break
        computed += batch["input_ids"].numel()
    result = {
        "real_tokens_per_s": real / elapsed,
        "computed_tokens_per_s": computed / elapsed,
        "real_tokens": real,
        "seconds": elapsed,
        "peak_gpu_gib": peak_gpu_memory(),
        "eval_loss": eval_loss(model, held_out),
    }
    model.unload()
    return result


def ours(model, tokenizer, examples, held_out, args, precision: str, quant: str = "none") -> dict:
    peak_gpu_memory(start=True)
    settings = LoraSettings(
        quantization=quant,  # the model passed in is already loaded that way
        precision=precision,
        pack_length=args.pack_length,
        rank=8,
        alpha=16,
        target_modules=TARGETS,
        lr=args.lr,
        max_steps=args.steps,
        batch_size=args.packed_rows,
        max_length=args.max_length,
        eval_fraction=0,
        eval_every=args.steps,  # one checkpoint, at the end: the baseline saves none
    )
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        result = train_lora(
            examples, "bench", f"{out}/a", settings, model_and_tokenizer=(model, tokenizer)
        )
        elapsed = time.perf_counter() - start
        peak = peak_gpu_memory()
        from peft import PeftModel

        loss = eval_loss(PeftModel.from_pretrained(model, f"{out}/a"), held_out)
    return {
        "precision": result.precision,
        "real_tokens_per_s": result.tokens_per_s,
        "seconds_with_setup": elapsed,
        "peak_gpu_gib": peak,
        "eval_loss": loss,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--pack-length", type=int, default=512)
    parser.add_argument("--examples", type=int, default=400)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--base", help="an HF folder (default: the embedded model's GGUF)")
    parser.add_argument("--qlora", action="store_true", help="also the QLoRA NF4 pair (CUDA)")
    args = parser.parse_args()
    if args.qlora and not torch.cuda.is_available():
        parser.error("--qlora needs a CUDA GPU (bitsandbytes NF4)")
    with contextlib.redirect_stdout(sys.stderr):  # the trainer's log lines; stdout is the JSON
        report = run(args)
    print(json.dumps(report, indent=2))


def base_folder(base: str | None, scratch: str) -> tuple[str, str]:
    """(the base to load, where its weights came from). A folder without weights gets random
    ones, saved in `scratch` so that every loader (the NF4 one too) reads the same."""
    if base is None:
        return str(default_model_path()), "SmolLM2-135M-Instruct (dequantized from its GGUF)"
    if any(f.endswith((".safetensors", ".bin")) for f in os.listdir(base)):
        return base, base
    config = AutoConfig.from_pretrained(base)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(scratch)
    AutoTokenizer.from_pretrained(base).save_pretrained(scratch)
    return scratch, f"{config.model_type} from {base}'s config, random weights (seed 0)"


def run(args) -> dict:
    torch.manual_seed(0)
    base, weights = base_folder(args.base, tempfile.mkdtemp(prefix="bench-base-"))
    model, tokenizer = load_base(base)
    examples = [
        parse_example(d) for d in synthesize(DEMO_TOOLS, args.examples, seed=3, max_offered=4)
    ]
    held_out = encode(
        [parse_example(d) for d in synthesize(DEMO_TOOLS, 40, seed=99, max_offered=4)],
        tokenizer,
        "assistant",
        1024,
    )
    rows = encode(examples, tokenizer, "assistant", 1024)
    lengths = [len(r["input_ids"]) for r in rows]
    # the same real tokens a step on both sides: only the padding differs
    args.packed_rows = max(
        1, round(args.batch_size * sum(lengths) / len(lengths) / args.pack_length)
    )
    base_loss = eval_loss(model, held_out)
    if torch.cuda.is_available():  # kernels compiled and tuned before anything is timed
        plain(model, tokenizer, rows, held_out, argparse.Namespace(**{**vars(args), "steps": 3}))
    baseline = plain(model, tokenizer, rows, held_out, args)
    edge = ours(model, tokenizer, examples, held_out, args, "auto")
    edge_fp32 = ours(model, tokenizer, examples, held_out, args, "fp32")
    qlora = {}
    if args.qlora:
        del model
        qlora_plain = plain(nf4_by_hand(base), tokenizer, rows, held_out, args)
        qlora_ours = ours(load_base(base, "nf4")[0], tokenizer, examples, held_out, args,
                          "auto", "nf4")  # fmt: skip
        qlora = {
            "qlora_plain_trainer_peft_padded": qlora_plain,
            "qlora_edgeagent": qlora_ours,
            "qlora_speedup": qlora_ours["real_tokens_per_s"] / qlora_plain["real_tokens_per_s"],
        }
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {DEVICE}",
        "torch": torch.__version__,
        "cpu_native_bf16": cpu_has_bf16(),
        "model": weights,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "packed_rows_per_step": args.packed_rows,
        "pack_length": args.pack_length,
        "max_length": args.max_length,
        "examples": len(rows),
        "mean_example_tokens": sum(lengths) / len(lengths),
        "held_out_loss_before": base_loss,
        "plain_trainer_peft_padded": baseline,
        "edgeagent": edge,
        "edgeagent_fp32": edge_fp32,
        "speedup_real_tokens_per_s": edge["real_tokens_per_s"] / baseline["real_tokens_per_s"],
        "speedup_fp32": edge_fp32["real_tokens_per_s"] / baseline["real_tokens_per_s"],
        "eval_loss_vs_baseline": edge["eval_loss"] / baseline["eval_loss"] - 1,
        **qlora,
    }


if __name__ == "__main__":
    main()
