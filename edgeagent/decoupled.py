"""DualTune's decoupled tool calls in the runtime: a selector adapter picks call-or-answer and the
tool (phase 1, a name-enum grammar), then that tool's argument adapter writes the arguments
(phase 2, the tool's schema grammar). Adapters are GGUF LoRA files on the llama.cpp backend,
switched by scale between the phases; the reply is the same canonical one-call text as always.

A folder made by `edgeagent export lora` from `edgeagent train --decoupled` output holds
`decoupled.json` ({"selector": "selector.gguf", "arguments": {tool: "arguments/tool.gguf"}})
and the files it names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeagent.backends import GenerationStats, SamplingParams
from edgeagent.errors import EdgeAgentError
from edgeagent.tools import Tool
from edgeagent.wireformat import (
    ARGUMENTS_SEP,
    build_arguments_grammar,
    build_selector_grammar,
    reply_kind,
    selected_name,
)

SELECTOR = "selector"
# The prompt of phase 2 stops before the space: the model writes ` {` as one token, as it
# learned to (BPE glues the space to the brace).


def arguments_adapter(tool: str) -> str:
    """The name a tool's argument adapter is loaded under, in llama.cpp and in peft alike."""
    return f"arguments_{tool}"


@dataclass(frozen=True)
class DecoupledAdapters:
    selector: Path
    arguments: dict[str, Path]

    @classmethod
    def load(cls, folder: str | Path) -> DecoupledAdapters:
        folder = Path(folder)
        try:
            index = json.loads((folder / "decoupled.json").read_text())
            selector = folder / index["selector"]
            arguments = {tool: folder / p for tool, p in index["arguments"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise EdgeAgentError(
                f"{folder}: not a folder of decoupled GGUF adapters ({exc})",
                hint="edgeagent export lora DECOUPLED_ADAPTER_DIR --out FOLDER makes one",
            ) from None
        for path in [selector, *arguments.values()]:
            if not path.resolve().is_relative_to(folder.resolve()) or path.suffix != ".gguf":
                raise EdgeAgentError(f"{folder}/decoupled.json names {path}: not a .gguf inside")
        return cls(selector, arguments)

    def backend_adapters(self) -> dict[str, Path]:
        return {SELECTOR: self.selector} | {
            arguments_adapter(t): p for t, p in self.arguments.items()
        }


def two_phase(
    backend: Any,
    adapters: DecoupledAdapters,
    prompt_text: str,
    prompt: list[int],
    tools: list[Tool],
    *,
    allow_answer: bool,
    sampling: SamplingParams,
    max_tokens: int,
    max_string_chars: int,
    stats: GenerationStats,
) -> Iterator[str]:
    """Stream one reply: an answer, or exactly one call. The argument phase starts from a
    cleared KV cache (the cache was computed under the selector's weights)."""
    backend.set_adapters({SELECTOR: 1.0})
    grammar = build_selector_grammar(tools, allow_answer=allow_answer)
    text = ""
    for piece in backend.generate(
        prompt, grammar=grammar, sampling=sampling, max_tokens=max_tokens, stats=stats
    ):
        text += piece
        yield piece
    if reply_kind(text) != "call" or stats.stop_reason == "length":
        return  # an answer, or a name cut off by the token budget
    name = selected_name(text)
    tool = next(t for t in tools if t.name == name)
    yield ARGUMENTS_SEP
    backend.set_adapters({arguments_adapter(name): 1.0} if name in adapters.arguments else {})
    second = GenerationStats()
    try:
        yield from backend.generate(
            backend.tokenize(prompt_text + text + ARGUMENTS_SEP),
            grammar=build_arguments_grammar(tool, max_string_chars),
            sampling=sampling,
            max_tokens=max(1, max_tokens - stats.completion_tokens),
            stats=second,
        )
    finally:  # the agent accounts one generation: both phases in one record
        stats.prompt_tokens += second.prompt_tokens
        stats.cached_tokens += second.cached_tokens
        stats.completion_tokens += second.completion_tokens
        stats.prompt_eval_s += second.prompt_eval_s
        stats.decode_s += second.decode_s
        stats.stop_reason = second.stop_reason
