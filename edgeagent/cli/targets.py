"""`edgeagent targets` and `edgeagent plan`: the device profiles, and what fits one."""

from __future__ import annotations

from pathlib import Path

import click

from edgeagent.cli.common import echo_json, json_option


@click.command("targets")
@json_option
def targets(as_json: bool) -> None:
    """List the device profiles (targets/*.toml, and ~/.edgeagent/targets/*.toml)."""
    from edgeagent.targets import load_targets

    found = load_targets()
    if as_json:
        echo_json([t.to_dict() for t in found])
        return
    for t in found:
        variants = ", ".join(f"{k} ({v // 1024} GB)" for k, v in t.variants.items())
        click.secho(t.name, bold=True, nl=False)
        click.echo(f"  {t.description}")
        click.echo(
            f"    {t.arch} · {t.cores} cores · accelerator {t.accelerator} · {t.format} "
            f"{'/'.join(t.quantizations) if t.format == 'gguf' else t.onnx_quantization} · "
            f"n_ctx {t.n_ctx} · {t.threads} threads · variants {variants}"
        )


@click.command("plan")
@click.option("--target", "target_spec", required=True, help="A target, e.g. rpi5 or rpi5:8gb.")
@click.option("--model", type=click.Path(path_type=Path), help="GGUF file, ONNX or HF folder.")
@click.option("--format", "fmt", type=click.Choice(["gguf", "onnx"]), help="Override the target's.")
@click.option("--quant", help="One quantization instead of the target's list.")
@click.option(
    "--n-ctx",
    type=click.IntRange(min=64),
    help="One context length instead of the target's range.",
)
@json_option
def plan(
    target_spec: str, model: Path | None, fmt: str | None, quant: str | None,
    n_ctx: int | None, as_json: bool,
) -> None:  # fmt: skip
    """Memory for a model on a target: weights + KV cache + compute + runtime, per quantization
    and context length, and the best that fits (refused, with the table, when none does)."""
    from edgeagent.models import default_model_path
    from edgeagent.targets import load_target
    from edgeagent.targets.planner import model_shape
    from edgeagent.targets.planner import plan as make_plan

    target = load_target(target_spec)
    shape = model_shape(model or default_model_path())
    # the embedded model runs with the shipped adapter (switched on for calls, off for answers)
    result = make_plan(shape, target, fmt=fmt, quant=quant, n_ctx=n_ctx, adapters=model is None)
    if as_json:
        echo_json(result.to_dict())
        return
    click.echo(f"{Path(shape.path).name} on {target.full_name}: {target.description}")
    click.echo(result.table())
    c = result.choice
    assert c is not None
    click.secho(
        f"plan: {c.format} {c.quantization}, n_ctx {c.n_ctx}, {c.total / 2**20:.0f} MiB of "
        f"{target.budget_bytes / 2**20:.0f} MiB", bold=True,
    )  # fmt: skip
