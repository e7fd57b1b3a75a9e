"""The onnxruntime backend: an ONNX decoder exported by `edgeagent export onnx`, the HF tokenizer
beside it, and grammar-constrained sampling with llguidance.

Two graphs run here. onnxruntime-genai's (a folder with `genai_config.json`, what the export
writes) runs in its generator, whose KV cache stays in one buffer of n_ctx tokens: a token is
appended in place and going back to a shared prefix is a rewind. optimum's graph (older
exports, and int8-dynamic) runs in a plain onnxruntime session with the KV cache in numpy arrays.
Either way this module chooses every token itself, from the logits, so sampling and the
grammar are the same code on both.

llguidance takes the same GBNF grammars llama.cpp takes (edgeagent.grammar builds them) and
gives a token mask per step. As in the llama.cpp backend, the token chosen without the grammar
is checked alone first, and the whole-vocabulary mask is computed only when it is rejected.
The KV cache of the longest prefix shared with the previous call is reused (sliced), so a
multi-turn conversation does not evaluate its history again.
"""

from __future__ import annotations

import codecs
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgeagent.backends import GenerationStats, SamplingParams
from edgeagent.backends.llamacpp import _Chooser, _run_length, default_threads
from edgeagent.errors import ContextOverflowError, GrammarError, Interrupted, ModelFileError
from edgeagent.models import GENAI_PREFILL_CHUNK, ONNX_MODEL_FILE, ONNX_PREFILL_CHUNK

MODEL_FILE = ONNX_MODEL_FILE
GENAI_CONFIG = "genai_config.json"  # onnxruntime-genai's model builder wrote the folder


