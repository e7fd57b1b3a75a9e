"""Safe updates on a device: install a bundle into the slot that is not running, switch, check
its health, and roll back by itself when the check fails or the process dies before it
confirms (the layout is in edgeagent.slots; docs/deploy.md has the steps and the threat model).

    deploy(bundle, root, trust=[pub])   check signature and compatibility (nothing touched yet)
                                        -> copy into the other slot -> verify the copy
                                        -> state: pending -> switch `current` -> health check
                                        -> state: confirmed          (or: switch back, logged)
    recover(root)                       a pending switch whose process died: back to the last
                                        confirmed slot
    rollback(root)                      back to the previous confirmed slot

The health check runs in a child process (a model that crashes llama.cpp must not take the
deployer with it): the bundle's model loads, one grammar-constrained call on stub tools, and the
memory file opens.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgeagent.manifest import (
    BundleError,
    check_signature,
    compatibility_problems,
    file_problems,
    read_manifest,
)
from edgeagent.paths import publishing
from edgeagent.signing import SignatureError
from edgeagent.slots import (
    CURRENT,
    LOG,
    SLOTS,
    DeployError,
    data_dir,
    read_state,
    slot_dir,
    write_state,
)

HEALTH_TIMEOUT_S = 300.0


@dataclass
class Outcome:
    action: str  # "deploy", "canary", "promote", "rollback", "recover"
    ok: bool
    slot: str | None
    detail: str
    bundle: str = ""
    signer: str | None = None
    time: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _step(name: str) -> None:
    """Called as each step begins (copy, verify, switch, health, confirm): a test kills the
    process here to show that every step is safe to die in."""


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One deployer at a time on a root (a second one waits)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def deploy(
    bundle: str | Path,
    root: str | Path,
    *,
    trust: Sequence[str | Path] = (),
    canary: float | None = None,
    health_timeout_s: float = HEALTH_TIMEOUT_S,
) -> Outcome:
    """Install `bundle` and switch to it (or, with `canary`, run it beside the current slot for
    that share of sessions). Refused before anything changes when its signature, files or
    compatibility are wrong; rolled back when its health check fails."""
    bundle, root = Path(bundle), Path(root)
    if canary is not None and not 0 < canary < 1:
        raise DeployError("a canary share is between 0 and 1, e.g. 0.1")
    with _locked(root):
        _recover(root)
        try:
            signer = _admit(bundle, trust)
        except DeployError as exc:
            _log(root, Outcome("deploy", False, None, str(exc.args[0]), str(bundle)))
            raise
        state = read_state(root)
        if state.canary:
            raise DeployError(
                f"a canary trial runs in slot {state.canary['slot']}",
                hint="end it first: edgeagent deploy --promote or --rollback",
            )
        slot = next(s for s in SLOTS if s != state.active)
        _step("copy")
        with publishing(slot_dir(root, slot)) as tmp:
            shutil.copytree(bundle, tmp, symlinks=False)
        _step("verify")
        _admit(slot_dir(root, slot), trust)  # the copy, as it is on this disk
        state.installed[slot] = {"bundle": str(bundle.resolve()), "signer": signer,
                                 "at": _now()}  # fmt: skip
        if canary is not None:
            ok, detail = _health(root, slot, health_timeout_s)
            if ok:
                state.canary = {"slot": slot, "share": canary}
            write_state(root, state)
            return _log(root, Outcome("canary", ok, slot, detail, str(bundle), signer))
        write_state(root, state)
        return _switch(root, slot, "deploy", health_timeout_s, str(bundle), signer)


def _admit(bundle: Path, trust: Sequence[str | Path]) -> str | None:
    """The signer's key id (None without trust keys); DeployError saying why the bundle may not
    be installed: signature, files, or compatibility."""
    try:
        signer = check_signature(bundle, list(trust)) if trust else None
        manifest = read_manifest(bundle)
    except (SignatureError, BundleError) as exc:
        raise DeployError(f"refused {bundle}: {exc.args[0]}", hint=exc.hint) from None
    problems = file_problems(bundle, manifest) + compatibility_problems(manifest)
    if problems:
        raise DeployError(f"refused {bundle}: {'; '.join(problems)}",
                          hint="edgeagent verify BUNDLE names every problem")  # fmt: skip
    return signer


def _switch(
    root: Path, slot: str, action: str, timeout: float, bundle: str = "", signer: str | None = None
) -> Outcome:
    state = read_state(root)
    previous = state.active
    state.pending = {"slot": slot, "previous": previous, "since": _now()}
    write_state(root, state)
    _step("switch")
    _point(root, slot)
    _step("health")
    ok, detail = _health(root, slot, timeout)
    _step("confirm")
    state = read_state(root)
    state.pending = None
    if ok:
        state.active, state.previous = slot, previous
    else:
        _point(root, previous)
        detail = f"rolled back to slot {previous or '(none)'}: {detail}"
    write_state(root, state)
    return _log(root, Outcome(action, ok, slot if ok else previous, detail, bundle, signer))


def _point(root: Path, slot: str | None) -> None:
    """`current` -> slots/SLOT, by renaming a new symlink over it (never absent, never half)."""
    link = root / CURRENT
    if slot is None:
        link.unlink(missing_ok=True)
        return
    tmp = root / f".{CURRENT}.tmp-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(Path("slots") / slot)
    os.replace(tmp, link)
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _health(root: Path, slot: str, timeout: float) -> tuple[bool, str]:
    """The health check, in a child process: (passed, what it found)."""
    cmd = [sys.executable, "-m", "edgeagent.deploy", str(slot_dir(root, slot)), str(root),
           str(os.getpid())]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"the health check did not finish in {timeout:.0f} s"
    try:
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        return bool(report["ok"]), str(report["detail"])
    except (ValueError, IndexError, KeyError):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return False, f"the health check died (exit {proc.returncode}): {tail[0]}"


def health(slot: Path, root: Path) -> tuple[bool, str]:
    """Load the model, make one grammar-constrained call on stub tools, open the memory file."""
    from edgeagent.bundle.verify import verify_bundle
    from edgeagent.conversations import Conversations
    from edgeagent.memory import MemoryIndex

    report = verify_bundle(slot, run=True)
    failed = [f"{c.name}: {c.detail}" for c in report.checks if not c.ok]
    if failed:
        return False, "; ".join(failed)
    try:
        with MemoryIndex(data_dir(root) / "memory.db") as memory:
            Conversations(memory)
    except Exception as exc:  # any failure to open it is a failed check
        return False, f"memory file: {exc}"
    call = next(c.detail for c in report.checks if c.name == "tool call")
    return True, f"model loads, {call}, memory file opens"


def recover(root: str | Path) -> Outcome | None:
    """Finish what a killed deployment left: a switch never confirmed goes back to the last
    confirmed slot. None when there was nothing to do."""
    root = Path(root)
    with _locked(root):
        return _recover(root)


def _recover(root: Path) -> Outcome | None:
    for leftover in (root / "slots").glob(".*") if (root / "slots").exists() else []:
        shutil.rmtree(leftover, ignore_errors=True)  # a copy cut off by a kill
    state = read_state(root)
    if not state.pending:
        return None
    previous = state.pending.get("previous")
    _point(root, previous)
    slot = state.pending.get("slot")
    state.pending = None
    write_state(root, state)
    detail = f"a switch to slot {slot} was not confirmed (the deployer died); back on slot " \
             f"{previous or '(none)'}"  # fmt: skip
    return _log(root, Outcome("recover", True, previous, detail))


def rollback(root: str | Path, *, health_timeout_s: float = HEALTH_TIMEOUT_S) -> Outcome:
    """Back to the previous confirmed slot (after its health check), or end a canary trial."""
    root = Path(root)
    with _locked(root):
        _recover(root)
        state = read_state(root)
        if state.canary:
            slot = state.canary["slot"]
            state.canary = None
            write_state(root, state)
            ended = f"canary trial of slot {slot} ended"
            return _log(root, Outcome("rollback", True, state.active, ended))
        if state.previous is None:
            raise DeployError(f"{root} has no previous deployment to go back to")
        return _switch(root, state.previous, "rollback", health_timeout_s)


def promote(root: str | Path, *, health_timeout_s: float = HEALTH_TIMEOUT_S) -> Outcome:
    """The canary's slot becomes the running one for every session."""
    root = Path(root)
    with _locked(root):
        _recover(root)
        state = read_state(root)
        if not state.canary:
            raise DeployError(f"{root} runs no canary trial",
                              hint="edgeagent deploy BUNDLE --canary 0.1 starts one")  # fmt: skip
        slot = state.canary["slot"]
        state.canary = None
        write_state(root, state)
        return _switch(root, slot, "promote", health_timeout_s)


