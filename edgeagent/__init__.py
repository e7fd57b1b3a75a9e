"""edgeagent: tool-calling agents on small devices, offline.

from edgeagent import Agent, tool
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgeagent._version import __version__
from edgeagent.tools import Tool, tool

if TYPE_CHECKING:
    from edgeagent.agent import Agent, RunResult, Session

__all__ = ["Agent", "RunResult", "Session", "Tool", "__version__", "tool"]


def __getattr__(name: str) -> Any:
    # The agent (and through it llama.cpp) loads on first use, keeping `import edgeagent` light.
    if name in ("Agent", "RunResult", "Session"):
        from edgeagent import agent

        return getattr(agent, name)
    raise AttributeError(f"module 'edgeagent' has no attribute {name!r}")
