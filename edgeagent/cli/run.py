"""`edgeagent run "PROMPT"`: one request to the agent, answer and tool calls printed."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from edgeagent.cli.agentopts import agent_options, make_agent
from edgeagent.cli.common import echo_json, json_option

if TYPE_CHECKING:
    from edgeagent.tools import Tool
    from edgeagent.wireformat import ToolCall


@click.command("run")
@click.argument("prompt")
@agent_options
@click.option(
    "--max-steps",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Model calls per request.",
)
@click.option(
    "--tool-choice",
    type=click.Choice(["auto", "required", "none"]),
    default="auto",
    show_default=True,
    help="auto: answer or call; required: the first reply must call a tool; none: answer.",
)
@click.option("--no-grammar", is_flag=True, help="Generate without the tool-call grammar.")
@click.option(
    "--memory",
    type=click.Path(path_type=Path),
    help="Memory file for evicted turns and recall (default: in-process, keyword only).",
)
@click.option(
    "--yes",
    "-y",
    "assume_yes",
    is_flag=True,
    help="Run every tool with side effects without asking (by default they are asked for in a "
    "terminal, and not run without one; --allow TOOL allows one).",
)
@json_option
def command(
    prompt: str,
    max_steps: int,
    tool_choice: str,
    no_grammar: bool,
    memory: Path | None,
    assume_yes: bool,
    allow: tuple[str, ...],
    as_json: bool,
    **model_options: Any,
) -> None:
    """Run one request: the model may call tools, then answers."""
    from edgeagent.agent import RunFinished, TextDelta, ToolCallFinished

    agent = make_agent(
        max_steps=max_steps,
        constrained=not no_grammar,
        tool_choice=tool_choice,
        memory=memory,
        confirm=ask_in_terminal,
        allow="all" if assume_yes else allow,
        **model_options,
    )
    if as_json:
        echo_json(agent.run(prompt).to_dict())
        return
    answering = False
    for event in agent.stream(prompt):
        if isinstance(event, TextDelta) and event.kind == "answer":
            answering = True
            click.echo(event.text, nl=False)
        elif isinstance(event, ToolCallFinished):
            rec = event.record
            mark = click.style("→", fg="green" if rec.ok else "red")
            args = json.dumps(rec.arguments, ensure_ascii=False)
            click.echo(f"{mark} {rec.name}({args})  [{rec.duration_s * 1000:.0f} ms]", err=True)
            click.echo(f"  {rec.result}", err=True)
        elif isinstance(event, RunFinished):
            if answering:
                click.echo()
            r = event.result
            data = r.to_dict()
            click.secho(
                f"{r.steps} step(s) · {len(r.tool_calls)} tool call(s) · "
                f"{r.usage.completion_tokens} tokens · "
                f"{data['timings']['decode_tokens_per_s']:.0f} tok/s · "
                f"first token {r.timings.ttft_s:.2f} s · total {r.timings.total_s:.2f} s",
                dim=True,
                err=True,
            )


def ask_in_terminal(call: ToolCall, tool: Tool) -> bool:
    """Before a tool with side effects: ask on the terminal; without one, do not run it."""
    args = ", ".join(f"{k}={v!r}" for k, v in call.arguments.items())
    if not sys.stdin.isatty():
        click.echo(
            f"not run: {call.name}({args}) has side effects ({tool.effects}) and there is no "
            f"terminal to ask; pass --allow {call.name} (or --yes) to allow it",
            err=True,
        )
        return False
    return click.confirm(f"Run {call.name}({args})?", default=False, err=True)
