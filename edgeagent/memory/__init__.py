"""edgeagent.memory: a local memory index in one SQLite file (keyword + vector, fused)."""

from edgeagent.memory.embedders import Embedder, LlamaEmbedder
from edgeagent.memory.store import Hit, MemoryFileError, MemoryIndex

__all__ = ["Embedder", "Hit", "LlamaEmbedder", "MemoryFileError", "MemoryIndex"]
