"""`edgeagent chat`: the terminal assistant (edgeagent.apps.chat)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from edgeagent.cli.agentopts import agent_options, make_agent


@click.command("chat")
@agent_options
@click.option(
    "--memory",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Memory file: conversations, evicted turns, notes (default: ~/.edgeagent/chat.db).",
)
def command(memory: Path | None, **model_options: Any) -> None:
    """Chat with the agent in the terminal: streaming answers, tool-call cards, conversations
    kept across runs. Ctrl+P lists every command."""
    from edgeagent.apps.chat import ChatApp
    from edgeagent.paths import home

    where = memory or home() / "chat.db"
    app = ChatApp(lambda: make_agent(memory=where, **model_options))
    sys.exit(app.run() or 0)
