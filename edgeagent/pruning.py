"""Hierarchical tool pruning: with many tools, only the top-k candidates for the current turn go
into the prompt and the grammar, so the schemas fit a small context and a small model's attention.

Tool descriptions are indexed in a memory index (keyword + vector, fused); each user turn
retrieves the k best. benchmarks/bench_pruning.py reports recall@k of the right tool on BFCL.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgeagent.memory import Embedder, MemoryIndex
from edgeagent.tools import Tool


def tool_document(tool: Tool) -> str:
    """What is indexed for a tool: its name in words, description and parameter descriptions."""
    words = tool.name.replace("_", " ").replace(".", " ").replace("-", " ")
    parts = [words, tool.description]
    for name, schema in tool.parameters.get("properties", {}).items():
        parts.append(f"{name.replace('_', ' ')}: {schema.get('description', '')}")
    return "\n".join(p for p in parts if p)


class ToolIndex:
    """Retrieves the tools that best match a request."""

    def __init__(self, tools: Sequence[Tool], embedder: Embedder | None = None) -> None:
        self.tools = list(tools)
        self._index = MemoryIndex(":memory:", embedder)
        self._index.add_many(
            [(tool_document(t), "tool", {"position": i}) for i, t in enumerate(self.tools)]
        )

    def select(self, query: str, k: int) -> list[Tool]:
        """The k best tools for `query`, in the order they were given to the agent (a stable
        order keeps the rendered prompt the same when the selection is the same)."""
        if k >= len(self.tools):
            return list(self.tools)
        hits = self._index.search(query, k=k)
        positions = sorted(h.metadata["position"] for h in hits)
        if len(positions) < k:  # too few keyword matches: fill with the first tools
            rest = [i for i in range(len(self.tools)) if i not in positions]
            positions = sorted(positions + rest[: k - len(positions)])
        return [self.tools[i] for i in positions]

    def ranked(self, query: str, k: int) -> list[str]:
        """Tool names, best first (for measuring recall@k)."""
        return [self.tools[h.metadata["position"]].name for h in self._index.search(query, k=k)]
