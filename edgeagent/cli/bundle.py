"""`edgeagent build` and `edgeagent verify`: bundles for a target, and their check."""

from __future__ import annotations

from pathlib import Path

import click

from edgeagent.cli.common import (
    adapter_choice,
    echo_json,
    human_bytes,
    json_option,
    trust_option,
)


@click.command("build")
@click.option("--target", "target_spec", required=True, help="A target, e.g. rpi5 or rpi5:8gb.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Bundle folder.")
@click.option("--model", type=click.Path(exists=True, path_type=Path),
              help="GGUF file, ONNX or HF folder (default: the embedded model).")  # fmt: skip
@click.option("--adapter", type=click.Path(exists=True, path_type=Path),
              help="GGUF LoRA file or PEFT folder (default: the shipped adapter on the "
              "embedded model).")  # fmt: skip
@click.option("--no-adapter", is_flag=True, help="Bundle the bare model.")
@click.option("--decoupled", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of DualTune GGUF adapters (edgeagent export lora).")  # fmt: skip
@click.option("--tools", "tools_source", metavar="MODULE", help="Module or .py file of tools.")
@click.option("--format", "fmt", type=click.Choice(["gguf", "onnx"]), help="Override the target's.")
@click.option("--quant", help="Quantization instead of the planner's choice.")
@click.option(
    "--n-ctx",
    type=click.IntRange(min=64),
    help="Context length instead of the planner's choice.",
)
@click.option("--force", is_flag=True, help="Replace an existing bundle folder.")
@click.option("--sign", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              metavar="KEY", help="Sign the manifest (a key from edgeagent keys new).")  # fmt: skip
@json_option
def build(
    target_spec: str, out: Path, model: Path | None, adapter: Path | None, no_adapter: bool,
    decoupled: Path | None, tools_source: str | None, fmt: str | None, quant: str | None,
    n_ctx: int | None, force: bool, sign: Path | None, as_json: bool,
) -> None:  # fmt: skip
    """Plan, convert and write a bundle for a device, with a manifest of every file's SHA-256."""
    from edgeagent.bundle.build import build_bundle

    def progress(step: str) -> None:
        if not as_json:
            click.echo(f"· {step}", err=True)

    result = build_bundle(
        target_spec, out, model=model, adapter=adapter_choice(adapter, no_adapter),
        decoupled=decoupled, tools=tools_source, fmt=fmt, quant=quant, n_ctx=n_ctx,
        force=force, sign=sign, progress=progress,
    )  # fmt: skip
    if as_json:
        echo_json(result.to_dict())
        return
    click.secho(
        f"built {result.out} for {result.target}: {result.format} {result.quantization}, "
        f"n_ctx {result.n_ctx}, {result.files} files, {human_bytes(result.bytes)}, planned "
        f"{result.estimate_bytes / 2**20:.0f} of {result.budget_bytes / 2**20:.0f} MiB, "
        f"{result.seconds:.1f} s",
        bold=True,
    )
    click.echo(f"next: edgeagent verify {result.out} && edgeagent run --bundle {result.out} '...'")


@click.command("verify")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--no-run", is_flag=True, help="Skip the tool call (hashes and fit only).")
@trust_option
@json_option
def verify(bundle: Path, no_run: bool, trust: tuple[Path, ...], as_json: bool) -> None:
    """Check a bundle: manifest, paths, every size and SHA-256, that the model fits its target,
    and one grammar-constrained tool call (tools are not executed). Exit 1 when a check fails."""
    from edgeagent.bundle.verify import verify_bundle

    report = verify_bundle(bundle, run=not no_run, trust=trust)
    if as_json:
        echo_json(report.to_dict())
    else:
        for check in report.checks:
            mark = click.style("✓" if check.ok else "✗", fg="green" if check.ok else "red")
            click.echo(f"{mark} {check.name}: {check.detail}")
        click.secho(
            f"{bundle}: {'verified' if report.ok else 'FAILED'}",
            fg="green" if report.ok else "red", bold=True,
        )  # fmt: skip
    if not report.ok:
        raise SystemExit(1)
