"""`edgeagent serve`: the OpenAI chat-completions API on this machine (edgeagent.server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from edgeagent.cli.agentopts import agent_options, make_agent
from edgeagent.errors import EdgeAgentError


@click.command("serve")
@agent_options
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0 opens it to the network: set --api-key).",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option(
    "--api-key",
    envvar="EDGEAGENT_API_KEY",
    help="Every request must send it (Authorization: Bearer KEY).",
)
def command(host: str, port: int, api_key: str | None, **model_options: Any) -> None:
    """Serve /v1/chat/completions, /v1/models and /health to OpenAI clients: tools and
    tool_choice, parallel calls, json_schema answers and streaming, every call valid against
    its tool's schema. The clients run their tools; --tools adds tools the server runs itself
    (those with side effects only when --allow names them)."""
    from edgeagent.server import Engine, serve

    if model_options.get("decoupled"):
        raise EdgeAgentError(
            "serve runs one adapter, not decoupled ones",
            hint="pass --adapter, or export the adapters merged",
        )
    agent = make_agent(**model_options)  # a bad option fails here, before the port opens
    # --tools: tools the server runs itself, beside the ones clients send (an extension)
    own = agent.tools if model_options.get("tools_source") else []
    name = Path(str(model_options.get("model") or "edgeagent-default")).stem
    click.echo(f"edgeagent serve: http://{host}:{port}/v1 (model {name}; loading…)", err=True)
    serve(Engine(lambda: agent, name, own), host, port, api_key)
