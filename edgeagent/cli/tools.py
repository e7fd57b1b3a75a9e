"""`edgeagent tools`: the tools an agent would be given, with their JSON Schemas."""

from __future__ import annotations

import json

import click

from edgeagent.cli.common import echo_json, json_option
from edgeagent.toolsource import load_tools


@click.command("tools")
@click.option("--tools", "source", metavar="MODULE", help="Module or .py file (default: demo).")
@json_option
def command(source: str | None, as_json: bool) -> None:
    """List tools: name, effects, description and argument schema."""
    tools = load_tools(source)
    if as_json:
        echo_json([{**t.spec(), "effects": t.effects} for t in tools])
        return
    for t in tools:
        click.secho(f"{t.name}", bold=True, nl=False)
        click.echo(f"  [{t.effects}]  {t.description}")
        click.echo(f"    {json.dumps(t.parameters, ensure_ascii=False)}")
