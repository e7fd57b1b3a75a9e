"""Backends (docs/architecture.md): tokenize, evaluate a prompt reusing the KV cache of a shared
prefix, sample under a grammar, stream text. The agent loop does not know which one runs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
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
    #: under a grammar that admits an answer or a call: begin a call only where the model puts
    #: at least this probability on calling at the first token, else answer (0: as sampled).
    #: Backends that cannot tell (onnxruntime) sample as is.
    call_threshold: float = 0.0
    #: under a grammar, in a reply of several calls: where the next token would go on writing a
    #: copy of an earlier call (edgeagent.wireformat.repeat_rests), the best other token the
    #: grammar admits is taken instead if its logit is within this margin of the chosen one's
    #: (0: off). A copy that is never this close is still written (and dropped by the agent).
    repeated_call_margin: float = 0.0
    #: the text of a calling reply written before this generation (its prompt ends with it:
    #: a continuation, edgeagent.replies.propose_calls): the copy steering counts its calls as
    #: earlier calls of the reply
    continues: str = ""


@dataclass
class GenerationStats:
    """Filled in by `Backend.generate` as it runs."""

    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens whose KV cache was reused, not evaluated
    completion_tokens: int = 0
    prompt_eval_s: float = 0.0  # prompt evaluation up to the first sampled token
    decode_s: float = 0.0  # after the first token
    stop_reason: str = ""  # "eos", "length" or "stopped" (the consumer closed the stream)
    #: set by the caller: record how sure the model was of its first this-many tokens (the
    #: decision to call and the tool's name; edgeagent.confidence). Backends that cannot leave
    #: the two fields below as they are.
    probe_tokens: int = 0
    #: at the first token: the probability, under the grammar, that the reply is a call
    call_mass: float | None = None
    #: (text, probability under the grammar) of each of the first probe_tokens tokens
    probes: list[tuple[str, float]] = field(default_factory=list)
    #: set by the reply strategy: repeated calls it cut from the reply before the caller saw
    #: them (edgeagent.replies.asked_calls)
    calls_dropped: int = 0


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


# Abilities some backends have (llama.cpp has all of them, onnxruntime the first): the agent
# asks `isinstance(backend, Interruptible)` rather than probing for attributes.
@runtime_checkable
class Interruptible(Protocol):
    def interrupt(self) -> None:
        """Stop the generation running now, from another thread."""
        ...

    def clear_interrupt(self) -> None: ...


@runtime_checkable
class AdapterSwitching(Protocol):
    def set_adapters(self, scales: dict[str, float]) -> None:
        """Apply the loaded adapters named here at these scales, and no others."""
        ...


@runtime_checkable
class PromptCaching(Protocol):
    @property
    def cached_tokens(self) -> int:
        """Tokens whose KV cache the current context holds."""
        ...

    def prefill(self, prompt: list[int]) -> None:
        """Evaluate a prompt into the cache without generating."""
        ...

    def warm_start(self, prefix: list[int]) -> None:
        """Start an empty cache from a saved state of this prefix (or save one)."""
        ...


def open_backend(
    model: str | Path | None,
    *,
    n_ctx: int = 2048,
    n_threads: int | None = None,
    adapters: Mapping[str, str | Path] | None = None,
) -> Backend:
    """The backend for a model: an `edgeagent export onnx` folder runs on onnxruntime, anything
    else is a GGUF file for llama.cpp (None: the embedded default model), with its adapters
    loaded by name."""
    from edgeagent.models import is_onnx_folder, resolve_model

    if model is not None and is_onnx_folder(model):
        if adapters:
            raise ValueError("ONNX models run merged: export with --adapter instead")
        from edgeagent.backends.onnx import OnnxBackend

        return OnnxBackend(model, n_ctx=n_ctx, n_threads=n_threads)
    from edgeagent.backends.llamacpp import LlamaCppBackend

    return LlamaCppBackend(
        resolve_model(model), n_ctx=n_ctx, n_threads=n_threads, adapters=dict(adapters or {})
    )