class OnnxModel:
    """One onnxruntime session over an optimum decoder; `forward` runs tokens after a past."""

    def __init__(self, folder: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        folder = Path(folder)
        for name in (MODEL_FILE, "config.json"):
            if not (folder / name).exists():
                raise ModelFileError(
                    f"{folder} is not an ONNX model folder ({name} is missing)",
                    hint="make one with: edgeagent export onnx --out DIR",
                )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelFileError(
                f"{folder / MODEL_FILE}: onnxruntime cannot load it ({exc})"
            ) from None
        config = json.loads((folder / "config.json").read_text())
        n_head = int(config["num_attention_heads"])
        self.n_kv = int(config.get("num_key_value_heads", n_head))
        self.head_dim = int(config.get("head_dim") or config["hidden_size"] // n_head)
        inputs = {i.name: i for i in self.session.get_inputs()}
        self.past_names = [n for n in inputs if n.startswith("past_key_values.")]
        self.has_positions = "position_ids" in inputs
        kind = inputs[self.past_names[0]].type if self.past_names else "tensor(float)"
        self.dtype = np.float16 if "float16" in kind else np.float32
        self.output_names = [o.name for o in self.session.get_outputs()]

    def forward(
        self, ids: list[int], past: dict[str, np.ndarray] | None, start: int = 0
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(logits [1, len(ids), vocab], the new past) for `ids` at positions start.."""
        total = start + len(ids)
        feed: dict[str, np.ndarray] = {
            "input_ids": np.array([ids], dtype=np.int64),
            "attention_mask": np.ones((1, total), dtype=np.int64),
        }
        if self.has_positions:
            feed["position_ids"] = np.arange(start, total, dtype=np.int64)[None]
        empty = np.zeros((1, self.n_kv, 0, self.head_dim), dtype=self.dtype)
        for name in self.past_names:
            feed[name] = past[name] if past else empty
        outputs = self.session.run(None, feed)
        present = {}
        for name, value in zip(self.output_names[1:], outputs[1:], strict=True):
            present[name.replace("present.", "past_key_values.", 1)] = value
        return outputs[0], present


class PastDecoder:
    """optimum's graph with its KV cache held as numpy arrays between calls."""

    chunk = ONNX_PREFILL_CHUNK  # prompt tokens a pass

    def __init__(self, model: OnnxModel) -> None:
        self.model = model
        self.past: dict[str, np.ndarray] | None = None
        self.length = 0  # tokens whose keys/values `past` holds

    def keep(self, n: int) -> None:
        """Drop the cache after its first n tokens."""
        self.past = {k: v[:, :, :n] for k, v in self.past.items()} if n and self.past else None
        self.length = n if self.past is not None else 0

    def feed(self, ids: list[int]) -> np.ndarray:
        """Run `ids` after what is kept; the logits at the last of them ([vocab])."""
        logits, self.past = self.model.forward(ids, self.past, start=self.length)
        self.length += len(ids)
        return logits[0, -1]


class GenAIDecoder:
    """onnxruntime-genai's generator over its model builder's graph (fused attention, the KV
    cache in place). Tokens are appended and rewound here; none is chosen by the generator."""

    chunk = GENAI_PREFILL_CHUNK

    def __init__(self, folder: Path, n_ctx: int, threads: int | None = None) -> None:
        import onnxruntime_genai as og

        for name in (MODEL_FILE, GENAI_CONFIG):
            if not (folder / name).exists():
                raise ModelFileError(
                    f"{folder} is not an ONNX model folder ({name} is missing)",
                    hint="make one with: edgeagent export onnx --out DIR",
                )
        config = og.Config(str(folder))
        session = {"intra_op_num_threads": threads or default_threads(), "inter_op_num_threads": 1}
        config.overlay(json.dumps({"model": {"decoder": {"session_options": session}}}))
        try:
            self.model = og.Model(config)
        except Exception as exc:  # onnxruntime-genai raises RuntimeError with the reason
            raise ModelFileError(
                f"{folder / MODEL_FILE}: onnxruntime cannot load it ({exc})"
            ) from None
        longest = json.loads((folder / GENAI_CONFIG).read_text())["model"]["context_length"]
        self.n_ctx = min(n_ctx, int(longest))  # the generator refuses more than the model's
        params = og.GeneratorParams(self.model)
        params.set_search_options(max_length=self.n_ctx)  # the KV buffer: n_ctx tokens
        self.generator = og.Generator(self.model, params)
        self.length = 0

    def keep(self, n: int) -> None:
        if n < self.length:
            self.generator.rewind_to(n)
        self.length = min(n, self.length)

    def feed(self, ids: list[int]) -> np.ndarray:
        self.generator.append_tokens(ids)
        self.length += len(ids)
        return np.asarray(self.generator.get_logits())[0, -1]


def open_decoder(folder: Path, n_ctx: int, threads: int | None = None) -> Any:
    """The decoder for an exported folder: onnxruntime-genai's when the builder made it."""
    if (folder / GENAI_CONFIG).exists():
        return GenAIDecoder(folder, n_ctx, threads)
    return PastDecoder(OnnxModel(folder, threads))


class OnnxBackend:
    """The Backend protocol over an ONNX model folder."""

    name = "onnxruntime"
    #: SamplingParams.repeated_call_margin and .continues are not implemented here: asked for
    #: one more call, the model would write its first again (edgeagent.replies.propose_calls)
    steers_copies = False

    def __init__(self, folder: str | Path, n_ctx: int = 2048, n_threads: int | None = None) -> None:
        import llguidance

        folder = Path(folder)
        self.decoder = open_decoder(folder, n_ctx, n_threads)
        self.model_path = str(folder)
        self.n_ctx = getattr(self.decoder, "n_ctx", n_ctx)
        self._interrupted = False
        tokenizer_file = folder / "tokenizer.json"
        if not tokenizer_file.exists():
            raise ModelFileError(f"{folder}: tokenizer.json is missing")
        config = _read(folder / "tokenizer_config.json")
        self._template = config.get("chat_template") or _text(folder / "chat_template.jinja")
        self._bos, self._eos = _token(config.get("bos_token")), _token(config.get("eos_token"))
        model_eos = _read(folder / "config.json").get("eos_token_id")
        listed = model_eos if isinstance(model_eos, list) else [model_eos]
        ends = [t for t in listed if t is not None]  # (0 is a token id)
        # llguidance's tokenizer tokenizes, decodes and masks: one copy of the vocabulary in
        # memory (the tokenizers library's beside it took 49 MB alone; benchmarks/bench_onnx.py)
        text = tokenizer_file.read_text(encoding="utf-8")
        self.ll_tokenizer = llguidance.LLTokenizer(text, eos_token=min(ends) if ends else None)
        eos = self.ll_tokenizer.tokenize_str(self._eos) if self._eos else []
        self._eog = set(ends) | (set(eos) if len(eos) == 1 else set())
        self._cache: list[int] = []  # the tokens whose keys/values the decoder holds

    def tokenize(self, text: str) -> list[int]:
        return list(self.ll_tokenizer.tokenize_str(text))

    def chat_template(self) -> str | None:
        return self._template

    def special_tokens(self) -> tuple[str, str]:
        return self._bos, self._eos

    def _matcher(self, grammar: str) -> Any:
        import llguidance

        grammar_def = llguidance.grammar_from("gbnf", grammar)
        matcher = llguidance.LLMatcher(self.ll_tokenizer, grammar_def)
        if matcher.is_error():
            raise GrammarError(f"llguidance rejected the tool-call grammar: {matcher.get_error()}")
        return matcher

    def check_grammar(self, text: str) -> None:
        self._matcher(text)

    def generate(
        self,
        prompt: list[int],
        *,
        grammar: str | None,
        sampling: SamplingParams,
        max_tokens: int,
        stats: GenerationStats,
    ) -> Iterator[str]:
        from llguidance.numpy import (
            allocate_token_bitmask,
            apply_token_bitmask_inplace,
            fill_next_token_bitmask,
        )

        if len(prompt) >= self.n_ctx:
            raise ContextOverflowError(
                f"the prompt has {len(prompt)} tokens; n_ctx is {self.n_ctx}"
            )
        stats.prompt_tokens = len(prompt)
        shared = min(_run_length(self._cache, 0, prompt, 0), len(prompt) - 1)
        stats.cached_tokens = shared
        self.decoder.keep(shared)
        self._cache = list(prompt[:shared])
        matcher = self._matcher(grammar) if grammar else None
        bitmask = allocate_token_bitmask(1, self.ll_tokenizer.vocab_size)
        choose = _Chooser(sampling, 0)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        ids = list(prompt)
        start = time.perf_counter()
        first_at = 0.0
        stats.stop_reason = "length"
        try:
            # the prompt in chunks, as llama.cpp does: logits and attention scores for one
            # chunk at a time, not for the whole prompt (2,048 tokens x vocab x f32 = 400 MB)
            chunk = self.decoder.chunk
            for at in range(shared, len(prompt), chunk):
                self._check_interrupt()
                row = self.decoder.feed(prompt[at : at + chunk])
                self._cache = list(prompt[: at + chunk])  # what the decoder holds
            while True:
                row = row.astype(np.float32)
                history = np.array(ids)
                token = choose(row, history)
                if matcher is not None and matcher.validate_tokens([token]) != 1:
                    fill_next_token_bitmask(matcher, bitmask)
                    masked = row[None].copy()
                    apply_token_bitmask_inplace(masked, bitmask)
                    token = choose(masked[0], history)
                if not first_at:
                    first_at = time.perf_counter()
                    stats.prompt_eval_s = first_at - start
                if token in self._eog:
                    stats.stop_reason = "eos"
                    break
                if matcher is not None:
                    matcher.consume_token(token)
                stats.completion_tokens += 1
                piece = decoder.decode(self._piece(token))
                if piece:
                    yield piece
                if stats.completion_tokens >= max_tokens or len(ids) + 1 >= self.n_ctx:
                    break
                self._check_interrupt()
                row = self.decoder.feed([token])
                ids.append(token)
                self._cache = list(ids)
        except GeneratorExit:
            stats.stop_reason = "stopped"
            raise
        finally:
            if first_at:
                stats.decode_s = time.perf_counter() - first_at

    def interrupt(self) -> None:
        """Stop the generation running now (from another thread) at the next prompt chunk or
        token: it raises Interrupted, and so does every generation until clear_interrupt()."""
        self._interrupted = True

    def clear_interrupt(self) -> None:
        self._interrupted = False

    def _check_interrupt(self) -> None:
        if self._interrupted:
            raise Interrupted("the generation was interrupted")

    def _piece(self, token: int) -> bytes:
        return bytes(self.ll_tokenizer.decode_bytes([token]))


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _text(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


def _token(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("content", ""))
    return str(value or "")
