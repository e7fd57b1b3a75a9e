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
@click.option("--prompt", default="", help="Send this prompt as soon as the model is loaded.")
def command(memory: Path | None, prompt: str, **model_options: Any) -> None:
    """Chat with the agent in the terminal: streaming answers, tool-call cards, conversations
    kept across runs. Ctrl+P lists every command."""
    from edgeagent.apps.chat import ChatApp
    from edgeagent.paths import home

    # built here (the model loads later, in the app): a bad option is an error line, not a
    # screen inside the app
    if memory is None and not model_options.get("deployment"):  # a deployment has its own
        memory = home() / "chat.db"
    if memory is not None:
        model_options["memory"] = memory
    agent = make_agent(**model_options)
    app = ChatApp(lambda: agent, first_prompt=prompt)
    app.run()
    sys.exit(app.return_code or 0)
