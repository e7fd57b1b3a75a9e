"""The options that choose a model, its adapters and tools (`run`, `chat`), and the agent they
make."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from edgeagent.cli.common import adapter_choice
from edgeagent.errors import EdgeAgentError

if TYPE_CHECKING:
    from edgeagent.agent import Agent

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS = [
    click.option(
        "--model",
        type=click.Path(path_type=Path),
        help="GGUF file or ONNX folder (default: embedded).",
    ),
    click.option(
        "--adapter",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="GGUF LoRA adapter to apply (edgeagent export lora). Default: the shipped general "
        "adapter on the embedded model.",
    ),
    click.option("--no-adapter", is_flag=True, help="Run the bare model, without any adapter."),
    click.option(
        "--decoupled",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="Folder of DualTune GGUF adapters (selector + per-tool arguments).",
    ),
    click.option(
        "--bundle",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="Run a bundle (edgeagent build): its model, adapters, tools and settings.",
    ),
    click.option(
        "--deployment",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="Run what a deployment (edgeagent deploy --root DIR) runs now.",
    ),
    click.option("--tools", "tools_source", metavar="MODULE", help="Module or .py file of tools."),
    click.option(
        "--allow",
        "allow",
        metavar="TOOL",
        multiple=True,
        help="A tool with side effects that may run without asking (repeatable).",
    ),
    click.option(
        "--n-ctx",
        type=click.IntRange(min=64),
        help="Context length (default: 2048, or the bundle's).",
    ),
    click.option(
        "--threads",
        type=click.IntRange(min=1),
        help="CPU threads (default: all this process may use).",
    ),
    click.option(
        "--trace",
        "trace",
        is_flag=False,
        flag_value="",
        default=None,
        metavar="[PATH]",
        help="Record one line per turn in this SQLite file (default ~/.edgeagent/traces.db) "
        "for edgeagent stats.",
    ),
    click.option(
        "--trace-content", is_flag=True, help="Keep prompts and answers in the trace too."
    ),
    click.option(
        "--min-confidence",
        type=click.FloatRange(0, 1),
        help="Below this confidence a call is not made (or goes to --fallback).",
    ),
    click.option(
        "--call-threshold",
        type=click.FloatRange(0, 1),
        help="Call a tool only where the model's P(call) at its first token is at least this, "
        "else answer (default: 0.66 with the shipped adapter, calibrated; 0 otherwise).",
    ),
    click.option(
        "--fallback",
        metavar="URL",
        help="An OpenAI-compatible server (…/v1) asked when the model is unsure.",
    ),
    click.option("--fallback-model", default="default", show_default=True, metavar="NAME"),
]


def agent_options(command: F) -> F:
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def make_agent(
    *,
    model: Path | None,
    adapter: Path | None,
    no_adapter: bool,
    decoupled: Path | None,
    bundle: Path | None,
    deployment: Path | None = None,
    tools_source: str | None,
    n_ctx: int | None,
    threads: int | None,
    **options: Any,
) -> Agent:
    """The agent the options describe; `options` are further Agent settings."""
    from edgeagent.agent import Agent
    from edgeagent.fallback import Fallback
    from edgeagent.models import is_onnx_folder, resolve_model
    from edgeagent.paths import home
    from edgeagent.toolsource import load_tools

    trace = options.pop("trace", None)
    if trace is not None:
        options["trace"] = Path(trace) if trace else home() / "traces.db"
    url, model_name = options.pop("fallback", None), options.pop("fallback_model", "default")
    if url:
        if not str(url).startswith(("http://", "https://")):
            raise EdgeAgentError(
                f"--fallback {url!r} is not an http(s) URL",
                hint="e.g. --fallback http://gpu-box:8080/v1",
            )
        options["fallback"] = Fallback(url, model_name)
    for unset in ("min_confidence", "call_threshold"):
        if options.get(unset) is None:
            options.pop(unset, None)

    if n_ctx:
        options["n_ctx"] = n_ctx
    if threads is not None:
        options["n_threads"] = threads
    if bundle and deployment:
        raise EdgeAgentError("give --bundle or --deployment, not both")
    if bundle or deployment:
        if model or adapter or decoupled or tools_source:
            flag = "--bundle" if bundle else "--deployment"
            raise EdgeAgentError(
                f"{flag} brings its own model, adapters and tools",
                hint=f"drop --model/--adapter/--decoupled/--tools, or run without {flag}",
            )
        if no_adapter:
            options["adapter"] = None
    try:
        if deployment:
            agent = Agent.from_deployment(deployment, **options)
        elif bundle:
            agent = Agent.from_bundle(bundle, **options)
        else:
            agent = Agent(
                load_tools(tools_source),
                model=model,
                adapter=adapter_choice(adapter, no_adapter),
                decoupled=decoupled,
                **options,
            )
    except ValueError as exc:  # the Agent's own checks of its settings (--allow, ...)
        hint = "`edgeagent tools` (with --tools) lists the tools' names"
        raise EdgeAgentError(str(exc), hint=hint) from None
    if model is not None and not is_onnx_folder(model):
        resolve_model(model)  # a missing or broken model file: an error now, not after a screen
    if options.get("memory") is not None:
        agent.memory  # noqa: B018  (opens the file: a bad one is refused before the model loads)
    return agent
