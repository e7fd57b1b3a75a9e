"""Reading a GGUF header before every model load: edgeagent's header walk vs gguf-py's GGUFReader
on the same file, same run. Both must find the same tensors. Prints one JSON object.

    python benchmarks/bench_gguf_header.py [--model PATH] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from gguf import GGUFReader

from edgeagent.models import read_gguf_header, resolve_model


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    path = resolve_model(args.model)
    ours = read_gguf_header(path)
    ref = GGUFReader(path)
    same = [(t.name, t.n_bytes) for t in ours.tensors] == [
        (t.name, int(t.n_bytes)) for t in ref.tensors
    ]
    t_ours = timed(lambda: read_gguf_header(path), args.repeats)
    t_ref = timed(lambda: GGUFReader(path), args.repeats)
    print(
        json.dumps(
            {
                "model": str(path),
                "tensors": len(ours.tensors),
                "same_tensors": same,
                "edgeagent_header_s": round(t_ours, 4),
                "gguf_py_reader_s": round(t_ref, 4),
                "speedup": round(t_ref / t_ours, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
