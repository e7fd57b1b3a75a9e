"""A deployment's folder on a device, and which slot to run: what `Agent.from_deployment` reads.
The code that installs, checks and switches slots is edgeagent.deploy.

    ROOT/
      slots/a/  slots/b/   two bundles: the one running and the one an update goes into
      current -> slots/a   a symlink, switched by renaming a new link over it (atomic)
      state.json           which slot is confirmed, which is being tried, a canary trial
      deploy.log           one JSON line per deployment, rollback or recovery
      data/                the memory file and conversations: never inside a slot
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeagent.errors import EdgeAgentError
from edgeagent.paths import publishing

SLOTS = ("a", "b")
STATE = "state.json"
LOG = "deploy.log"
CURRENT = "current"


class DeployError(EdgeAgentError):
    """A deployment that cannot be read, installed or switched."""


@dataclass
class State:
    active: str | None = None  # the confirmed slot
    previous: str | None = None  # the slot confirmed before it (rollback goes there)
    #: a switch not yet confirmed: {"slot": ..., "previous": ...}; a process that died with
    #: this set is rolled back (edgeagent.deploy.recover)
    pending: dict[str, Any] | None = None
    #: a canary trial: {"slot": ..., "share": 0.1}
    canary: dict[str, Any] | None = None
    #: per slot: the bundle it holds, its signer, when it was installed
    installed: dict[str, dict[str, Any]] = field(default_factory=dict)


def slot_dir(root: Path, slot: str) -> Path:
    return root / "slots" / slot


def data_dir(root: Path) -> Path:
    """Where the agent's memory file and conversations live: outside every slot."""
    path = root / "data"
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_state(root: str | Path) -> State:
    path = Path(root) / STATE
    if not path.exists():
        return State()
    try:
        return State(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise DeployError(f"{path}: unreadable deployment state ({exc})") from None


def write_state(root: Path, state: State) -> None:
    with publishing(root / STATE) as tmp:
        tmp.write_text(json.dumps(asdict(state), indent=1) + "\n", encoding="utf-8")


def running_slot(root: str | Path, session_key: str | None = None) -> Path:
    """The bundle folder to run now: the confirmed slot (the last confirmed one while a switch
    is unconfirmed), or for a share of sessions the canary's. `session_key` routes a session
    to the same slot every time; None draws at random."""
    root = Path(root)
    state = read_state(root)
    slot = state.pending["previous"] if state.pending else state.active
    if state.canary and state.canary.get("slot") and not state.pending:
        share = float(state.canary.get("share", 0.0))
        draw = random.random() if session_key is None else _fraction(session_key)
        if draw < share:
            slot = state.canary["slot"]
    if slot is None:
        raise DeployError(
            f"{root} has no confirmed deployment",
            hint="edgeagent deploy BUNDLE --root DIR installs one",
        )
    return slot_dir(root, slot)


def _fraction(key: str) -> float:
    import hashlib

    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 16**8
