"""Helpers shared by CLI commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
trust_option = click.option(
    "--trust",
    "trust",
    multiple=True,
    metavar="PUB",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A public key the bundle must be signed by (repeatable).",
)


def adapter_choice(adapter: Any, no_adapter: bool) -> Any:
    """--adapter / --no-adapter as the library's adapter argument ("default": the shipped one)."""
    from edgeagent.models import DEFAULT

    return None if no_adapter else adapter or DEFAULT


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover
