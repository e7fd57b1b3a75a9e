"""`edgeagent run "PROMPT"`: one request to the agent, answer and tool calls printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from edgeagent.cli.common import echo_json, json_option
from edgeagent.errors import EdgeAgentError


@click.command("run")
@click.argument("prompt")
@click.option(
    "--model", type=click.Path(path_type=Path), help="GGUF file or ONNX folder (default: embedded)."
)
@click.option(
    "--adapter",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="GGUF LoRA adapter to apply (edgeagent export lora). Default: the shipped general "
    "adapter on the embedded model.",
)
@click.option("--no-adapter", is_flag=True, help="Run the bare model, without any adapter.")
@click.option(
    "--decoupled",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of DualTune GGUF adapters (selector + per-tool arguments).",
)
@click.option(
    "--bundle",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Run a bundle (edgeagent build): its model, adapters, tools and settings.",
)
@click.option("--tools", "tools_source", metavar="MODULE", help="Module or .py file of tools.")
@click.option("--n-ctx", type=int, help="Context length (default: 2048, or the bundle's).")
@click.option("--threads", type=int, help="CPU threads (default: all this process may use).")
@click.option("--max-steps", default=4, show_default=True, help="Model calls per request.")
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
@json_option
def command(
    prompt: str,
    model: Path | None,
    adapter: Path | None,
    no_adapter: bool,
    decoupled: Path | None,
    bundle: Path | None,
    tools_source: str | None,
    n_ctx: int | None,
    threads: int | None,
    max_steps: int,
    tool_choice: str,
    no_grammar: bool,
    memory: Path | None,
    as_json: bool,
) -> None:
    """Run one request: the model may call tools, then answers."""
    from edgeagent.agent import Agent, RunFinished, TextDelta, ToolCallFinished
    from edgeagent.toolsource import load_tools

    options: dict[str, Any] = {
        "n_threads": threads,
        "max_steps": max_steps,
        "constrained": not no_grammar,
        "tool_choice": tool_choice,
        "memory": memory,
    }
    if n_ctx:
        options["n_ctx"] = n_ctx
    if bundle:
        if model or adapter or decoupled or tools_source:
            raise EdgeAgentError(
                "--bundle brings its own model, adapters and tools",
                hint="drop --model/--adapter/--decoupled/--tools, or run without --bundle",
            )
        if no_adapter:
            options["adapter"] = None
        if threads is None:
            del options["n_threads"]
        agent = Agent.from_bundle(bundle, **options)
    else:
        agent = Agent(
            load_tools(tools_source),
            model=model,
            adapter=None if no_adapter else adapter or "default",
            decoupled=decoupled,
            **options,
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
