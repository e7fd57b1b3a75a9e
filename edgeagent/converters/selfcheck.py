"""Does an exported model still compute what its source computes? Top-1 next-token agreement
of llama.cpp (on the exported GGUF) with the transformers reference, token for token on the same
ids, and the perplexity of each on a general text shipped with edgeagent.

Thresholds (refuse to report success below them): F32/F16/BF16 and ONNX fp32 >= 99% agreement,
Q8_0 and ONNX INT8 >= 97%; the 4-bit and 5-bit formats have no threshold, their figures are
printed for the user to judge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeagent.errors import EdgeAgentError
from edgeagent.quantization import QUANTIZATIONS

THRESHOLDS = {q.name: q.self_check for q in QUANTIZATIONS if q.self_check is not None}


@dataclass
class CheckResult:
    quant: str
    tokens: int
    top1_agreement: float
    perplexity: float
    reference_perplexity: float
    threshold: float | None

    @property
    def passed(self) -> bool:
        return self.threshold is None or self.top1_agreement >= self.threshold


class SelfCheckError(EdgeAgentError):
    """The export disagrees with its source more than its format allows."""

    def __init__(self, message: str, result: CheckResult, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.result = result  # the figures, for whoever wants to report them


def general_text() -> str:
    from importlib.resources import files

    return files("edgeagent").joinpath("data/general.txt").read_text(encoding="utf-8")


def general_ids(tokenizer: Any, max_tokens: int = 512, text: str | None = None) -> list[int]:
    ids: list[int] = tokenizer(text or general_text(), add_special_tokens=False)["input_ids"]
    if len(ids) < 2:
        raise EdgeAgentError("the self-check text is too short")
    return ids[:max_tokens]


def self_check(
    gguf_path: str | Path,
    model: Any,
    tokenizer: Any,
    quant: str,
    text: str | None = None,
    n_threads: int | None = None,
) -> CheckResult:
    """Compare `gguf_path` in llama.cpp with `model` (transformers) on `text` (default: the
    shipped general text). Raises SelfCheckError below the format's threshold."""
    import llama_cpp

    ids = general_ids(tokenizer, text=text)
    ref = reference_logits(model, ids)
    llm = llama_cpp.Llama(
        str(gguf_path), n_ctx=len(ids) + 8, n_batch=len(ids), logits_all=True,
        n_threads=n_threads, verbose=False,
    )  # fmt: skip
    try:
        llm.eval(ids)
        got = np.array(llm.scores[: len(ids)], dtype=np.float32)
    finally:
        llm.close()
    return compare(ref, got, ids, quant, str(gguf_path))


def reference_logits(model: Any, ids: list[int]) -> np.ndarray:
    """The transformers model's logits at every position of `ids`."""
    import torch

    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()  # type: ignore[no-any-return]


def compare(
    ref: np.ndarray, got: np.ndarray, ids: list[int], quant: str, what: str = "the export"
) -> CheckResult:
    """Top-1 agreement and perplexities of `got` against `ref` (logits at every position)."""
    agreement = float(np.mean(ref.argmax(-1)[:-1] == got.argmax(-1)[:-1]))
    threshold = THRESHOLDS.get(quant.lower())
    result = CheckResult(
        quant.lower(), len(ids), round(agreement, 4), round(_perplexity(got, ids), 3),
        round(_perplexity(ref, ids), 3), threshold,
    )  # fmt: skip
    if not result.passed:
        raise SelfCheckError(
            f"{what}: top-1 agreement with the reference is {agreement:.1%}, below the "
            f"{threshold:.0%} a {quant} export must reach",
            result,
            hint="the export is wrong (or the base's tokenizer/weights did not carry over)",
        )
    return result


def _perplexity(logits: np.ndarray, ids: list[int]) -> float:
    x = logits[:-1].astype(np.float64)
    x -= x.max(-1, keepdims=True)
    logp = x - np.log(np.exp(x).sum(-1, keepdims=True))
    nll = -logp[np.arange(len(ids) - 1), ids[1:]].mean()
    return math.exp(nll)
