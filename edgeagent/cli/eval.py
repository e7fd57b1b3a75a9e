"""`edgeagent eval`: score the agent on BFCL's data or your own BFCL-format cases."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from edgeagent.cli.common import adapter_choice, echo_json, json_option
from edgeagent.errors import EdgeAgentError


@click.command("eval")
@click.option("--bfcl", help="BFCL categories, e.g. simple_python,multiple,parallel,irrelevance.")
@click.option("--limit", type=click.IntRange(min=1), help="The first N cases of each category.")
@click.option(
    "--questions",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Your own cases: BFCL-format questions (JSON lines).",
)
@click.option(
    "--answers",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Their ground truth (JSON lines); a question without one is irrelevance.",
)
@click.option("--model", type=click.Path(exists=True, path_type=Path), help="GGUF or ONNX folder.")
@click.option("--bundle", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--adapter",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="GGUF LoRA adapter (default: the shipped one on the embedded model).",
)
@click.option("--no-adapter", is_flag=True, help="The bare model.")
@click.option("--no-grammar", is_flag=True, help="Generate without the tool-call grammar.")
@click.option(
    "--compare",
    help="Configurations side by side: default,no-propose-calls,no-adapter,no-grammar,bare.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Bar chart PNG of a comparison (default with --compare: eval-compare.png).",
)
@click.option(
    "--predictions-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="One JSON object a line: id, calls (empty when none), ok.",
)
@click.option(
    "--coherence",
    is_flag=True,
    help="Also: after a scripted tool result, does the answer use its values?",
)
@click.option(
    "--answers-check",
    is_flag=True,
    help="Also: the answers check (edgeagent/data/eval/answers.jsonl): after real and scripted "
    "tool results, errors, empty results and declined calls, is the answer short prose that "
    "states the result?",
)
@click.option(
    "--regression",
    is_flag=True,
    help="Also: perplexity and no-tool answers, adapter on vs off (forgetting).",
)
@click.option(
    "--no-propose-calls",
    is_flag=True,
    help="Replies as the model ends them: no extra call asked for after the first reply's calls.",
)
@click.option("--n-ctx", type=click.IntRange(min=64), default=4096, show_default=True)
@json_option
def command(
    bfcl: str | None,
    limit: int | None,
    questions: Path | None,
    answers: Path | None,
    model: Path | None,
    bundle: Path | None,
    adapter: Path | None,
    no_adapter: bool,
    no_grammar: bool,
    compare: str | None,
    plot: Path | None,
    predictions_out: Path | None,
    coherence: bool,
    answers_check: bool,
    regression: bool,
    no_propose_calls: bool,
    n_ctx: int,
    as_json: bool,
) -> None:
    """Run the agent over BFCL-format cases and check its calls by AST, as BFCL does: per
    category accuracy, valid-call rate, latency and tokens/s. --coherence and --regression add
    the checks beyond single calls, --answers-check the answers after tool results."""
    from edgeagent.evaluation import beyond
    from edgeagent.evaluation.answers import check_answers
    from edgeagent.evaluation.runner import (
        PRESETS,
        EvalCase,
        Evaluator,
        bfcl_cases,
        file_cases,
    )

    if not (bfcl or questions or coherence or answers_check or regression):
        raise EdgeAgentError(
            "no cases",
            hint="pass --bfcl simple_python --limit 50, --questions Q --answers A, "
            "--coherence, --answers-check or --regression",
        )
    cases: list[EvalCase] = []
    skipped: list[str] = []
    if bfcl:
        cases += bfcl_cases([c.strip() for c in bfcl.split(",") if c.strip()], limit)
    if questions:
        mine, skipped = file_cases(questions, answers)
        cases += mine[:limit] if limit else mine
    for line in skipped:
        click.secho(f"skipped {line}", fg="yellow", err=True)
    if (bfcl or questions) and not cases:
        raise EdgeAgentError("no case to run", hint="check the case files")
    names = [n.strip() for n in compare.split(",")] if compare else []
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise EdgeAgentError(
            f"unknown configuration {unknown[0]!r}", hint=f"one of: {', '.join(PRESETS)}"
        )
    configs = [(n, *PRESETS[n]) for n in names] or [
        ("run", not no_adapter, not no_grammar, not no_propose_calls)
    ]
    evaluator = Evaluator(model, adapter_choice(adapter, no_adapter), bundle, n_ctx)
    reports = []
    for name, use_adapter, use_grammar, propose in configs:
        with _progress(name, len(cases), quiet=as_json or not cases) as bar:
            rep = evaluator.run(
                cases,
                name=name,
                adapter=use_adapter,
                grammar=use_grammar,
                progress=lambda i, r: bar and bar.update(1, r),
                propose_calls=propose,
            )
        rep.skipped = skipped
        if coherence:
            rep.coherence = beyond.coherence(evaluator, use_adapter, use_grammar)
        if answers_check:
            rep.answers_check = check_answers(evaluator, use_adapter, use_grammar)
        reports.append(rep)
    checked = beyond.regression(evaluator) if regression else None
    if predictions_out:
        with predictions_out.open("w", encoding="utf-8") as fh:
            for rep in reports:
                for r in rep.results:
                    row = {"id": r.id, "calls": r.calls, "ok": r.ok}
                    if len(reports) > 1:
                        row["config"] = rep.config
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    if cases and (compare or plot):
        from edgeagent.evaluation.plot import plot_comparison

        plot = plot_comparison(reports, plot or Path("eval-compare.png"))
    if as_json:
        keep = ("config", "model", "adapter", "grammar", "coherence", "answers_check")  # no scores
        data = [r.to_dict() if cases else {k: r.to_dict()[k] for k in keep} for r in reports]
        out = data[0] if len(data) == 1 else {"configs": data, "plot": str(plot) if plot else None}
        echo_json({**out, "regression": checked} if regression else out)
        return
    if cases:
        _table(reports)
    for rep in reports:
        if rep.coherence:
            c = rep.coherence
            click.echo(
                f"{rep.config}: coherence: called the tool {c['called']:.2f}, answer uses "
                f"the result {c['answer_uses_result']:.2f} ({c['cases']} cases)"
            )
        if rep.answers_check:
            a = rep.answers_check
            kinds = ", ".join(f"{k} {v:.2f}" for k, v in a["kinds"].items())
            problems = "; ".join(f"{k}: {v}" for k, v in a["problems"].items()) or "none"
            click.echo(
                f"{rep.config}: answers check {a['passed']:.2f} of {a['cases']} cases ({kinds}); "
                f"problems: {problems}; retried after an error: {a['retried_after_error']}"
            )
    if checked:
        _regression(checked)
    if plot:
        click.echo(f"chart: {plot}")


def _regression(checked: dict[str, Any]) -> None:
    if not checked["checked"]:
        click.echo(f"regression: not checked ({checked['why']})")
        return
    p, a = checked["perplexity"], checked["no_tool_answers"]
    verdict = click.style("REGRESSED", fg="red") if checked["regressed"] else "ok"
    click.echo(
        f"regression: {verdict}: general-text perplexity {p['bare']:.2f} bare, {p['adapter']:.2f} "
        f"with the adapter (x{p['ratio']:.2f}); no-tool prompts answered {a['bare']:.2f} bare, "
        f"{a['adapter']:.2f} with it"
    )


def _progress(label: str, n: int, quiet: bool) -> Any:
    """A bar with the remaining time and the decode speed so far: update it with (1, result)."""
    if quiet:
        return contextlib.nullcontext(None)
    seen: dict[int, Any] = {}  # click may show one item more than once: count each once

    def speed(result: Any) -> str | None:
        if result is not None:
            seen[id(result)] = result
        tokens = sum(r.completion_tokens for r in seen.values())
        seconds = sum(r.decode_s for r in seen.values())
        return f"{tokens / seconds:.0f} tokens/s" if seconds else None

    return click.progressbar(
        length=n, label=label, file=sys.stderr, show_eta=True, item_show_func=speed
    )


def _table(reports: list) -> None:
    cats = [c.category for c in reports[0].categories] + ["overall"]
    width = max(14, *(len(r.config) for r in reports))  # "no-propose-calls" whole
    head = f"{'category':24} {'cases':>5}" + "".join(f" {r.config:>{width}}" for r in reports)
    click.secho(head, bold=True)
    for cat in cats:
        rows = [{c.category: c for c in [*r.categories, r.overall]}[cat] for r in reports]
        line = f"{cat:24} {rows[0].cases:>5}" + "".join(f" {s.accuracy:>{width}.3f}" for s in rows)
        click.echo(line)
    for r in reports:
        o = r.overall
        click.secho(
            f"{r.config}: accuracy {o.accuracy:.3f} ({o.correct}/{o.cases}), valid calls "
            f"{o.valid_call_rate:.3f}, {o.mean_latency_s:.2f} s/case, {o.tokens_per_s:.0f} tok/s "
            f"(adapter {'on' if r.adapter else 'off'}, grammar {'on' if r.grammar else 'off'})",
            dim=True,
        )
