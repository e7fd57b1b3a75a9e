"""`edgeagent export`: trained adapters into the formats devices run."""

from __future__ import annotations

from pathlib import Path

import click

from edgeagent.cli.common import echo_json, json_option


@click.group("export")
def command() -> None:
    """Export adapters and models for on-device runtimes."""


@command.command("lora")
@click.argument("adapter", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--base", help="The GGUF base it runs on (default: the embedded model).")
@click.option("--out", type=click.Path(path_type=Path), help="Output .gguf (default: ADAPTER.gguf)")
@click.option("--dtype", type=click.Choice(["f32", "f16"]), default="f32", show_default=True)
@json_option
def lora(adapter: Path, base: str | None, out: Path | None, dtype: str, as_json: bool) -> None:
    """A PEFT LoRA adapter folder -> a GGUF LoRA adapter llama.cpp applies on the base.

    A decoupled folder (train --decoupled) becomes a folder of GGUF adapters with its
    decoupled.json, for Agent(decoupled=...) and run --decoupled."""
    from edgeagent.converters.lora_gguf import export_decoupled, export_lora_gguf
    from edgeagent.models import resolve_model

    if (adapter / "decoupled.json").exists():
        results = export_decoupled(adapter, resolve_model(base), out or adapter.with_name(
            adapter.name + "-gguf"), dtype)  # fmt: skip
    else:
        target = out or adapter.with_suffix(".gguf")
        results = [export_lora_gguf(adapter, resolve_model(base), target, dtype)]
    if as_json:
        echo_json([r.__dict__ for r in results] if len(results) > 1 else results[0].__dict__)
        return
    for r in results:
        click.echo(
            f"wrote {r.path}: {r.tensors} adapted weights, rank {r.rank}, alpha {r.alpha:g}, "
            f"{r.bytes / 1e6:.1f} MB"
        )
