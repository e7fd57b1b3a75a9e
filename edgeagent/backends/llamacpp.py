"""The default backend: llama.cpp through llama-cpp-python."""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import logging
import os
import struct
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeagent.backends import GenerationStats, SamplingParams
from edgeagent.errors import GrammarError, Interrupted, ModelFileError
from edgeagent.models import inspect_gguf
from edgeagent.paths import publishing
from edgeagent.wireformat import CopyRests, repeat_rests

log = logging.getLogger(__name__)

#: A shifted run shorter than this is not worth a context shift; it is evaluated again.
MIN_SHIFT_TOKENS = 16


def default_threads() -> int:
    """The CPUs this process may use (llama.cpp's own default counts physical cores only)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS
        return max(1, os.cpu_count() or 1)


#: glibc's mallopt parameter for the mmap threshold (malloc.h)
M_MMAP_THRESHOLD = -3


def fix_mmap_threshold(threshold: int = 128 * 1024) -> bool:
    """Pin glibc's mmap threshold at its initial value (128 KiB). By default glibc raises it
    each time a large mmapped block is freed, after which blocks up to that size come from the
    heap and stay in it after free: loading a model and its adapters then left 21 MiB more
    resident in some runs than in others, at random (the same bundle peaked at 657 or 679 MiB).
    Pinned, large blocks always go back to the system when freed, and the peak is the same every
    run, and lower (617 MiB; docs/benchmarks.md, memory planner). Returns whether it was set
    (glibc only; other C libraries are left as they are)."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc's; musl and macOS have none
    except (OSError, AttributeError):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))


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
        adapters: dict[str, str | Path] | None = None,
        max_contexts: int = 2,
    ) -> None:
        info = inspect_gguf(model_path)  # refuses a bad file before llama.cpp sees it
        import llama_cpp

        fix_mmap_threshold()  # before the model and its buffers are allocated

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
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self._grammars: OrderedDict[str, _Grammar] = OrderedDict()  # the last _GRAMMARS used
        self._starts: Any = None  # tokens that begin with "<", for the confidence probe
        self._pieces: dict[int, bytes] = {}
        memory = llama_cpp.llama_get_memory(self._llm._ctx.ctx)
        self._can_shift = bool(memory) and bool(llama_cpp.llama_memory_can_shift(memory))
        self.shifts = 0  # context shifts done (evictions absorbed without re-evaluation)
        self._interrupted = False
        # llama.cpp's abort callback, set while a prompt is evaluated so that an interrupt stops
        # it between graph nodes. Not during decoding: a Python callback at every node costs
        # 17 % of the per-token time there, and the flag is checked between tokens anyway.
        self._abort = llama_cpp.ggml_abort_callback(lambda _: self._interrupted)
        self._no_abort = llama_cpp.ggml_abort_callback()  # NULL
        self._set_abort = llama_cpp.llama_cpp._lib.llama_set_abort_callback
        self._set_abort.argtypes = [ctypes.c_void_p, llama_cpp.ggml_abort_callback, ctypes.c_void_p]
        self._set_abort.restype = None
        self._adapters: dict[str, Any] = {}
        self._adapter_paths: dict[str, Path] = {}
        self._scales: dict[str, float] = {}
        # One llama.cpp context per adapter setting, on the same model weights: a LoRA changes
        # the keys and values, so a context's KV cache is valid only under the adapters it was
        # computed with. The agent switches the shipped adapter on for calls and off for answers
        # every turn; with one context each switch threw the cache away (5-8 s a turn), with one
        # per setting each keeps its own (benchmarks/bench_chat_latency.py). Each context costs
        # its KV cache and compute buffers (the planner counts them); past max_contexts the
        # least recently used one is taken over and its cache cleared.
        self.max_contexts = max(1, max_contexts)
        self._parked: dict[tuple[tuple[str, float], ...], _Context] = {}
        for name, path in (adapters or {}).items():
            self.load_adapter(name, path)
        if len(self._adapters) == 1:  # one adapter: on; several: the caller picks
            self.set_adapters({name: 1.0 for name in self._adapters})

    def interrupt(self) -> None:
        """Stop the generation running now (from another thread), inside the prompt's
        evaluation or at the next token: it raises Interrupted, and so does every generation
        until clear_interrupt()."""
        self._interrupted = True

    def clear_interrupt(self) -> None:
        self._interrupted = False

    def load_adapter(self, name: str, path: str | Path) -> None:
        """Load a GGUF LoRA adapter (inactive until set_adapters gives it a scale)."""
        import llama_cpp

        check_adapter(path, self.info.architecture)
        ptr = llama_cpp.llama_adapter_lora_init(self._llm._model.model, str(path).encode())
        if not ptr:
            raise ModelFileError(f"llama.cpp could not load the adapter {path} on this model")
        self._adapters[name] = ptr
        self._adapter_paths[name] = Path(path)

    @property
    def adapters(self) -> dict[str, float]:
        """The active adapters and their scales."""
        return dict(self._scales)

    @property
    def loaded_adapters(self) -> list[str]:
        """The names of the loaded adapters, active or not."""
        return list(self._adapters)

    def set_adapters(self, scales: dict[str, float]) -> None:
        """Apply these adapters at these scales (others off), in the context that holds this
        setting's KV cache: switching back and forth keeps both caches."""
        scales = {k: v for k, v in scales.items() if v}
        unknown = set(scales) - set(self._adapters)
        if unknown:
            raise KeyError(
                f"no adapter named {sorted(unknown)[0]!r}; loaded: {sorted(self._adapters)}"
            )
        if scales == self._scales:
            return
        llm, key = self._llm, _key(scales)
        current = _Context(llm._ctx, llm.input_ids, llm.n_tokens)
        if key in self._parked:
            target = self._parked.pop(key)
        elif llm.n_tokens == 0:  # the current context holds nothing: it takes the new setting
            target = self._apply(current, scales)
        elif len(self._parked) + 1 < self.max_contexts:
            import llama_cpp
            import numpy as np

            fresh = llama_cpp._internals.LlamaContext(
                model=llm._model, params=llm.context_params, verbose=False
            )
            target = self._apply(_Context(fresh, np.zeros_like(llm.input_ids), 0), scales)
        else:  # take over the least recently used context (or this one, if it is the only one)
            oldest = next(iter(self._parked), None)
            target = self._apply(self._parked.pop(oldest) if oldest else current, scales)
        if target.ctx is not current.ctx:
            self._parked[_key(self._scales)] = current
        llm._ctx, llm.input_ids, llm.n_tokens = target.ctx, target.input_ids, target.n_tokens
        self._scales = scales

    def _apply(self, context: _Context, scales: dict[str, float]) -> _Context:
        """Set a context's adapters; its cache (computed under others) is cleared."""
        import llama_cpp

        n = len(scales)
        ptrs = (llama_cpp.llama_adapter_lora_p_ctypes * n)(*(self._adapters[k] for k in scales))
        values = (ctypes.c_float * n)(*scales.values())
        if llama_cpp.llama_set_adapters_lora(context.ctx.ctx, ptrs, n, values) != 0:
            raise RuntimeError("llama.cpp refused the adapter set")
        context.ctx.kv_cache_clear()
        return _Context(context.ctx, context.input_ids, 0)

    @property
    def cached_tokens(self) -> int:
        """Tokens the KV cache of the context in use holds."""
        return int(self._llm.n_tokens)

    @property
    def contexts(self) -> int:
        """llama.cpp contexts this backend holds (one per adapter setting used, at most
        max_contexts)."""
        return 1 + len(self._parked)

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
            import llama_cpp

            buf = ctypes.create_string_buffer(64)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
            if n < 0:  # the piece is longer than the buffer: -n is its length
                buf = ctypes.create_string_buffer(-n)
                n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
            cached = self._pieces[token] = buf.raw[:n]
        return cached

    def reuse_cache(self, prompt: list[int]) -> int:
        """Make the KV cache hold the longest possible start of `prompt`; return its length.

        Beyond the shared prefix, when the prompt continues with tokens the cache holds further
        on (the window evicted the turns in between), drop the evicted range and shift the rest
        back (llama.cpp's context shift: RoPE positions are re-rotated), instead of evaluating
        it all again."""
        llm = self._llm
        cached = list(llm._input_ids[: llm.n_tokens])
        shared = _run_length(cached, 0, prompt, 0)
        if shared >= len(prompt) - 1 or shared >= len(cached) or not self._can_shift:
            return shared
        want = prompt[shared]
        best_at, best_len = 0, 0
        starts = [i for i in range(shared + 1, len(cached)) if cached[i] == want][:64]
        for at in starts:
            n = _run_length(cached, at, prompt, shared)
            if n > best_len:
                best_at, best_len = at, n
        if best_len < MIN_SHIFT_TOKENS:
            return shared
        ctx = llm._ctx
        ctx.kv_cache_seq_rm(-1, shared, best_at)
        ctx.kv_cache_seq_shift(0, best_at, best_at + best_len, shared - best_at)
        ctx.kv_cache_seq_rm(-1, shared + best_len, -1)
        llm.input_ids[shared : shared + best_len] = cached[best_at : best_at + best_len]
        llm.n_tokens = shared + best_len
        self.shifts += 1
        log.debug("context shift: dropped %d tokens, kept %d", best_at - shared, best_len)
        return shared + best_len

    def _grammar(self, text: str) -> _Grammar:
        if text not in self._grammars:
            self._grammars[text] = _Grammar(self._vocab, text, self._n_vocab)
            if len(self._grammars) > _GRAMMARS:  # a proposal's grammar is the request's own
                self._grammars.popitem(last=False)
        self._grammars.move_to_end(text)
        grammar = self._grammars[text]
        grammar.reset()
        return grammar

    def _eval(self, tokens: list[int]) -> None:
        """llm.eval, which an interrupt aborts inside llama_decode (the tokens of the batches
        done stay cached; llm.eval drops the rest on its next call)."""
        if self._interrupted:
            raise Interrupted("the generation was interrupted")
        prompt = len(tokens) > 1
        if prompt:
            self._set_abort(self._llm._ctx.ctx, self._abort, None)
        try:
            self._llm.eval(tokens)
        except RuntimeError:
            if self._interrupted:
                raise Interrupted("the generation was interrupted") from None
            raise
        finally:
            if prompt:
                self._set_abort(self._llm._ctx.ctx, self._no_abort, None)

    def prefill(self, prompt: list[int]) -> None:
        """Evaluate `prompt` into the KV cache (reusing what it shares), generating nothing: a
        later prompt that extends it starts from there."""
        reuse = self.reuse_cache(prompt)
        if reuse < len(prompt):
            self._llm.n_tokens = reuse
            self._eval(prompt[reuse:])

    def warm_start(self, prefix: list[int]) -> None:
        """Start an empty cache from a saved state of `prefix` (a session's system prompt and
        tool schemas, the same for every session with these tools): loaded when this model,
        adapter setting and context size saved one, else evaluated and saved for next time.
        Does nothing when the cache holds anything already."""
        if self._llm.n_tokens or not prefix or len(prefix) >= self.n_ctx:
            return
        import llama_cpp

        path = self._state_path(prefix)
        ctx = self._llm._ctx.ctx
        if path.exists():
            buf = (llama_cpp.llama_token * len(prefix))()
            count = ctypes.c_size_t(0)
            ok = llama_cpp.llama_state_seq_load_file(
                ctx, str(path).encode(), 0, buf, len(prefix), ctypes.byref(count)
            )
            if ok and list(buf[: count.value]) == prefix:
                self._llm.input_ids[: len(prefix)] = prefix
                self._llm.n_tokens = len(prefix)
                return
            self._llm._ctx.kv_cache_clear()  # unreadable or another prefix: evaluate it again
            log.debug("prompt state %s not used", path)
        self.prefill(prefix)
        tokens = (llama_cpp.llama_token * len(prefix))(*prefix)
        # whole or absent: a reader never sees half a state; one llama.cpp cannot save is skipped
        with contextlib.suppress(_StateNotSaved), publishing(path) as tmp:
            if not llama_cpp.llama_state_seq_save_file(ctx, str(tmp).encode(), 0, tokens,
                                                       len(prefix)):  # fmt: skip
                raise _StateNotSaved

    def _state_path(self, prefix: list[int]) -> Path:
        """Where a prefix's state lives: named by everything the cache depends on (the model
        and adapter files, the scales, the context size, llama.cpp's version, the tokens)."""
        import hashlib

        import llama_cpp

        from edgeagent.paths import home

        digest = hashlib.sha256()
        files = [Path(self.model_path), *(self._adapter_paths[k] for k in sorted(self._scales))]
        for f in files:
            stat = f.stat()
            digest.update(f"{f.resolve()}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        digest.update(repr((sorted(self._scales.items()), self.n_ctx)).encode())
        digest.update(llama_cpp.__version__.encode())
        digest.update(b"".join(t.to_bytes(4, "little") for t in prefix))
        return home() / "cache" / "prompt-state" / f"{digest.hexdigest()[:32]}.state"

    def check_grammar(self, text: str) -> None:
        """Parse a grammar now (llama.cpp would otherwise parse it inside sampling)."""
        self._grammar(text)

    def generate(
        self,
        prompt: list[int],
        *,
        grammar: str | None,
        sampling: SamplingParams,
        max_tokens: int,
        stats: GenerationStats,
    ) -> Iterator[str]:
        import llama_cpp
        import numpy as np

        llm = self._llm
        stats.prompt_tokens = len(prompt)
        # Reuse the KV cache of the shared prefix (and of a shifted middle, after an eviction);
        # at least the last prompt token is evaluated again so that there are logits to sample
        # from. llm.eval drops the cache after n_tokens.
        reuse = min(self.reuse_cache(prompt), len(prompt) - 1)
        stats.cached_tokens = reuse
        matcher = self._grammar(grammar) if grammar else None
        choose = _Chooser(sampling, self._n_vocab)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        ctx = llm._ctx.ctx
        start = time.perf_counter()
        first_at = 0.0
        # the reply's text, kept only for the copy steering (SamplingParams.repeated_call_margin)
        steer = matcher is not None and sampling.repeated_call_margin > 0
        text = sampling.continues if steer else ""
        stats.stop_reason = "length"
        if stats.probe_tokens:
            stats.call_mass, stats.probes = None, []
        try:
            llm.n_tokens = reuse
            self._eval(prompt[reuse:])
            while True:
                logits = np.ctypeslib.as_array(
                    llama_cpp.llama_get_logits_ith(ctx, -1), shape=(self._n_vocab,)
                )
                token = choose(logits, llm.input_ids[: llm.n_tokens])
                if matcher is not None and not matcher.allows(token, logits):
                    token = choose(matcher.mask(logits), llm.input_ids[: llm.n_tokens])
                if matcher is not None and sampling.call_threshold and not stats.completion_tokens:
                    token = self._hold_back_call(logits, matcher, token, sampling, choose)
                if steer and (rests := repeat_rests(text)):
                    token = self._leave_copy(logits, matcher, token, rests, sampling)
                if stats.completion_tokens < stats.probe_tokens and (
                    not stats.probes or stats.probes[0][0].startswith("<")
                ):  # an answer's confidence is its first token's; a call's, up to its name
                    self._probe(logits, matcher, token, stats)
                if not first_at:
                    first_at = time.perf_counter()
                    stats.prompt_eval_s = first_at - start
                if self._eog(self._vocab, token):
                    stats.stop_reason = "eos"
                    break
                if matcher is not None:
                    matcher.accept(token)
                stats.completion_tokens += 1
                piece = decoder.decode(self.piece(token))
                if piece:
                    if steer:
                        text += piece
                    yield piece
                if stats.completion_tokens >= max_tokens:
                    break
                self._eval([token])
        except GeneratorExit:
            stats.stop_reason = "stopped"
            raise
        finally:
            if first_at:
                stats.decode_s = time.perf_counter() - first_at

    def _hold_back_call(
        self, logits: Any, matcher: Any, token: int, sampling: SamplingParams, choose: Any
    ) -> int:
        """At the first token: an answer instead of a call the model is not sure enough of
        (SamplingParams.call_threshold). A grammar that admits only calls is left as it is."""
        import numpy as np

        starts = self._call_starts()
        if not starts[token]:
            return token
        allowed = matcher.mask(logits)
        if _call_mass(allowed, starts) >= sampling.call_threshold:
            return token
        allowed[starts] = -np.inf
        if not np.isfinite(allowed).any():  # calls only (tool_choice required)
            return token
        return int(choose(allowed, self._llm.input_ids[: self._llm.n_tokens]))

    def _leave_copy(
        self, logits: Any, matcher: Any, token: int, rests: CopyRests, sampling: SamplingParams
    ) -> int:
        """A token that leaves the copy of an earlier call being written (`rests`: the texts that
        would complete one), if the grammar admits one within the margin of the chosen token."""
        import numpy as np

        def piece(t: int) -> str:
            return self.piece(t).decode("utf-8", "replace")

        if not rests.continued_by(piece(token)):
            return token
        allowed = matcher.mask(logits)
        margin = sampling.repeated_call_margin  # inf: any token the grammar admits
        top = np.argpartition(-allowed, _ALTERNATIVES)[:_ALTERNATIVES]
        for t in top[np.argsort(-allowed[top])]:
            if not np.isfinite(allowed[t]) or logits[token] - allowed[t] > margin:
                break  # past what the grammar admits, or too far below the copy
            if rests.left_by(piece(int(t))):
                return int(t)
        return token

    def _probe(self, logits: Any, matcher: Any, token: int, stats: GenerationStats) -> None:
        """How sure the model is of this token, under the grammar (edgeagent.confidence): the
        chosen token's probability and, at the first token, the probability of a call."""

        allowed = matcher.mask(logits) if matcher is not None else logits
        probs = _softmax(allowed)
        if not stats.probes:
            stats.call_mass = float(probs[self._call_starts()].sum())
        stats.probes.append((self.piece(token).decode("utf-8", "replace"), float(probs[token])))

    def _call_starts(self) -> Any:
        """Which tokens begin with '<' (under the grammar, the start of a call)."""
        if self._starts is None:
            import numpy as np

            self._starts = np.array(
                [self.piece(t).startswith(b"<") for t in range(self._n_vocab)], dtype=bool
            )
        return self._starts


# How many compiled grammars a backend keeps (each holds a vocabulary-sized buffer, 0.6 MB).
_GRAMMARS = 32
# How many of the best tokens `_leave_copy` considers in place of one that copies a call.
_ALTERNATIVES = 16


class _StateNotSaved(Exception):
    """llama.cpp could not save a prompt state (nothing is published)."""


@dataclass
class _Context:
    """A llama.cpp context and the tokens its KV cache holds (Llama keeps these for the context
    in use; the others wait here)."""

    ctx: Any  # llama_cpp._internals.LlamaContext
    input_ids: Any  # numpy array of n_ctx token ids
    n_tokens: int


def _key(scales: dict[str, float]) -> tuple[tuple[str, float], ...]:
    return tuple(sorted(scales.items()))


def check_adapter(path: str | Path, architecture: str | None) -> None:
    """A whole GGUF LoRA adapter for this architecture (None: any), refused before llama.cpp
    reads it otherwise."""
    from edgeagent.models import read_gguf_header

    try:
        header = read_gguf_header(Path(path))
    except (OSError, ValueError, struct.error, IndexError, UnicodeDecodeError, OverflowError) as e:
        raise ModelFileError(f"{path}: not a readable GGUF adapter ({e})") from None
    size = Path(path).stat().st_size
    if header.data_end > size:
        raise ModelFileError(
            f"{path} is truncated: its tensors need {header.data_end:,} bytes, the file has "
            f"{size:,}",
            hint="export the adapter again (edgeagent export lora)",
        )
    kind = header.fields.get("general.type"), header.fields.get("adapter.type")
    if kind != ("adapter", "lora"):
        raise ModelFileError(
            f"{path}: not a GGUF LoRA adapter (general.type, adapter.type = {kind})",
            hint="export a PEFT adapter with: edgeagent export lora ADAPTER_DIR",
        )
    arch = header.fields.get("general.architecture")
    if architecture is not None and arch != architecture:
        raise ModelFileError(f"{path}: an adapter for {arch}, but the model is {architecture}")


def _run_length(a: list[int], i: int, b: list[int], j: int) -> int:
    """How many tokens a[i:] and b[j:] share from their starts."""
    n = 0
    while i + n < len(a) and j + n < len(b) and a[i + n] == b[j + n]:
        n += 1
    return n


class _Grammar:
    """A llama.cpp grammar sampler used the way llama.cpp's own common sampler uses it: the
    token chosen without the grammar is checked alone, and only when the grammar rejects it is
    the grammar applied to the whole vocabulary. Applying it to all 49k candidates on every
    step (what llama-cpp-python's sampler chain does) cost 1.34x the decode time of the 135M
    model; the check costs a few microseconds (benchmarks/bench_runtime.py)."""

    def __init__(self, vocab: Any, text: str, n_vocab: int) -> None:
        import llama_cpp
        import numpy as np

        self._lib = llama_cpp
        self._ptr = llama_cpp.llama_sampler_init_grammar(vocab, text.encode("utf-8"), b"root")
        if not self._ptr:
            raise GrammarError("llama.cpp rejected the tool-call grammar")
        # One candidate, for the check.
        self._one = (llama_cpp.llama_token_data * 1)()
        self._one_array = llama_cpp.llama_token_data_array(
            data=self._one, size=1, selected=-1, sorted=False
        )
        # The whole vocabulary, for the fallback; a numpy view over the same memory.
        self._all = (llama_cpp.llama_token_data * n_vocab)()
        self._all_array = llama_cpp.llama_token_data_array(
            data=self._all, size=n_vocab, selected=-1, sorted=False
        )
        dtype = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)
        self._view = np.ctypeslib.as_array(self._all).view(dtype).reshape(n_vocab)
        self._ids = np.arange(n_vocab, dtype=np.intc)
        self._byref = ctypes.byref

    def reset(self) -> None:
        self._lib.llama_sampler_reset(self._ptr)

    def allows(self, token: int, logits: Any) -> bool:
        candidate = self._one[0]
        candidate.id, candidate.logit, candidate.p = token, float(logits[token]), 0.0  # type: ignore[assignment]
        self._one_array.size = 1
        self._lib.llama_sampler_apply(self._ptr, self._byref(self._one_array))
        return bool(self._one[0].logit != float("-inf"))

    def mask(self, logits: Any) -> Any:
        """The logits with every token the grammar rejects set to -inf."""
        self._view["id"] = self._ids
        self._view["logit"] = logits
        self._all_array.size = len(self._ids)
        self._lib.llama_sampler_apply(self._ptr, self._byref(self._all_array))
        return self._view["logit"].copy()

    def accept(self, token: int) -> None:
        self._lib.llama_sampler_accept(self._ptr, token)

    def __del__(self) -> None:
        if getattr(self, "_ptr", None):
            self._lib.llama_sampler_free(self._ptr)
            self._ptr = None


