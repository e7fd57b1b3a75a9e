"""Where edgeagent keeps user data. `EDGEAGENT_HOME` moves it (tests point it at a temp dir)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def publishing(target: Path) -> Iterator[Path]:
    """A temporary path beside `target` to write a file or a folder into; when the block ends
    without an error it is published at `target` durably (replace_file or swap_in), and in every
    case the temporary is gone: a killed or failed writer never leaves a `target` that looks
    whole. The one way edgeagent writes an output."""
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    _remove(tmp)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield tmp
        if tmp.is_dir():
            swap_in(tmp, target)
        else:
            replace_file(tmp, target)
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


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
