"""The `edgeagent` command. Each subcommand is a thin file that parses options and calls the
library; user errors (EdgeAgentError) print one message and a hint, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from edgeagent._version import __version__
from edgeagent.errors import EdgeAgentError


class _Group(click.Group):
    """Every error a user can make prints `error: ...` and a hint line, exit code 2: ours
    (EdgeAgentError) and click's own (a bad option value, which click prints as usage text)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EdgeAgentError as exc:
            _error(str(exc))
            sys.exit(2)

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else "edgeagent"
            _error(f"{exc.format_message()}\n  hint: `{where} --help` lists the options")
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            _error(exc.format_message())
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


def _error(text: str) -> None:
    click.secho(f"error: {text}", fg="red", err=True)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgeagent")
def main() -> None:
    """Tool-calling agents on small devices: train, convert, build and run, offline."""


def _register() -> None:
    from edgeagent.cli import (
        bundle,
        chat,
        data,
        deploy,
        eval,
        export,
        memory,
        models,
        run,
        serve,
        stats,
        targets,
        tools,
        train,
    )

    for module in (run, chat, serve, stats, models, tools, memory, data, train, export, eval):
        main.add_command(module.command)
    for command in (targets.targets, targets.plan, bundle.build, bundle.verify, deploy.keys,
                    deploy.deploy, deploy.rollback):  # fmt: skip
        main.add_command(command)


_register()
