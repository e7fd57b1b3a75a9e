"""edgeagent.train: tool-call training data (canonical JSONL, validation, importers, rendering
with loss masks through the one wire format). The trainer lands with the rest of its issue."""
