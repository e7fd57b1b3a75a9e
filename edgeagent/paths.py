"""Where edgeagent keeps user data. `EDGEAGENT_HOME` moves it (tests point it at a temp dir)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The user directory: $EDGEAGENT_HOME, else ~/.edgeagent. Created on first use."""
    root = Path(os.environ.get("EDGEAGENT_HOME") or Path.home() / ".edgeagent")
    root.mkdir(parents=True, exist_ok=True)
    return root
