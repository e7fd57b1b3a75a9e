"""Load tools from a module name or a .py file (`--tools MODULE`)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from edgeagent.errors import EdgeAgentError
from edgeagent.tools import Tool, collect_tools


def load_tools(source: str | None) -> list[Tool]:
    """Tools from `source`: its `TOOLS` list if it has one, else every Tool it defines.
    None means edgeagent's demo tools."""
    if source is None:
        from edgeagent.demo_tools import DEMO_TOOLS

        return list(DEMO_TOOLS)
    try:
        if source.endswith(".py") or Path(source).is_file():
            path = Path(source).resolve()
            if not path.is_file():
                raise EdgeAgentError(f"tools file not found: {source}")
            spec = importlib.util.spec_from_file_location(f"edgeagent_user_tools_{path.stem}", path)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(source)
    except EdgeAgentError:
        raise
    except Exception as exc:
        raise EdgeAgentError(
            f"cannot load tools from {source!r}: {type(exc).__name__}: {exc}",
            hint="pass a module name on sys.path or the path of a .py file",
        ) from None
    found = getattr(module, "TOOLS", None)
    if found is None:
        found = [v for v in vars(module).values() if isinstance(v, Tool)]
    tools = collect_tools(found)
    if not tools:
        raise EdgeAgentError(
            f"{source!r} defines no tools", hint="decorate functions with @edgeagent.tool"
        )
    return tools
