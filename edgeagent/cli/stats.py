"""`edgeagent stats`: what traced agents did (edgeagent.traces)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import click

from edgeagent.cli.common import echo_json, json_option
from edgeagent.errors import EdgeAgentError


def _since(text: str | None) -> float:
    """'2026-11-30', '2026-11-30T10:00', or a span back from now: '90m', '6h', '7d'."""
    if not text:
        return 0.0
    span = re.fullmatch(r"(\d+)([mhd])", text)
    if span:
        return time.time() - int(span[1]) * {"m": 60, "h": 3600, "d": 86400}[span[2]]
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise EdgeAgentError(
            f"--since {text!r} is neither a date nor a span",
            hint="e.g. --since 2026-11-30, --since 6h, --since 7d",
        ) from None


@click.command("stats")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--since", metavar="WHEN", help="Only turns after this: a date, or 90m, 6h, 7d.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the latency distribution and rates over time as a PNG.",
)
@json_option
def command(path: Path | None, since: str | None, plot: Path | None, as_json: bool) -> None:
    """Call success and validity, abstentions and escalations, latency p50/p95/p99, per tool
    and per adapter, from a trace (--trace on run, chat and serve)."""
    from edgeagent.paths import home
    from edgeagent.traces import plot as plot_turns
    from edgeagent.traces import read_turns, summarize

    after = _since(since)
    path = path or home() / "traces.db"
    if not path.is_file():
        raise EdgeAgentError(
            f"no trace at {path}", hint="record one with --trace on edgeagent run, chat or serve"
        )
    try:
        turns = read_turns(path, after)
    except Exception as exc:  # sqlite3's errors: not a trace, or damaged
        raise EdgeAgentError(f"{path} is not a readable trace ({exc})") from None
    summary = {"trace": str(path), **summarize(turns)}
    if plot and turns:
        plot_turns(turns, plot)
        summary["plot"] = str(plot)
    if as_json:
        echo_json(summary)
        return
    _show(summary)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.0%}"


def _ms(p: dict[str, Any]) -> str:
    return "/".join("-" if p[k] is None else f"{p[k] * 1000:.0f}" for k in ("p50", "p95", "p99"))


def _show(s: dict[str, Any]) -> None:
    click.secho(f"{s['trace']}: {s['turns']} turns, {s['calls']} calls", bold=True)
    click.echo(
        f"  calls: {_pct(s['call_success_rate'])} ran, {_pct(s['call_validity_rate'])} "
        f"valid, {s['declined']} declined"
    )
    click.echo(
        f"  abstained {_pct(s['abstention_rate'])}, escalated {_pct(s['escalation_rate'])}"
        f" ({s['escalation_failures']} fallback failures); mean confidence "
        f"{s['mean_confidence'] if s['mean_confidence'] is not None else '-'}"
    )
    click.echo(f"  TTFT p50/p95/p99 {_ms(s['ttft_s'])} ms; whole turn {_ms(s['total_s'])} ms")
    for name, t in s["per_tool"].items():
        click.echo(
            f"  tool {name}: {t['calls']} calls, {_pct(t['success_rate'])} ran, "
            f"{_pct(t['validity_rate'])} valid, {_ms(t['duration_s'])} ms"
        )
    for name, a in s["per_source"].items():
        click.echo(
            f"  {name}: {a['turns']} turns, {_pct(a['call_success_rate'])} of calls ran, "
            f"abstained {_pct(a['abstention_rate'])}, TTFT p50 "
            f"{_ms(a['ttft_s']).split('/')[0]} ms"
        )
    for name, a in s["per_adapter"].items():
        click.echo(
            f"  adapter {name}: {a['turns']} turns, TTFT p50 {_ms(a['ttft_s']).split('/')[0]}"
            f" ms, abstained {_pct(a['abstention_rate'])}"
        )
    if s.get("plot"):
        click.echo(f"  plot: {s['plot']}")
