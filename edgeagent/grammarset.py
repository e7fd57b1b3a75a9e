"""The tool-call grammars of one set of tools: what the agent, the bundle builder and the
evaluator constrain replies with.

A grammar is keyed by (answer allowed, calls allowed, names of the tools offered) and built by
the wire format on first use, or taken precompiled (a bundle's grammars.json), so a device
without llama-cpp-python's JSON-Schema converter runs the same constrained calls.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgeagent.grammar import DEFAULT_MAX_STRING_CHARS
from edgeagent.tools import Tool
from edgeagent.wireformat import DEFAULT_MAX_CALLS, build_grammar

#: (answer allowed, calls allowed, names of the tools offered)
GrammarKey = tuple[bool, bool, tuple[str, ...]]

# pruning offers many tool sets: the cache is cleared past this many grammars
_CACHE_LIMIT = 64


class GrammarSet:
    def __init__(
        self,
        max_calls: int = DEFAULT_MAX_CALLS,
        max_string_chars: int = DEFAULT_MAX_STRING_CHARS,
        precompiled: dict[GrammarKey, str] | None = None,
    ) -> None:
        self.max_calls = max_calls
        self.max_string_chars = max_string_chars
        self._precompiled = dict(precompiled or {})
        self._built: dict[GrammarKey, str] = {}

    def get(self, allow_answer: bool, allow_calls: bool, tools: Sequence[Tool]) -> str:
        key = (allow_answer, allow_calls, tuple(t.name for t in tools))
        if key in self._precompiled:
            return self._precompiled[key]
        if key not in self._built:
            if len(self._built) > _CACHE_LIMIT:
                self._built.clear()
            self._built[key] = build_grammar(
                tools,
                allow_answer=allow_answer,
                allow_calls=allow_calls,
                max_calls=self.max_calls,
                max_string_chars=self.max_string_chars,
            )
        return self._built[key]

    def precompile(self, tools: Sequence[Tool]) -> dict[str, Any]:
        """The grammars an agent with all these tools uses (answer or calls, calls only,
        answer only; and each tool alone, which Agent checks at start), as grammars.json."""
        combos = [(list(tools), kinds) for kinds in ((True, True), (False, True), (True, False))]
        combos += [([t], (True, True)) for t in tools]
        entries = [
            {
                "answer": answer,
                "calls": calls,
                "tools": [t.name for t in offered],
                "gbnf": self.get(answer, calls, offered),
            }
            for offered, (answer, calls) in combos
        ]
        return {
            "max_calls": self.max_calls,
            "max_string_chars": self.max_string_chars,
            "fingerprint": fingerprint(),
            "grammars": entries,
        }


def read_precompiled(data: dict[str, Any]) -> dict[GrammarKey, str]:
    """grammars.json's grammars by key; empty when another edgeagent's grammar code wrote them
    and this machine can build them itself (a device without the converter uses them).
    Raises KeyError, TypeError or ValueError on a malformed file."""
    from edgeagent.grammar import converter_available

    if data.get("fingerprint") != fingerprint() and converter_available():
        return {}
    return {
        (bool(g["answer"]), bool(g["calls"]), tuple(g["tools"])): str(g["gbnf"])
        for g in data["grammars"]
    }


def fingerprint() -> str:
    """A digest of the code that writes grammars (the wire format and the schema converter's
    fixes): grammars written by other code are not taken for this code's."""
    digest = hashlib.sha256()
    for module in ("wireformat.py", "grammar.py"):
        digest.update((Path(__file__).parent / module).read_bytes())
    return digest.hexdigest()[:16]
