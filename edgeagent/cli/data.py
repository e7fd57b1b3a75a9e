"""`edgeagent data validate|import|synth`: check, convert and make training data."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from edgeagent.cli.common import echo_json, json_option


@click.group("data")
def command() -> None:
    """Training data in the canonical chat JSONL format."""


max_problems_option = click.option(
    "--max-problems", type=click.IntRange(min=0), default=20, show_default=True,
    help="Problems to print.",
)  # fmt: skip


@command.command("validate")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@max_problems_option
@json_option
def validate(path: Path, max_problems: int, as_json: bool) -> None:
    """Report every bad line (line number, field, reason); exit 1 if any line is bad."""
    from edgeagent.train.data import read_jsonl

    _, report = read_jsonl(path)
    _print_report(report, max_problems, as_json)
    sys.exit(1 if report.problems else 0)


@command.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--from",
    "source_format",
    type=click.Choice(["xlam"]),
    required=True,
    help="The file's format: xlam (one {query, tools, answers} record a line).",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@max_problems_option
@json_option
def import_(path: Path, source_format: str, out: Path, max_problems: int, as_json: bool) -> None:
    """Convert a file to the canonical format; bad lines are reported and skipped."""
    from edgeagent.train.data import example_to_dict, read_jsonl, write_jsonl
    from edgeagent.train.importers import from_xlam

    examples, report = read_jsonl(path, parse=from_xlam)
    if not examples:
        _print_report(report, max_problems, as_json)
        raise click.ClickException(f"no valid {source_format} record in {path}; nothing written")
    write_jsonl([example_to_dict(e) for e in examples], out)
    if as_json:
        echo_json({**report.to_dict(), "out": str(out)})
    else:
        _print_report(report, max_problems, as_json)
        click.echo(f"wrote {len(examples)} examples to {out}")


def _print_report(report: Any, max_problems: int, as_json: bool) -> None:
    if as_json:
        echo_json(report.to_dict())
        return
    for problem in report.problems[:max_problems]:
        click.echo(str(problem))
    if len(report.problems) > max_problems:
        click.echo(f"… and {len(report.problems) - max_problems} more problems")
    click.echo(f"{report.valid} valid, {report.skipped} skipped, of {report.lines} lines")


@command.command("synth")
@click.option("--tools", "source", metavar="MODULE|FILE.json", help="Tools (default: demo tools).")
@click.option(
    "--bank",
    type=click.Choice(["train", "held-out", "demo", "all"]),
    help="Use edgeagent's broad tool bank (its training or held-out tools, or the demo tools "
    "with hand-written requests) instead of --tools.",
)
@click.option(
    "--n",
    "count",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Examples to write.",
)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--max-offered",
    type=click.IntRange(min=1),
    help="Offer each example the tools it needs plus random others, at most this many "
    "(default: every tool, in order, as `edgeagent run` offers them; with --bank train, "
    "held-out or all: 4).",
)
@click.option(
    "--siblings",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="With --bank: this share of examples offers a whole domain of look-alike tools "
    "(a third of them asking for one that is not there).",
)
@click.option(
    "--missing",
    type=click.FloatRange(0, 0.9),
    default=0.25,
    show_default=True,
    help="Share of negatives that ask for a tool left out of the list. 0 when your app always "
    "offers all its tools: a small model taught that case hesitates on those requests.",
)
@click.option(
    "--masked",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="With --bank: this share of examples has meaningless tool names (fn_42), so that the "
    "model learns to read descriptions (function masking).",
)
@click.option(
    "--same-tool",
    is_flag=True,
    help='A tenth of the examples ask one tool for two or three things at once ("the weather '
    'in Paris and in Oslo"), one call each: parallel calls, at a cost to choosing among '
    "tools (docs/benchmarks.md).",
)
@click.option(
    "--numbers",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="With --bank: this share of examples says a value as people do: a large number "
    '("$1,200", "$45k"), a unit in words ("5 miles" for "mi"), a percentage ("18% of 240"), '
    'the call the value the schema wants (without them "$1,200" becomes 1).',
)
@click.option(
    "--retries",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="With --bank: this share of examples has a misspelled value the tool refuses; when "
    "its error suggests the value it knows (\"did you mean 'Paris'?\") the model calls again "
    "with it, otherwise it answers with the error.",
)
@click.option(
    "--answers",
    is_flag=True,
    help="With --bank: examples of answers after tool results (a call, its made-up result, an "
    'answer that states it) for an answer adapter (lora.mask = "answer").',
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@json_option
def synth(
    source: str | None,
    bank: str | None,
    count: int,
    seed: int,
    max_offered: int | None,
    siblings: float,
    missing: float,
    masked: float,
    same_tool: bool,
    numbers: float,
    retries: float,
    answers: bool,
    out: Path,
    as_json: bool,
) -> None:
    """Generate examples from tools: requests, argument values, parallel calls, negatives."""
    from collections import Counter

    from edgeagent.toolsource import load_tools
    from edgeagent.train.data import write_jsonl
    from edgeagent.train.synth import load_tool_list, synthesize

    if bank:
        from edgeagent.train.toolbank import bank_tools, synthesize_bank

        if source:
            raise click.UsageError("give --tools or --bank, not both")
        bank_items = bank_tools(bank)
        n_tools = len(bank_items)
        if max_offered is None and bank != "demo":  # hundreds of tools: never all at once
            max_offered = 4
        if answers:
            from edgeagent.train.answers import synthesize_answers

            try:
                examples = synthesize_answers(bank_items, count, seed)
            except ValueError as exc:
                raise click.UsageError(f"--answers: {exc}; use --bank train") from None
        else:
            examples = synthesize_bank(
                bank_items, count, seed, max_offered, siblings, missing, masked, same_tool,
                numbers, retries,
            )  # fmt: skip
    else:
        if siblings or masked or numbers or retries or answers:
            raise click.UsageError(
                "--siblings, --masked, --numbers, --retries and --answers need --bank"
            )
        tools = (
            load_tool_list(source) if source and source.endswith(".json") else load_tools(source)
        )
        n_tools = len(tools)
        examples = synthesize(tools, count, seed, max_offered, missing, same_tool)
    written = write_jsonl(examples, out)
    kinds: Counter[str] = Counter()
    for ex in examples:
        reply = next(m for m in ex["messages"] if m["role"] == "assistant")  # the first
        calls = len(reply.get("tool_calls") or [])
        kinds["no call" if not calls else "parallel" if calls > 1 else "single call"] += 1
    if as_json:
        echo_json({"path": str(out), "examples": written, "tools": n_tools, **kinds})
    else:
        summary = ", ".join(f"{v} {k}" for k, v in sorted(kinds.items()))
        click.echo(f"wrote {written} examples for {n_tools} tools to {out} ({summary})")
