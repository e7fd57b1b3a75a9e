"""`edgeagent data validate FILE`: check a training file, line by line."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from edgeagent.cli.common import echo_json, json_option


@click.group("data")
def command() -> None:
    """Training data in the canonical chat JSONL format."""


@command.command("validate")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--max-problems", default=20, show_default=True, help="Problems to print.")
@json_option
def validate(path: Path, max_problems: int, as_json: bool) -> None:
    """Report every bad line (line number, field, reason); exit 1 if any line is bad."""
    from edgeagent.train.data import read_jsonl

    _, report = read_jsonl(path)
    if as_json:
        echo_json(report.to_dict())
    else:
        for problem in report.problems[:max_problems]:
            click.echo(str(problem))
        if len(report.problems) > max_problems:
            click.echo(f"… and {len(report.problems) - max_problems} more problems")
        click.echo(f"{report.valid} valid, {report.skipped} skipped, of {report.lines} lines")
    sys.exit(1 if report.problems else 0)
