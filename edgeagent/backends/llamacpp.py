"""The default backend: llama.cpp through llama-cpp-python."""

from __future__ import annotations

import codecs
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgeagent.backends import GenerationStats, SamplingParams
from edgeagent.errors import GrammarError, ModelFileError
from edgeagent.models import inspect_gguf

log = logging.getLogger(__name__)


def default_threads() -> int:
    """The CPUs this process may use (llama.cpp's own default counts physical cores only)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS
        return max(1, os.cpu_count() or 1)


class LlamaCppBackend:
    """One llama.cpp model and context. Not thread-safe: one generation at a time."""

    name = "llama.cpp"

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        n_batch: int = 512,
        seed: int = 0,
    ) -> None:
        info = inspect_gguf(model_path)  # refuses a bad file before llama.cpp sees it
        import llama_cpp

        self.model_path = str(model_path)
        self.info = info
        self.n_threads = n_threads or default_threads()
        try:
            self._llm = llama_cpp.Llama(
                model_path=self.model_path,
                n_ctx=n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                n_batch=min(n_batch, n_ctx),
                seed=seed,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelFileError(
                f"llama.cpp could not load {model_path} ({info.architecture}, "
                f"{info.quantization}): {exc}",
                hint="is the architecture supported by this llama.cpp build?",
            ) from None
        self.n_ctx = self._llm.n_ctx()
        self._vocab = self._llm._model.vocab
        self._eog = llama_cpp.llama_vocab_is_eog
        self._grammars: dict[str, Any] = {}
        self._pieces: dict[int, bytes] = {}

    def tokenize(self, text: str) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def chat_template(self) -> str | None:
        return self.info.chat_template

    def special_tokens(self) -> tuple[str, str]:
        model = self._llm._model
        return (
            model.token_get_text(self._llm.token_bos()),
            model.token_get_text(self._llm.token_eos()),
        )

    def piece(self, token: int) -> bytes:
        """A token's bytes (cached: the vocabulary is finite and decoding is per token)."""
        cached = self._pieces.get(token)
        if cached is None:
            import ctypes

            import llama_cpp

            buf = ctypes.create_string_buffer(64)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
            if n < 0:  # the piece is longer than the buffer: -n is its length
                buf = ctypes.create_string_buffer(-n)
                n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
            cached = self._pieces[token] = buf.raw[:n]
        return cached

    def cached_prefix(self, prompt: list[int]) -> int:
        """How many leading tokens of `prompt` are already in the KV cache."""
        shared = 0
        for a, b in zip(self._llm._input_ids[: self._llm.n_tokens], prompt):
            if a != b:
                break
            shared += 1
        return shared

    def _grammar(self, text: str) -> Any:
        from llama_cpp import LlamaGrammar

        if text not in self._grammars:
            self._check_grammar(text)
            self._grammars[text] = LlamaGrammar.from_string(text, verbose=False)
        return self._grammars[text]

    def _check_grammar(self, text: str) -> None:
        """llama.cpp parses grammars lazily, inside sampling; parse once here so that a bad
        grammar is an error with a message rather than a NULL sampler."""
        import llama_cpp

        sampler = llama_cpp.llama_sampler_init_grammar(
            self._vocab, text.encode("utf-8"), b"root"
        )
        if not sampler:
            raise GrammarError("llama.cpp rejected the tool-call grammar", hint="see the log")
        llama_cpp.llama_sampler_free(sampler)

    def generate(
        self,
        prompt: list[int],
        *,
        grammar: str | None,
        sampling: SamplingParams,
        max_tokens: int,
        stats: GenerationStats,
    ) -> Iterator[str]:
        stats.prompt_tokens = len(prompt)
        shared = self.cached_prefix(prompt)
        # llama-cpp-python re-evaluates the last token when the whole prompt is cached.
        stats.cached_tokens = min(shared, len(prompt) - 1)
        compiled = self._grammar(grammar) if grammar else None
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        start = time.perf_counter()
        first_at = 0.0
        stats.stop_reason = "length"
        if sampling.temperature > 0:
            self._llm.set_seed(sampling.seed)
        tokens = self._llm.generate(
            prompt,
            top_k=sampling.top_k,
            top_p=sampling.top_p,
            min_p=sampling.min_p,
            temp=sampling.temperature,
            repeat_penalty=sampling.repeat_penalty,
            grammar=compiled,
        )
        try:
            for token in tokens:
                now = time.perf_counter()
                if not first_at:
                    first_at = now
                    stats.prompt_eval_s = now - start
                if self._eog(self._vocab, token):
                    stats.stop_reason = "eos"
                    break
                stats.completion_tokens += 1
                piece = decoder.decode(self.piece(token))
                if piece:
                    yield piece
                if stats.completion_tokens >= max_tokens:
                    break
        except GeneratorExit:
            stats.stop_reason = "stopped"
            raise
        finally:
            tokens.close()
            if first_at:
                stats.decode_s = time.perf_counter() - first_at
