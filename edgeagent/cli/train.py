"""`edgeagent train`: LoRA fine-tuning from a config file with flag overrides."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from edgeagent.cli.common import echo_json, json_option


@click.command("train")
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--data", help="Training JSONL (overrides the config).")
@click.option("--out", help="Adapter folder (overrides the config).")
@click.option("--base", help="Base model: 'default', a .gguf file or an HF directory.")
@click.option(
    "--decoupled",
    is_flag=True,
    default=None,
    help="DualTune: a selector adapter and one argument adapter per tool.",
)
@click.option(
    "--init-adapter",
    help="Train on from this adapter (PEFT folder or GGUF LoRA; 'default': the shipped one).",
)
@click.option("--fresh", is_flag=True, help="Discard checkpoints of an earlier run; do not resume.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="e.g. lora.rank=16")
@json_option
def command(
    config: Path | None,
    data: str | None,
    out: str | None,
    base: str | None,
    decoupled: bool | None,
    init_adapter: str | None,
    fresh: bool,
    overrides: tuple[str, ...],
    as_json: bool,
) -> None:
    """Train a LoRA adapter on tool-call data (needs the train extra).

    An interrupted run resumes from its last checkpoint when started again with the same data
    and settings. Several GPUs: accelerate launch -m edgeagent train ..."""
    from edgeagent.errors import EdgeAgentError
    from edgeagent.train.config import load_config
    from edgeagent.train.data import read_jsonl

    cfg = load_config(config, list(overrides))
    cfg.data, cfg.out, cfg.base = data or cfg.data, out or cfg.out, base or cfg.base
    cfg.decoupled = cfg.decoupled if decoupled is None else decoupled
    cfg.init_adapter = init_adapter or cfg.init_adapter
    cfg.lora.resume = cfg.lora.resume and not fresh
    # every path, before anything loads (the base is a local GGUF file or HF folder)
    for what, where in (
        ("--data", cfg.data),
        ("--base", cfg.base_path()),
        ("--init-adapter", cfg.init_adapter_path()),
    ):
        if where is not None and not Path(where).exists():
            raise EdgeAgentError(f"{what} {where}: no such file or folder", hint="check the path")
    examples, report = read_jsonl(cfg.data)
    for problem in report.problems[:10]:
        click.echo(f"skipped {problem}", err=True)
    if not examples:
        raise EdgeAgentError(f"{cfg.data} has no valid example", hint="edgeagent data validate")
    try:
        from edgeagent.train.trainer import train_lora
    except ImportError as exc:
        raise EdgeAgentError(
            f"training needs the train extra ({exc.name} is missing)",
            hint='pip install torch==2.13.0 && pip install -e ".[train]"',
        ) from None
    # The trainer's progress bar and loss lines go to stderr; stdout holds the summary only.
    with contextlib.redirect_stdout(sys.stderr):
        result = train_lora(
            examples,
            cfg.base_path(),
            cfg.out,
            cfg.lora,
            decoupled=cfg.decoupled,
            init_adapter=cfg.init_adapter_path(),
            progress=not as_json,
        )
    summary = {
        "adapter": result.adapter,
        "examples": len(examples),
        "skipped_lines": report.skipped,
        "steps": result.steps,
        "first_loss": result.train_loss[0] if result.train_loss else None,
        "last_loss": result.train_loss[-1] if result.train_loss else None,
        "eval_loss": result.eval_loss,
        "tokens_per_s": result.tokens_per_s,
        "precision": result.precision,
        "resumed_from": result.resumed_from,
        "adapters": sorted(result.adapters) or None,
    }
    if as_json:
        echo_json(summary)
    else:
        first, last = summary["first_loss"], summary["last_loss"]
        what = f"{len(result.adapters)} adapters" if result.adapters else "adapter"
        click.echo(
            f"trained {result.steps} steps on {len(examples)} examples "
            f"({result.tokens_per_s:.0f} tokens/s, {result.precision}): "
            f"loss {first:.3f} -> {last:.3f}; "
            f"{what} in {result.adapter}"
        )
