"""Tool pruning on BFCL: recall@k of the right tool and the prompt tokens saved. Prints JSON.

Each category's functions are pooled into one inventory (hundreds of tools, names deduplicated);
for each case the index retrieves the top-k tools for the user's request, and a hit is the case's
expected function among them. Baseline: the same retrieval by keywords only (FTS5 BM25), and by
vectors only, in the same run. Tokens: the system prompt with the whole inventory vs the top k.

    python benchmarks/bench_pruning.py [--categories multiple,live_multiple] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("EDGEAGENT_HOME", tempfile.mkdtemp(prefix="edgeagent-bench-"))

import llama_cpp  # noqa: E402

from edgeagent.bfcl import load_cases, to_json_schema  # noqa: E402
from edgeagent.memory import LlamaEmbedder, MemoryIndex  # noqa: E402
from edgeagent.models import default_model_path  # noqa: E402
from edgeagent.pruning import tool_document  # noqa: E402
from edgeagent.tools import Tool  # noqa: E402
from edgeagent.wireformat import system_prompt  # noqa: E402

KS = (3, 5, 10)


class Cached:
    """Embeds each distinct text once (vector and hybrid search embed the same queries)."""

    def __init__(self, embedder) -> None:
        self.inner, self.name, self.dim = embedder, embedder.name, embedder.dim
        self._seen: dict[str, object] = {}

    def embed(self, texts):
        import numpy as np

        missing = [t for t in dict.fromkeys(texts) if t not in self._seen]
        if missing:
            self._seen.update(zip(missing, self.inner.embed(missing), strict=True))
        return np.stack([self._seen[t] for t in texts])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--categories", default="multiple,live_multiple")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--keyword-only", action="store_true", help="Skip the embedder (fast).")
    args = parser.parse_args()
    vocab = llama_cpp.Llama(str(default_model_path()), vocab_only=True, verbose=False)

    def n_tokens(text: str) -> int:
        return len(vocab.tokenize(text.encode(), add_bos=False, special=True))

    embedder = None if args.keyword_only else Cached(LlamaEmbedder())
    report = {}
    for category in args.categories.split(","):
        cases = [c for c in load_cases(category, args.limit) if c.answer]
        pool: dict[str, Tool] = {}
        for case in cases:
            for f in case.functions:
                if f["name"] not in pool:
                    params = to_json_schema(f["parameters"])
                    pool[f["name"]] = Tool.from_schema(f["name"], f.get("description", ""), params)
        tools = list(pool.values())
        indexes = {"keyword": MemoryIndex(":memory:")}
        if embedder is not None:
            indexes["vector"] = MemoryIndex(":memory:", embedder)
            indexes["hybrid"] = indexes["vector"]  # searched in hybrid mode
        start = time.perf_counter()
        docs = [(tool_document(t), "tool", {"name": t.name}) for t in tools]
        indexes["keyword"].add_many(docs)
        if embedder is not None:
            indexes["vector"].add_many(docs)
        index_s = time.perf_counter() - start
        results: dict[str, dict[int, list[int]]] = {m: {k: [] for k in KS} for m in indexes}
        query_s = []
        for case in cases:
            query = case.messages[-1]["content"]
            truth = {name for call in case.answer or [] for name in call}
            for mode in indexes:
                index = indexes[mode]
                t0 = time.perf_counter()
                hits = index.search(query, k=max(KS), mode=mode)  # type: ignore[arg-type]
                query_s.append(time.perf_counter() - t0)
                names = [h.metadata["name"] for h in hits]
                for k in KS:
                    results[mode][k].append(int(bool(truth & set(names[:k]))))
        full_tokens = n_tokens(system_prompt(tools))
        by_name = {t.name: t for t in tools}
        top5_tokens = []
        for c in cases[:50]:
            hits = indexes["keyword"].search(c.messages[-1]["content"], k=5, mode="keyword")
            top5_tokens.append(n_tokens(system_prompt([by_name[h.metadata["name"]] for h in hits])))
        case_tokens = [
            n_tokens(system_prompt([pool[f["name"]] for f in c.functions])) for c in cases[:50]
        ]
        report[category] = {
            "cases": len(cases),
            "inventory_tools": len(tools),
            "recall_at_k": {
                mode: {str(k): round(statistics.mean(v), 3) for k, v in per_k.items()}
                for mode, per_k in results.items()
            },
            "prompt_tokens_whole_inventory": full_tokens,
            "prompt_tokens_top5_mean": round(statistics.mean(top5_tokens), 1),
            "prompt_tokens_case_functions_mean": round(statistics.mean(case_tokens), 1),
            "index_build_s": round(index_s, 2),
            "query_ms_median": round(statistics.median(query_s) * 1000, 2),
        }
    name = embedder.name if embedder else None
    print(json.dumps({"embedder": name, "categories": report}, indent=2))


if __name__ == "__main__":
    main()
