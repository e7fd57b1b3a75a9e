"""Where edgeagent keeps user data. `EDGEAGENT_HOME` moves it (tests point it at a temp dir)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def home() -> Path:
    """The user directory: $EDGEAGENT_HOME, else ~/.edgeagent. Created on first use."""
    root = Path(os.environ.get("EDGEAGENT_HOME") or Path.home() / ".edgeagent")
    root.mkdir(parents=True, exist_ok=True)
    return root


def swap_in(new: Path, target: Path) -> None:
    """Put a finished folder at `target` by renames: the output is the old one or the new one,
    whole (killed between the two renames, the old one waits in `.NAME.old`). Its files reach
    the disk before the renames, and the renames before this returns, so a power cut does not
    publish a folder of empty files either."""
    fsync_tree(new)
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    _fsync(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def replace_file(new: Path, target: Path) -> None:
    """Give a finished file its final name, durably (as swap_in does for folders)."""
    _fsync(new)
    os.replace(new, target)
    _fsync(target.parent)


def fsync_tree(root: Path) -> None:
    """fsync every file and folder under `root`, so a rename that publishes it comes after its
    data (a crash then leaves the old output or the new one, whole)."""
    for path in [*root.rglob("*"), root]:
        _fsync(path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
