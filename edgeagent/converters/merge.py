"""Merge a PEFT LoRA adapter into its base, in full or half precision, never into 4-bit weights.

The base is a GGUF file (dequantized by transformers to fp32 first, the very weights the device
runs) or an HF directory. The result is an HF directory with the tokenizer and its chat template,
plus `edgeagent.json` recording where it came from (and, from a GGUF base, the pre-tokenizer
name llama.cpp needs when it is converted back). Written under a temporary name, then renamed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeagent.converters.hf_gguf import SIDECAR
from edgeagent.converters.lora_gguf import AdapterMismatchError, read_adapter_config
from edgeagent.errors import EdgeAgentError
from edgeagent.paths import publishing

DTYPES = ("float32", "float16", "bfloat16")


@dataclass
class MergeResult:
    path: str
    dtype: str
    adapter: str | None
    bytes: int


def load_merged(base: str | Path, adapter: str | Path | None, dtype: str = "float32"):  # type: ignore[no-untyped-def]
    """(model, tokenizer): the base with the adapter merged in, in `dtype`."""
    import torch

    from edgeagent.basemodel import load_base

    if dtype not in DTYPES:
        raise EdgeAgentError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    if adapter is not None:
        read_adapter_config(Path(adapter))  # before the base loads: a bad adapter fails fast
    model, tokenizer = load_base(base)  # fp32: the merge happens in full precision
    if adapter is not None:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
        except (RuntimeError, ValueError, KeyError) as exc:  # size mismatch, unknown modules
            raise AdapterMismatchError(
                f"the adapter {adapter} does not fit the base {base}: {str(exc)[:300]}"
            ) from None
    return model.to(getattr(torch, dtype)).eval(), tokenizer


def merge_adapter(
    base: str | Path, adapter: str | Path | None, out: str | Path, dtype: str = "float16"
) -> MergeResult:
    model, tokenizer = load_merged(base, adapter, dtype)
    return save_merged(model, tokenizer, out, base, adapter, dtype)


def save_merged(  # type: ignore[no-untyped-def]
    model, tokenizer, out: str | Path, base: str | Path, adapter: str | Path | None, dtype: str
) -> MergeResult:
    """An HF directory with the tokenizer, chat template and edgeagent.json; atomic."""
    out = Path(out)
    with publishing(out) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        sidecar = {"base": str(base), "adapter": str(adapter) if adapter else None, "dtype": dtype}
        if str(base).endswith(".gguf"):
            from edgeagent.models import read_gguf_header

            fields = read_gguf_header(Path(base)).fields
            sidecar["tokenizer_pre"] = fields.get("tokenizer.ggml.pre")
        (tmp / SIDECAR).write_text(json.dumps(sidecar, indent=2))
    size = sum(f.stat().st_size for f in out.iterdir())
    return MergeResult(str(out), dtype, str(adapter) if adapter else None, size)


@contextmanager
def merged_work(
    base: str | Path, adapter: str | Path | None, out: Path
) -> Iterator[tuple[Any, Any, Path]]:
    """(model, tokenizer, work): the fp32 merged model, also saved as an HF folder in
    `work/hf`, a hidden folder beside `out` that is removed on the way out."""
    model, tokenizer = load_merged(base, adapter, "float32")
    work = out.with_name(f".{out.name}.work-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    try:
        save_merged(model, tokenizer, work / "hf", base, adapter, "float32")
        yield model, tokenizer, work
    finally:
        shutil.rmtree(work, ignore_errors=True)