def status(root: str | Path, history: int = 10) -> dict[str, Any]:
    root = Path(root)
    state = read_state(root)
    summary: dict[str, Any] = {"root": str(root), **asdict(state)}
    for slot in SLOTS:
        with contextlib.suppress(BundleError, DeployError):
            m = read_manifest(slot_dir(root, slot))
            summary.setdefault("slots", {})[slot] = {
                "target": m.target, "model": m.model, "adapter": m.adapter,
                "created": m.created, "edgeagent": m.edgeagent_version,
            }  # fmt: skip
    summary["history"] = read_log(root)[-history:]
    return summary


def read_log(root: Path) -> list[dict[str, Any]]:
    path = root / LOG
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):  # a line cut off by a kill
            entries.append(json.loads(line))
    return entries


def _log(root: Path, outcome: Outcome) -> Outcome:
    outcome.time = outcome.time or _now()
    with (root / LOG).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(outcome.to_dict(), ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return outcome


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _exit_with(parent: int, poll_s: float = 0.2) -> None:
    """End this process when `parent` is gone. A deployer killed during the health check
    would otherwise leave its check running, and on a small device that orphan takes the cores
    from whatever runs next (the next deployment's own check included). llama.cpp releases the
    GIL while it decodes, so this thread gets to look."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="parent watch", daemon=True).start()


if __name__ == "__main__":  # the health check's child process: SLOT ROOT PARENT_PID
    _exit_with(int(sys.argv[3]))
    passed, found = health(Path(sys.argv[1]), Path(sys.argv[2]))
    print(json.dumps({"ok": passed, "detail": found}))
