"""`edgeagent export`: trained adapters into the formats devices run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from edgeagent.cli.common import echo_json, json_option
from edgeagent.quantization import gguf_exportable, names


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


def _base(base: str | None) -> Path:
    """The base argument: a .gguf file, an HF folder, or the embedded model (none given)."""
    from edgeagent.models import resolve_model

    if base and Path(base).is_dir():
        return Path(base)
    return resolve_model(base)


@command.command("merge")
@click.argument("adapter", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--base", help="GGUF file or HF folder it was trained on (default: embedded).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="HF folder to write.")
@click.option(
    "--dtype", type=click.Choice(["float32", "float16", "bfloat16"]), default="float16",
    show_default=True,
)  # fmt: skip
@json_option
def merge(adapter: Path, base: str | None, out: Path, dtype: str, as_json: bool) -> None:
    """Merge a PEFT LoRA adapter into its base (full or half precision, never 4-bit) and save
    an HF folder with the tokenizer and chat template."""
    from edgeagent.converters.merge import merge_adapter

    result = merge_adapter(_base(base), adapter, out, dtype)
    if as_json:
        echo_json(result.__dict__)
    else:
        click.echo(f"merged {adapter} into {result.path} ({dtype}, {result.bytes / 1e6:.0f} MB)")


@command.command("gguf")
@click.option("--base", help="GGUF file or HF folder (default: the embedded model).")
@click.option("--adapter", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--quant", type=click.Choice(gguf_exportable()), default="q4_k_m",
              show_default=True)  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--check/--no-check", default=True, show_default=True,
              help="Compare with the merged model (top-1 agreement, perplexity).")  # fmt: skip
@click.option("--threads", type=click.IntRange(min=1), help="Quantizer threads (default: all).")
@json_option
def gguf(
    base: str | None, adapter: Path | None, quant: str, out: Path, check: bool,
    threads: int | None, as_json: bool,
) -> None:  # fmt: skip
    """A model (+ an adapter, merged in fp32) -> a GGUF file in QUANT, self-checked."""
    from edgeagent.converters.pipeline import export_gguf

    if not as_json:
        click.echo(f"merging, writing GGUF and quantizing to {quant}…", err=True)
    result = export_gguf(_base(base), out, adapter, quant, check, threads)
    if as_json:
        echo_json(result.to_dict())
        return
    click.echo(_summary(result))


@command.command("onnx")
@click.option("--base", help="GGUF file or HF folder (default: the embedded model).")
@click.option("--adapter", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--quant", type=click.Choice(names("onnx")),
              default="int4", show_default=True,
              help="int8/int4: onnxruntime-genai's model builder, weights in blocks "
              "(MatMulNBits); int8-dynamic: optimum + onnxruntime's dynamic "
              "quantization.")  # fmt: skip
@click.option(
    "--block-size",
    type=click.Choice(["16", "32", "64", "128", "256"]),
    default="32",
    show_default=True,
    help="INT8/INT4 block size.",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--check/--no-check", default=True, show_default=True,
              help="Compare with the merged model (top-1 agreement, perplexity).")  # fmt: skip
@json_option
def onnx(
    base: str | None, adapter: Path | None, quant: str, block_size: str, out: Path,
    check: bool, as_json: bool,
) -> None:  # fmt: skip
    """A model (+ an adapter, merged in fp32) -> an ONNX folder (onnxruntime-genai's model
    builder; INT8/INT4 weights in blocks) that `edgeagent run --model DIR` runs, self-checked."""
    from edgeagent.converters.onnx_export import export_onnx

    if not as_json:
        click.echo(f"merging, exporting ONNX and quantizing to {quant}…", err=True)
    result = export_onnx(_base(base), out, adapter, quant, int(block_size), check)
    if as_json:
        echo_json(result.to_dict())
    else:
        click.echo(_summary(result))


def _summary(result: Any) -> str:
    """One line: the file, its format and size, and the self-check's figures."""
    size = f"{result.bytes / 1e6:.1f} MB"
    line = f"wrote {result.path} ({result.quant}, {size}, {result.seconds:.0f} s)"
    if result.check:
        c = result.check
        line += (
            f"; top-1 agreement {c.top1_agreement:.1%} with the merged model, perplexity "
            f"{c.perplexity:.2f} (reference {c.reference_perplexity:.2f})"
        )
    return line
