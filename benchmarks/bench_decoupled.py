"""DualTune on the embedded model: decoupled adapters (a selector + one argument adapter per
tool) vs one adapter trained on the whole reply, through the same two-phase inference
(edgeagent.train.dualtune, transformers + peft, greedy). Prints one JSON object.

Both are trained here on the same synthesized examples (seed 1) with the same LoRA settings, and
scored on the held-out set (seed 99) that bench_train_quality.py uses: whether the selector's
decision is right (call or not, and which tool), and whether the arguments match exactly.

    python benchmarks/bench_decoupled.py [--train 200] [--single DIR] [--keep DIR]
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

from peft import PeftModel  # noqa: E402

from edgeagent.demo_tools import DEMO_TOOLS  # noqa: E402
from edgeagent.models import default_model_path  # noqa: E402
from edgeagent.train.data import parse_example  # noqa: E402
from edgeagent.train.dualtune import SELECTOR, load_decoupled, two_phase_call  # noqa: E402
from edgeagent.train.synth import synthesize  # noqa: E402
from edgeagent.train.trainer import LoraSettings, load_base, train_lora  # noqa: E402

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def single_as_both(base, folder):
    """One adapter in both phases: the same procedure, without the decoupling."""
    model = PeftModel.from_pretrained(base, folder, adapter_name=SELECTOR)
    for t in DEMO_TOOLS:
        model.load_adapter(folder, adapter_name=f"arguments_{t.name}")
    model.eval()
    return model


def score(model, tokenizer, held_out) -> dict:
    choice = exact = calls = 0
    start = time.perf_counter()
    for ex in held_out:
        want = ex.messages[1].calls[0] if ex.messages[1].calls else None
        got = two_phase_call(model, tokenizer, ex.messages[:1], ex.tools, max_new_tokens=64)
        calls += want is not None
        choice += got.name == (want.name if want else None)
        exact += want is not None and got.name == want.name and got.arguments == want.arguments
    return {
        "cases": len(held_out),
        "right_choice": round(choice / len(held_out), 3),
        "exact_first_call": round(exact / max(calls, 1), 3),
        "seconds_per_case": round((time.perf_counter() - start) / len(held_out), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=200)
    parser.add_argument("--held-out", type=int, default=60)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--single", type=Path, help="an adapter trained on whole replies")
    parser.add_argument("--decoupled", type=Path, help="decoupled adapters; do not train")
    parser.add_argument("--keep", type=Path, help="where to keep what is trained here")
    args = parser.parse_args()
    with contextlib.redirect_stdout(sys.stderr):  # the trainer's log lines; stdout is the JSON
        report = run(args)
    print(json.dumps(report, indent=2))


def run(args) -> dict:
    keep = args.keep or Path(tempfile.mkdtemp())
    train = [parse_example(d) for d in synthesize(DEMO_TOOLS, args.train, 1, max_offered=4)]
    held_out = [parse_example(d) for d in synthesize(DEMO_TOOLS, args.held_out, 99, max_offered=4)]
    settings = LoraSettings(rank=16, alpha=32, lr=args.lr, epochs=1.0, batch_size=2,
                            target_modules=TARGETS, eval_fraction=0)  # fmt: skip
    report: dict = {"model": "SmolLM2-135M-Instruct (transformers, from its GGUF)"}
    base, tokenizer = load_base(default_model_path())
    minutes = {}
    single = args.single
    if single is None:
        start = time.perf_counter()
        single = train_lora(
            train, default_model_path(), keep / "single", settings, (base, tokenizer)
        ).adapter
        minutes["single"] = round((time.perf_counter() - start) / 60, 1)
    decoupled = args.decoupled
    if decoupled is None:
        start = time.perf_counter()
        out = keep / "decoupled"
        decoupled = train_lora(
            train, default_model_path(), out, settings, (base, tokenizer), decoupled=True
        ).adapter
        minutes["decoupled"] = round((time.perf_counter() - start) / 60, 1)
    report["training"] = {"examples": len(train), "minutes": minutes, "lr": args.lr}
    model = single_as_both(base, single)
    report["single_adapter"] = score(model, tokenizer, held_out)
    base = model.unload()
    report["decoupled_adapters"] = score(load_decoupled(base, decoupled), tokenizer, held_out)
    return report


if __name__ == "__main__":
    main()
