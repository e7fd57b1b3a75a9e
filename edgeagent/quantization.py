"""Every quantization edgeagent knows, in one table: the converters, the planner, the device
profiles and the CLI's choices all read it.

bits_per_weight is for the bulk 2-D weights (block scales included); embed_bits_per_weight is
what llama.cpp keeps the token embedding and output at in the mixed quantizations (None: it
uses Q6_K, or Q8_0 when the rows do not divide into K blocks); k_fallback_bits_per_weight is the
bulk's when rows do not divide (Q5_0, Q5_1, Q8_0 instead). self_check is the top-1 agreement
an export must reach (None: 4- and 5-bit formats report their figures without a threshold).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quantization:
    name: str
    format: str  # "gguf" or "onnx"
    bits_per_weight: float
    #: the llama_ftype constant libllama's quantizer writes it with; None: not written so
    llama_ftype: str | None = None
    embed_bits_per_weight: float | None = None
    k_fallback_bits_per_weight: float | None = None
    self_check: float | None = None


QUANTIZATIONS: tuple[Quantization, ...] = (
    Quantization("f32", "gguf", 32.0, None, 32.0, self_check=0.99),
    Quantization("f16", "gguf", 16.0, "LLAMA_FTYPE_MOSTLY_F16", 16.0, self_check=0.99),
    Quantization("bf16", "gguf", 16.0, "LLAMA_FTYPE_MOSTLY_BF16", 16.0, self_check=0.99),
    Quantization("q8_0", "gguf", 8.5, "LLAMA_FTYPE_MOSTLY_Q8_0", 8.5, self_check=0.97),
    Quantization("q6_k", "gguf", 6.5625, "LLAMA_FTYPE_MOSTLY_Q6_K", None, 8.5),
    Quantization("q5_k_m", "gguf", 5.69, "LLAMA_FTYPE_MOSTLY_Q5_K_M", None, 6.0),
    Quantization("q4_k_m", "gguf", 4.89, "LLAMA_FTYPE_MOSTLY_Q4_K_M", None, 5.5),
    Quantization("q4_1", "gguf", 5.0),  # the embedded model's type: read, not written
    Quantization("q4_0", "gguf", 4.5, "LLAMA_FTYPE_MOSTLY_Q4_0"),
    Quantization("iq4_nl", "gguf", 4.5, "LLAMA_FTYPE_MOSTLY_IQ4_NL"),
    Quantization("fp32", "onnx", 32.0, self_check=0.99),
    Quantization("int8", "onnx", 9.0, self_check=0.97),  # QDQ: +scale per channel
    Quantization("int8-dynamic", "onnx", 8.0, self_check=0.97),
    Quantization("int4", "onnx", 5.0),  # MatMulNBits: +fp32 scale/32
)

BY_NAME = {q.name: q for q in QUANTIZATIONS}
#: GGUF float types: written by the converter itself, not the quantizer
GGUF_FLOATS = ("f32", "f16", "bf16")


def names(fmt: str) -> tuple[str, ...]:
    """The quantizations of a format, in the table's order."""
    return tuple(q.name for q in QUANTIZATIONS if q.format == fmt)


def quantizer_types() -> tuple[str, ...]:
    """What libllama's quantizer writes (a device profile's GGUF quantizations)."""
    return tuple(q.name for q in QUANTIZATIONS if q.llama_ftype)


def gguf_exportable() -> tuple[str, ...]:
    """What `export gguf` writes: the float types and everything libllama's quantizer writes."""
    return tuple(q.name for q in QUANTIZATIONS if q.format == "gguf" and
                 (q.name in GGUF_FLOATS or q.llama_ftype))  # fmt: skip
