"""The memory planner: weights + KV cache + compute buffers + runtime bytes for a model at a
quantization and context length, read from the model's own metadata, and the choice of the best
quantization and context that fit a target.

The figures follow what the runtimes allocate (docs/targets.md#the-planner):
- weights: a file's own bytes when the model is in that format and quantization already (its GGUF
  tensors, its ONNX files), else parameters x bits per weight of the format (an estimate, marked);
- KV cache: llama.cpp keeps K and V in f16 for every layer and cell; our onnxruntime backend in
  fp32 (the exported graph's dtype);
- compute: what llama.cpp touches for one micro-batch of 512 tokens: the attention scores (tokens x
  n_ctx x heads, f32, and the mask), the same in f16 in ggml's work buffer, the feed-forward
  activations; only the last token's logits are computed, so the logits buffer stays untouched;
- runtime: Python, edgeagent and the runtime library, resident before a model loads (measured on
  this machine, benchmarks/bench_plan.py).
`benchmarks/bench_plan.py` compares the estimate with the resident memory of a real agent whose
context is full; tests/test_targets.py holds it within 15% for the embedded model.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgeagent.errors import EdgeAgentError
from edgeagent.models import GENAI_PREFILL_CHUNK, ONNX_PREFILL_CHUNK
from edgeagent.quantization import QUANTIZATIONS
from edgeagent.targets import Target

MIB = 2**20
N_UBATCH = 512  # llama.cpp's micro-batch (LlamaCppBackend passes n_batch=512)
CTX_PAD = 256  # llama.cpp rounds n_ctx up to a multiple of this
#: resident bytes before a model loads: interpreter, edgeagent, numpy and the runtime's library
RUNTIME_BYTES = {"gguf": 50 * MIB, "onnx": 64 * MIB}
#: llama.cpp's graph, output buffer and scratch beyond the terms we model (measured)
GGUF_FIXED_COMPUTE = 24 * MIB
#: bits per weight of the bulk 2-D weights in each format (edgeagent.quantization)
GGUF_BPW = {q.name: q.bits_per_weight for q in QUANTIZATIONS if q.format == "gguf"}
ONNX_BPW = {q.name: q.bits_per_weight for q in QUANTIZATIONS if q.format == "onnx"}
#: llama.cpp keeps the token embedding and output at higher precision in the mixed quantizations
GGUF_EMBED_BPW = {q.name: q.embed_bits_per_weight for q in QUANTIZATIONS if q.embed_bits_per_weight}
#: the bulk's bits when rows do not divide into K blocks (Q5_0, Q5_1, Q8_0 instead)
K_FALLBACK_BPW = {
    q.name: q.k_fallback_bits_per_weight for q in QUANTIZATIONS if q.k_fallback_bits_per_weight
}


class PlanError(EdgeAgentError):
    """Nothing fits the target; the message holds the table."""


@dataclass(frozen=True)
class ModelShape:
    """What the planner needs to know of a model, from its GGUF header or config.json."""

    path: str
    format: str  # "gguf", "onnx" or "hf"
    quantization: str  # the file's own, lower case ("q4_1", "int4", "f32" for an HF folder)
    n_params: int
    n_embed_params: int  # token embedding (+ untied output) parameters
    n_layers: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ff: int
    vocab_size: int
    context_length: int
    weights_bytes: int  # the file's own weights, in its own format and quantization

    @property
    def kv_width(self) -> int:
        return self.n_head_kv * self.head_dim


@dataclass(frozen=True)
class Estimate:
    format: str
    quantization: str
    n_ctx: int
    weights: int
    kv_cache: int
    compute: int
    runtime: int
    exact_weights: bool  # False: weights estimated from parameters x bits per weight

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.compute + self.runtime

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total, "total_mib": round(self.total / MIB, 1)}


@dataclass(frozen=True)
class Plan:
    target: Target
    model: ModelShape
    rows: list[tuple[Estimate, bool]]  # every candidate, and whether it fits
    choice: Estimate | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.full_name,
            "budget_bytes": self.target.budget_bytes,
            "model": self.model.path,
            "choice": self.choice.to_dict() if self.choice else None,
            "rows": [{**e.to_dict(), "fits": fits} for e, fits in self.rows],
        }

    def table(self) -> str:
        head = f"{'format':6} {'quant':9} {'n_ctx':>6} {'weights':>8} {'KV':>7} "
        head += f"{'compute':>8} {'runtime':>8} {'total':>8}  fits"
        lines = [head]
        for e, fits in self.rows:
            mark = "yes" if fits else "no"
            if e == self.choice:
                mark += "  <- chosen"
            approx = "" if e.exact_weights else "~"
            lines.append(
                f"{e.format:6} {e.quantization:9} {e.n_ctx:>6} "
                f"{approx + _mib(e.weights):>8} {_mib(e.kv_cache):>7} {_mib(e.compute):>8} "
                f"{_mib(e.runtime):>8} {_mib(e.total):>8}  {mark}"
            )
        budget = self.target.budget_bytes
        if all(e.exact_weights for e, _ in self.rows):
            lines.append(
                f"the model is {self.model.format} {self.model.quantization} already: kept "
                "(requantizing quantized weights only loses more; start from f16 to choose)"
            )
        else:
            lines.append("~ = weights estimated from parameters x bits per weight")
        lines.append(
            f"budget {_mib(budget)} = {self.target.ram_mib} MiB ({self.target.full_name}) "
            f"less {self.target.os_reserve_mib} MiB for the OS"
        )
        return "\n".join(lines)


def _mib(n: int) -> str:
    return f"{n / MIB:.0f}M"


# ---------------------------------------------------------------------------- reading models


def model_shape(path: str | Path) -> ModelShape:
    """The shape of a GGUF file, an ONNX folder (edgeagent export onnx) or an HF folder."""
    path = Path(path)
    if path.is_dir():
        return _folder_shape(path)
    return _gguf_shape(path)


def _gguf_shape(path: Path) -> ModelShape:
    from edgeagent.models import inspect_gguf, read_gguf_header

    info = inspect_gguf(path)  # refuses a truncated or foreign file
    header = read_gguf_header(path)
    arch = info.architecture
    fields = header.fields
    head_dim = int(fields.get(f"{arch}.attention.key_length", 0)) or info.n_embd // max(
        info.n_head, 1
    )
    ff = fields.get(f"{arch}.feed_forward_length", 4 * info.n_embd)
    embed = sum(
        t.n_elements for t in header.tensors if t.name in ("token_embd.weight", "output.weight")
    )
    return ModelShape(
        path=str(path),
        format="gguf",
        quantization=info.quantization.lower(),
        n_params=info.n_params,
        n_embed_params=embed,
        n_layers=info.n_layers,
        n_embd=info.n_embd,
        n_head=info.n_head,
        n_head_kv=info.n_head_kv,
        head_dim=head_dim,
        n_ff=int(max(ff) if isinstance(ff, list) else ff),
        vocab_size=info.vocab_size,
        context_length=info.context_length,
        weights_bytes=sum(t.n_bytes for t in header.tensors),
    )


def _folder_shape(path: Path) -> ModelShape:
    from edgeagent.models import is_onnx_folder

    config_file = path / "config.json"
    if not config_file.exists():
        raise EdgeAgentError(
            f"{path} has no config.json", hint="pass a GGUF file, an ONNX export or an HF folder"
        )
    config = json.loads(config_file.read_text(encoding="utf-8"))
    n_embd = int(config["hidden_size"])
    n_head = int(config["num_attention_heads"])
    n_head_kv = int(config.get("num_key_value_heads") or n_head)
    head_dim = int(config.get("head_dim") or n_embd // n_head)
    n_ff = int(config.get("intermediate_size") or 4 * n_embd)
    n_layers = int(config["num_hidden_layers"])
    vocab = int(config["vocab_size"])
    tied = bool(config.get("tie_word_embeddings", False))
    per_layer = (
        2 * n_embd * n_head * head_dim + 2 * n_embd * n_head_kv * head_dim + 3 * n_embd * n_ff
    )
    embed = vocab * n_embd * (1 if tied else 2)
    n_params = n_layers * per_layer + embed
    if is_onnx_folder(path):
        note = _read_json(path / "edgeagent.json")
        quant = str(note.get("quant", "fp32"))
        weights = sum(f.stat().st_size for f in path.iterdir() if ".onnx" in f.name)
        fmt = "onnx"
    else:
        quant = "f32"
        weights = sum(f.stat().st_size for f in path.glob("*.safetensors")) or n_params * 4
        fmt = "hf"
    return ModelShape(
        path=str(path), format=fmt, quantization=quant, n_params=n_params, n_embed_params=embed,
        n_layers=n_layers, n_embd=n_embd, n_head=n_head, n_head_kv=n_head_kv, head_dim=head_dim,
        n_ff=n_ff, vocab_size=vocab, context_length=int(config.get("max_position_embeddings", 0)),
        weights_bytes=weights,
    )  # fmt: skip


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


# ---------------------------------------------------------------------------- estimating


#: llama.cpp contexts an agent with adapters holds: one per adapter setting it switches between
#: (the shipped adapter on for calls, off for answers), each with its own KV cache and compute
#: buffers; the llama.cpp backend's max_contexts default (a test checks they agree).
ADAPTER_CONTEXTS = 2

#: Resident bytes of a GGUF LoRA adapter per byte of its file, loaded (measured with
#: benchmarks/bench_plan.py --bundle on the rpi5 bundle, with and without its 4.9 MB answer
#: adapter: the peak rose by 7.8 MB; llama.cpp keeps the f16 tensors and buffers beside them).
ADAPTER_RESIDENT = 1.6


def contexts_for(fmt: str, adapters: bool) -> int:
    """How many contexts a model runs with: ONNX models run merged, in one."""
    return ADAPTER_CONTEXTS if adapters and fmt == "gguf" else 1


def estimate(model: ModelShape, fmt: str, quant: str, n_ctx: int, contexts: int = 1) -> Estimate:
    """Resident bytes of an agent running `model` as `fmt`/`quant` with a full `n_ctx` context
    in each of `contexts` llama.cpp contexts."""
    if fmt == "gguf":
        n_ctx = -(-n_ctx // CTX_PAD) * CTX_PAD
        kv = 2 * model.n_layers * n_ctx * model.kv_width * 2 * contexts  # K and V, f16
        ub = min(N_UBATCH, n_ctx)
        # one micro-batch's attention scores and mask (f32), its feed-forward activations, and
        # the scores again in f16 in ggml's work buffer (the product with the f16 V cache)
        scores = ub * n_ctx * (model.n_head + 1) * 4 + 2 * ub * model.n_ff * 4
        compute = (scores + ub * n_ctx * model.n_head * 2 + GGUF_FIXED_COMPUTE) * contexts
    elif quant == "int8-dynamic":
        # optimum's graph in a plain session: fp32 KV. Fitted to peak RSS
        # (benchmarks/bench_plan.py): the graph's past and present copies of the cache (3x its
        # size in all), one prefill chunk's logits, and about 0.9x the weights again
        # (prepacking and the arena).
        kv = 2 * model.n_layers * n_ctx * model.kv_width * 4
        compute = 2 * kv + ONNX_PREFILL_CHUNK * model.vocab_size * 4
        weights_again = 0.9
    else:
        # onnxruntime-genai: one fp32 KV buffer of n_ctx, allocated whole. Fitted to peak RSS
        # of SmolLM2-135M int4 at 512 and 2,048 tokens (benchmarks/bench_plan.py, within 3 %):
        # MatMulNBits' prepacked weights beside the file's (1.85x the weights again), one
        # prefill chunk's logits and its attention scores
        kv = 2 * model.n_layers * n_ctx * model.kv_width * 4
        scores = 3 * GENAI_PREFILL_CHUNK * n_ctx * model.n_head * 4
        compute = scores + GENAI_PREFILL_CHUNK * model.vocab_size * 4
        weights_again = 1.85
    exact = model.format == fmt and model.quantization == quant
    weights = model.weights_bytes if exact else _weights(model, fmt, quant)
    if fmt == "onnx":
        compute += int(weights_again * weights)
    return Estimate(fmt, quant, n_ctx, weights, kv, compute, RUNTIME_BYTES[fmt], exact)


def _weights(model: ModelShape, fmt: str, quant: str) -> int:
    bulk = model.n_params - model.n_embed_params
    if fmt == "gguf":
        # K-quants work in blocks of 256 columns; llama.cpp gives rows of other widths (SmolLM2's
        # 576) a legacy type of more bits instead
        misaligned = model.n_embd % 256 != 0
        bulk_bpw = K_FALLBACK_BPW.get(quant, GGUF_BPW[quant]) if misaligned else GGUF_BPW[quant]
        embed_bpw = GGUF_EMBED_BPW.get(quant, 8.5 if misaligned else GGUF_BPW["q6_k"])
        bits = bulk * bulk_bpw + model.n_embed_params * embed_bpw
    elif quant == "int4" and model.n_embed_params == model.vocab_size * model.n_embd:
        # the builder's int4 shares a tied embedding with the output head, both in 4 bits
        bits = (bulk + model.n_embed_params) * ONNX_BPW[quant]
    else:  # the embedding Gather stays fp32; a tied output is stored again as a MatMul
        output = model.vocab_size * model.n_embd
        bits = (bulk + output) * ONNX_BPW[quant] + model.vocab_size * model.n_embd * 32
    return int(bits / 8)


# ---------------------------------------------------------------------------- planning


def candidates(model: ModelShape, target: Target, fmt: str | None = None) -> list[tuple[str, str]]:
    """(format, quantization) pairs to try, best first. A model already quantized below 8 bits
    keeps its quantization: requantizing 4-bit weights only loses more."""
    fmt = fmt or target.format
    if model.format == fmt and model.quantization not in ("f32", "f16", "bf16", "fp32"):
        return [(fmt, model.quantization)]
    if fmt == "onnx":
        return [("onnx", target.onnx_quantization)]
    return [("gguf", q) for q in target.quantizations]


def context_steps(target: Target, model: ModelShape) -> list[int]:
    """The target's context length, halved down to its minimum, within the model's own."""
    top = target.n_ctx
    if model.context_length:
        top = min(top, model.context_length)
    steps, n = [], top
    while n >= min(target.min_ctx, top):
        steps.append(n)
        n //= 2
    return steps or [top]


def plan(
    model: ModelShape,
    target: Target,
    *,
    fmt: str | None = None,
    quant: str | None = None,
    n_ctx: int | None = None,
    adapters: bool = False,
) -> Plan:
    """Every candidate's estimate, and the first (best quantization, then longest context) that
    fits the target's budget; with `adapters`, a GGUF model's contexts for its adapter settings.
    Raises PlanError, with the table, when none fits."""
    pairs = candidates(model, target, fmt)
    if quant:
        pairs = [(fmt or target.format, quant.lower())]
        known = GGUF_BPW if pairs[0][0] == "gguf" else ONNX_BPW
        if pairs[0][1] not in known:
            raise PlanError(
                f"unknown {pairs[0][0]} quantization {quant!r}", hint=f"one of: {', '.join(known)}"
            )
    contexts = [n_ctx] if n_ctx else context_steps(target, model)
    rows: list[tuple[Estimate, bool]] = []
    for f, q in pairs:
        for n in contexts:
            e = estimate(model, f, q, n, contexts_for(f, adapters))
            rows.append((e, e.total <= target.budget_bytes))
    choice = next((e for e, fits in rows if fits), None)
    result = Plan(target, model, rows, choice)
    if choice is None:
        smallest = min(e.total for e, _ in rows)
        raise PlanError(
            f"{Path(model.path).name} does not fit {target.full_name}: the smallest plan needs "
            f"{_mib(smallest)}, the budget is {_mib(target.budget_bytes)}\n{result.table()}",
            hint="pick a smaller model or quantization, a shorter --n-ctx, or a larger variant",
        )
    return result
