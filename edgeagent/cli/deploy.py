"""`edgeagent keys`, `edgeagent deploy` and `edgeagent rollback`: signing keys, and safe updates
on a device (edgeagent.deploy; docs/deploy.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from edgeagent.cli.common import echo_json, json_option, trust_option

root_option = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The deployment's folder on this device (slots, state, log, data).",
)


@click.group("keys")
def keys() -> None:
    """Signing keys for bundles."""


@keys.command("new")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for signing.key (private, mode 0600) and signing.pub.")  # fmt: skip
@json_option
def keys_new(out: Path, as_json: bool) -> None:
    """Make an Ed25519 key pair: sign bundles with signing.key (edgeagent build --sign), give
    devices signing.pub (edgeagent verify/deploy --trust)."""
    from edgeagent.signing import new_keys

    pair = new_keys(out)
    data = {"private": str(pair.private), "public": str(pair.public), "key_id": pair.key_id}
    if as_json:
        echo_json(data)
        return
    click.secho(f"key {pair.key_id}: {pair.private} (keep it secret), {pair.public}", bold=True)
    click.echo(f"next: edgeagent build --target rpi5 --out dist/rpi5 --sign {pair.private}")


@click.command("deploy")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False, path_type=Path),
                required=False)  # fmt: skip
@root_option
@trust_option
@click.option("--canary", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Run the bundle beside the current one for this share of sessions.")  # fmt: skip
@click.option("--status", "show_status", is_flag=True, help="Show the slots and the history.")
@click.option("--promote", is_flag=True, help="End a canary trial: its bundle runs for all.")
@click.option("--rollback", "end_rollback", is_flag=True,
              help="End a canary trial, or go back to the previous bundle.")  # fmt: skip
@json_option
def deploy(
    bundle: Path | None, root: Path, trust: tuple[Path, ...], canary: float | None,
    show_status: bool, promote: bool, end_rollback: bool, as_json: bool,
) -> None:  # fmt: skip
    """Install a bundle into the slot that is not running, switch to it, check its health,
    and roll back by itself if the check fails. Exit 1 when it rolled back."""
    from edgeagent import deploy as ops
    from edgeagent.slots import DeployError

    actions = [bool(bundle), show_status, promote, end_rollback]
    if sum(actions) != 1:
        raise DeployError("give one of: BUNDLE, --status, --promote, --rollback",
                          hint="edgeagent deploy --help")  # fmt: skip
    if show_status:
        _show_status(ops.status(root), as_json)
        return
    if not as_json and bundle:
        click.echo(f"· installing {bundle} (copy, verify, switch, health check)…", err=True)
    if promote:
        outcome = ops.promote(root)
    elif end_rollback:
        outcome = ops.rollback(root)
    else:
        assert bundle is not None
        outcome = ops.deploy(bundle, root, trust=trust, canary=canary)
    _show(outcome.to_dict(), as_json)


@click.command("rollback")
@root_option
@json_option
def rollback(root: Path, as_json: bool) -> None:
    """Go back to the previous bundle (or end a canary trial)."""
    from edgeagent import deploy as ops

    _show(ops.rollback(root).to_dict(), as_json)


def _show(outcome: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(outcome)
    else:
        mark = click.style("✓" if outcome["ok"] else "✗", fg="green" if outcome["ok"] else "red")
        signer = f", signed by {outcome['signer']}" if outcome.get("signer") else ""
        click.echo(f"{mark} {outcome['action']}: slot {outcome['slot']}{signer}: "
                   f"{outcome['detail']}")  # fmt: skip
    if not outcome["ok"]:
        raise SystemExit(1)


def _show_status(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(data)
        return
    click.secho(f"{data['root']}: running slot {data['active'] or '(none)'}", bold=True)
    for slot, info in data.get("slots", {}).items():
        tag = " (running)" if slot == data["active"] else ""
        click.echo(
            f"  slot {slot}{tag}: {info['target']}, {info['model']}, built {info['created']}"
        )
    if data.get("canary"):
        click.echo(f"  canary: slot {data['canary']['slot']} for {data['canary']['share']:.0%}")
    for entry in data["history"]:
        mark = "✓" if entry["ok"] else "✗"
        click.echo(f"  {entry['time']} {mark} {entry['action']} {entry['bundle']} "
                   f"{entry['detail']}")  # fmt: skip
