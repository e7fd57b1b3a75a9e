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
    """A PEFT LoRA adapter folder -> a GGUF LoRA adapter llama.cpp applies on the base."""
    from edgeagent.converters.lora_gguf import export_lora_gguf
    from edgeagent.models import resolve_model

    target = out or adapter.with_suffix(".gguf")
    result = export_lora_gguf(adapter, resolve_model(base), target, dtype)
    if as_json:
        echo_json(result.__dict__)
    else:
        click.echo(
            f"wrote {result.path}: {result.tensors} adapted weights, rank {result.rank}, "
            f"alpha {result.alpha:g}, {result.bytes / 1e6:.1f} MB"
        )
