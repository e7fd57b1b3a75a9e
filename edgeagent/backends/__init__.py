"""Backends (docs/architecture.md): tokenize, evaluate a prompt reusing the KV cache of a shared
prefix, sample under a grammar, stream text. The agent loop does not know which one runs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings. temperature 0 is greedy (the default: tool calls want determinism)."""

    temperature: float = 0.0
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    seed: int = 0


@dataclass
class GenerationStats:
    """Filled in by `Backend.generate` as it runs."""

    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens whose KV cache was reused, not evaluated
    completion_tokens: int = 0
    prompt_eval_s: float = 0.0  # prompt evaluation up to the first sampled token
    decode_s: float = 0.0  # after the first token
    stop_reason: str = ""  # "eos", "length" or "stopped" (the consumer closed the stream)


@runtime_checkable
class Backend(Protocol):
    name: str
    model_path: str
    n_ctx: int

    def tokenize(self, text: str) -> list[int]:
        """Tokens of a rendered prompt (special tokens such as <|im_start|> are parsed)."""
        ...

    def chat_template(self) -> str | None:
        """The model's own Jinja chat template, if its file carries one."""
        ...

    def special_tokens(self) -> tuple[str, str]:
        """(bos, eos) token texts, for chat templates that use them."""
        ...

    def generate(
        self,
        prompt: list[int],
        *,
        grammar: str | None,
        sampling: SamplingParams,
        max_tokens: int,
        stats: GenerationStats,
    ) -> Iterator[str]:
        """Stream the reply's text. The KV cache of the longest prefix shared with the previous
        call is reused; closing the iterator stops generation."""
        ...