class _Chooser:
    """Picks the next token from logits: greedy at temperature 0, else top-k / top-p / min-p
    sampling with a seeded generator (numpy, on one vector per token)."""

    def __init__(self, sampling: SamplingParams, n_vocab: int) -> None:
        import numpy as np

        self.s = sampling
        self._np = np
        self._rng = np.random.default_rng(sampling.seed)

    def __call__(self, logits: Any, history: Any) -> int:
        np = self._np
        s = self.s
        if s.repeat_penalty != 1.0 and len(history):
            logits = logits.copy()
            recent = np.unique(history[-64:])
            vals = logits[recent]
            logits[recent] = np.where(vals > 0, vals / s.repeat_penalty, vals * s.repeat_penalty)
        if s.temperature <= 0:
            return int(np.argmax(logits))
        scaled = logits.astype(np.float64) / s.temperature
        order = np.argsort(-scaled)
        if s.top_k > 0:
            order = order[: s.top_k]
        probs = np.exp(scaled[order] - scaled[order[0]])
        probs /= probs.sum()
        keep = np.ones(len(order), dtype=bool)
        if s.top_p < 1.0:
            keep &= np.concatenate(([True], np.cumsum(probs)[:-1] < s.top_p))
        if s.min_p > 0:
            keep &= probs >= s.min_p * probs[0]
        keep &= np.isfinite(scaled[order])
        probs = np.where(keep, probs, 0.0)
        return int(order[self._rng.choice(len(order), p=probs / probs.sum())])


def _softmax(logits: Any) -> Any:
    """Probabilities over the tokens whose logits are finite (the grammar's -inf are 0)."""
    import numpy as np

    finite = np.isfinite(logits)
    shifted = np.where(finite, logits - np.max(logits[finite]), -np.inf)
    probs = np.exp(shifted.astype(np.float64))
    return probs / probs.sum()


def _call_mass(allowed: Any, starts: Any) -> float:
    """The probability of beginning a call, from logits already masked by the grammar."""
    return float(_softmax(allowed)[starts].sum())
