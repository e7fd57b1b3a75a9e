"""Does fine-tuning help? The embedded model with and without a LoRA adapter trained on
synthesized calls to the demo tools, both with the grammar on, in the llama.cpp runtime.
Prints one JSON object.

1. Synthesize training data (seed 1) and a held-out set (seed 99; the same tools, other
   requests and values), each example offering its tools plus up to 3 random others.
2. Train a LoRA adapter on the real SmolLM2-135M-Instruct (edgeagent's trainer), export it as a
   GGUF LoRA, load it into the same llama.cpp backend as the base and switch it by scale.
3. Score the first reply of each case, greedy, grammar on, tool_choice auto:
   held-out: exact match of the calls (names and arguments, order-free) or of "no call";
   BFCL simple_python / multiple: the function name and every ground-truth argument among its
   allowed values; BFCL irrelevance: no call at all.

    python benchmarks/bench_train_quality.py [--train 400] [--epochs 1] [--adapter DIR]

The adapter folder is kept (--keep DIR) so that a run can be scored again without training.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("EDGEAGENT_HOME", tempfile.mkdtemp(prefix="edgeagent-bench-"))

from quality import score  # noqa: E402

from edgeagent.backends.llamacpp import LlamaCppBackend  # noqa: E402
from edgeagent.bfcl import load_cases  # noqa: E402
from edgeagent.converters.lora_gguf import export_lora_gguf  # noqa: E402
from edgeagent.demo_tools import DEMO_TOOLS  # noqa: E402
from edgeagent.models import default_model_path  # noqa: E402
from edgeagent.train.data import parse_example  # noqa: E402
from edgeagent.train.synth import synthesize  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=400)
    parser.add_argument("--held-out", type=int, default=60)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--bfcl-limit", type=int, default=30)
    parser.add_argument("--adapter", type=Path, help="score this PEFT adapter; do not train")
    parser.add_argument("--keep", type=Path, help="where to keep the trained adapter")
    args = parser.parse_args()
    with contextlib.redirect_stdout(sys.stderr):  # the trainer's log lines; stdout is the JSON
        report = run(args)
    print(json.dumps(report, indent=2))


def run(args) -> dict:
    tools = DEMO_TOOLS
    held_out = [parse_example(d) for d in synthesize(tools, args.held_out, 99, max_offered=4)]
    report: dict = {"model": "SmolLM2-135M-Instruct Q4_1 (embedded)", "grammar": True}
    adapter = args.adapter
    if adapter is None:
        from edgeagent.train.trainer import LoraSettings, train_lora

        train = [parse_example(d) for d in synthesize(tools, args.train, 1, max_offered=4)]
        adapter = args.keep or Path(tempfile.mkdtemp()) / "adapter"
        settings = LoraSettings(
            rank=args.rank, alpha=2 * args.rank, lr=args.lr, epochs=args.epochs, batch_size=2,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                            "down_proj"],
            eval_fraction=0.05, max_length=1024,
        )  # fmt: skip
        start = time.perf_counter()
        result = train_lora(train, default_model_path(), adapter, settings)
        report["training"] = {
            "examples": len(train), "epochs": args.epochs, "rank": args.rank, "lr": args.lr,
            "steps": result.steps, "first_loss": result.train_loss[0],
            "last_loss": result.train_loss[-1], "eval_loss": result.eval_loss,
            "tokens_per_s": result.tokens_per_s,
            "minutes": round((time.perf_counter() - start) / 60, 1),
        }  # fmt: skip
    gguf = Path(tempfile.mkdtemp()) / "adapter.gguf"
    export_lora_gguf(adapter, default_model_path(), gguf)
    backend = LlamaCppBackend(default_model_path(), n_ctx=4096, adapters={"ft": gguf})
    bfcl = {c: load_cases(c, args.bfcl_limit) for c in ("simple_python", "multiple", "irrelevance")}
    backend.set_adapters({})
    report["base"] = score(backend, held_out, bfcl)
    backend.set_adapters({"ft": 1.0})
    report["fine_tuned"] = score(backend, held_out, bfcl)
    return report


if __name__ == "__main__":
    main()
