"""The `edgeagent` command. Each subcommand is a thin file that parses options and calls the
library; user errors (EdgeAgentError) print one message and a hint, never a traceback."""

from __future__ import annotations

import sys
from typing import Any

import click

from edgeagent._version import __version__
from edgeagent.errors import EdgeAgentError


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EdgeAgentError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgeagent")
def main() -> None:
    """Tool-calling agents on small devices: train, convert, build and run, offline."""


def _register() -> None:
    from edgeagent.cli import (
        bundle,
        chat,
        data,
        eval,
        export,
        memory,
        models,
        run,
        targets,
        tools,
        train,
    )

    for module in (run, chat, models, tools, memory, data, train, export, eval):
        main.add_command(module.command)
    for command in (targets.targets, targets.plan, bundle.build, bundle.verify):
        main.add_command(command)


_register()
