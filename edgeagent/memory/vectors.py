"""Vector search over unit-length embeddings: exact (a matrix product) while small, an HNSW
index (hnswlib, the `memory` extra) once the count passes `ann_threshold`;
benchmarks/bench_memory.py measures its recall@10 against exact search.

Why hnswlib and not usearch: usearch's wheel links its own static libstdc++, and once it is
imported, llama.cpp fails to load any model ("error loading model vocabulary: std::bad_cast").
hnswlib links the system libstdc++ and coexists with llama.cpp (tests/test_memory.py)."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np


class VectorIndex:
    def __init__(self, dim: int, ann_threshold: int = 20_000) -> None:
        self.dim = dim
        self.ann_threshold = ann_threshold
        self._ids = np.empty(0, dtype=np.int64)
        self._mat = np.empty((0, dim), dtype=np.float32)
        self._n = 0
        self._ann: Any = None

    def __len__(self) -> int:
        return self._n

    @property
    def kind(self) -> str:
        return "hnsw" if self._ann is not None else "exact"

    def ids(self) -> set[int]:
        return set(self._ids[: self._n].tolist())

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        n = len(ids)
        if self._n + n > len(self._ids):  # grow by doubling: appends stay amortized O(1)
            cap = max(1024, 2 * (self._n + n))
            self._ids = np.resize(self._ids, cap)
            mat = np.empty((cap, self.dim), dtype=np.float32)
            mat[: self._n] = self._mat[: self._n]
            self._mat = mat
        self._ids[self._n : self._n + n] = ids
        self._mat[self._n : self._n + n] = vectors
        self._n += n
        if self._ann is not None:
            self._ann_add(ids, vectors)
        elif self._n >= self.ann_threshold:
            self._build_ann()

    def remove(self, ids: set[int]) -> None:
        keep = ~np.isin(self._ids[: self._n], list(ids))
        kept = int(keep.sum())
        self._ids[:kept] = self._ids[: self._n][keep]
        self._mat[:kept] = self._mat[: self._n][keep]
        self._n = kept
        if self._ann is not None:
            for i in ids:
                with contextlib.suppress(RuntimeError):  # not in the index
                    self._ann.mark_deleted(int(i))

    def _build_ann(self) -> None:
        try:
            import hnswlib
        except ImportError:  # optional: exact search still works, just slower at scale
            self.ann_threshold = 2**62
            return
        index = hnswlib.Index(space="ip", dim=self.dim)
        index.init_index(max_elements=max(2 * self._n, 1024), ef_construction=100, M=16,
                         allow_replace_deleted=True)  # fmt: skip
        index.set_ef(64)
        self._ann = index
        self._ann_add(self._ids[: self._n], self._mat[: self._n])

    def _ann_add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        needed = self._ann.get_current_count() + len(ids)
        if needed > self._ann.get_max_elements():
            self._ann.resize_index(2 * needed)
        self._ann.add_items(vectors, ids)

    def search(self, query: np.ndarray, k: int, allowed: set[int] | None = None) -> list[int]:
        """Ids of the k nearest vectors by inner product (cosine for unit vectors)."""
        if self._n == 0:
            return []
        if self._ann is not None and (allowed is None or len(allowed) > 4 * k):
            want = min(self._n, k if allowed is None else k * 8)
            try:
                labels, _ = self._ann.knn_query(query.astype(np.float32), k=want)
            except RuntimeError:  # fewer live elements than asked for (after deletions)
                return self.exact(query, k, allowed)
            keys = [int(x) for x in labels[0]]
            if allowed is not None:
                keys = [x for x in keys if x in allowed]
            if len(keys) >= min(k, self._n) or allowed is None:
                return keys[:k]
        return self.exact(query, k, allowed)

    def exact(self, query: np.ndarray, k: int, allowed: set[int] | None = None) -> list[int]:
        ids, mat = self._ids[: self._n], self._mat[: self._n]
        if allowed is not None:
            mask = np.isin(ids, list(allowed))
            ids, mat = ids[mask], mat[mask]
        if len(ids) == 0:
            return []
        scores = mat @ query.astype(np.float32)
        k = min(k, len(ids))
        top = np.argpartition(-scores, k - 1)[:k]
        return [int(i) for i in ids[top[np.argsort(-scores[top])]]]
