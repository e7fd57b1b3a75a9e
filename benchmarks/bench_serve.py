"""`edgeagent serve` against the in-process Agent, measured in one run. Prints one JSON object.

1. tokens/s over the whole request (from sending it to the last byte) and time to the first
   usable delta (an answer's first text, a call's whole
   name) of the same requests (a tool call under tool_choice=required, and a plain answer),
   through the server with the official `openai` client (streaming), and in-process with the
   same prompt, grammar and reply strategy;
2. four concurrent streaming clients: errors, and p50/p95 of their whole-request latency (they
   take turns on the one model, so this is the queue as a client feels it).

    python benchmarks/bench_serve.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("EDGEAGENT_HOME", tempfile.mkdtemp(prefix="edgeagent-bench-"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import openai  # noqa: E402

from edgeagent.agent import Agent  # noqa: E402
from edgeagent.backends import GenerationStats  # noqa: E402
from edgeagent.confidence import PROBE_TOKENS  # noqa: E402
from edgeagent.openai_api import CallDeltas, parse_request  # noqa: E402
from edgeagent.wireformat import reply_kind  # noqa: E402
from tests.test_serve import TOOLS, start_server  # noqa: E402

CALL = {
    "tools": TOOLS,
    "tool_choice": "required",
    "messages": [{"role": "user", "content": "Start a 12 minute timer for the pasta"}],
}
ANSWER = {
    "max_tokens": 64,
    "temperature": 0,
    "messages": [{"role": "user", "content": "Tell me about green tea."}],
}


def through_server(client: openai.OpenAI, body: dict) -> tuple[float, float]:
    """(first usable delta, tokens/s over the whole request) of one streamed request."""
    start = time.perf_counter()
    first = 0.0
    usage = None
    for event in client.chat.completions.create(
        model="m", stream=True, stream_options={"include_usage": True}, **body
    ):
        if event.choices and (event.choices[0].delta.content or event.choices[0].delta.tool_calls):
            first = first or time.perf_counter() - start
        usage = event.usage or usage
    assert usage is not None
    return first, usage.completion_tokens / (time.perf_counter() - start)


def in_process(agent: Agent, body: dict) -> tuple[float, float]:
    """The same request through the library: the same prompt, grammar and reply strategy."""
    req = parse_request(body, max_tokens_cap=1024)
    derived = agent.derive(req.tools, max_tokens=req.max_tokens, memory=None)
    session = derived.session()
    session.messages = list(req.messages)
    stats = GenerationStats(probe_tokens=PROBE_TOKENS)  # the confidence probe, as Agent.run
    start = time.perf_counter()
    first, text, deltas = 0.0, "", CallDeltas()
    for piece in session._generate(req.tools, req.allow_answer, req.allow_calls, stats):
        # the first thing a client can use, as through the server: a content delta, or a call's
        # name once it is whole
        text += piece
        kind = reply_kind(text)
        usable = kind == "answer" or (
            kind == "call" and deltas.feed(piece if deltas.text else text)
        )
        first = first or (time.perf_counter() - start if usable else 0.0)
    return first, stats.completion_tokens / (time.perf_counter() - start)


def concurrent_clients(client: openai.OpenAI, n: int) -> dict:
    def one(_: int) -> float:
        start = time.perf_counter()
        for _event in client.chat.completions.create(model="m", stream=True, **ANSWER):
            pass
        return time.perf_counter() - start

    errors, latencies = 0, []
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        for future in [pool.submit(one, i) for i in range(n)]:
            try:
                latencies.append(future.result())
            except Exception:  # counted: the figure is how many failed
                errors += 1
    latencies.sort()
    return {
        "clients": n,
        "errors": errors,
        "p50_s": round(statistics.median(latencies), 3),
        "p95_s": round(latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    home = Path(os.environ["EDGEAGENT_HOME"])
    proc, url = start_server(home / "serve", "--threads", "2")
    agent = Agent([], n_threads=2)  # the same model, adapter and reply strategy as the server
    agent.renderer  # noqa: B018  (loads it before the clock starts)
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", timeout=600, max_retries=0)
        results: dict = {}
        for name, body in (("tool_call", CALL), ("answer", ANSWER)):
            server, local = [], []
            for _ in range(args.repeats):  # alternate the two paths
                server.append(through_server(client, body))
                local.append(in_process(agent, body))
            st = statistics.median(t for t, _ in server)
            lt = statistics.median(t for t, _ in local)
            sd = statistics.median(d for _, d in server)
            ld = statistics.median(d for _, d in local)
            results[name] = {
                "server_ttft_s": round(st, 4),
                "in_process_ttft_s": round(lt, 4),
                "ttft_overhead_pct": round((st / lt - 1) * 100, 1),
                "server_tokens_per_s": round(sd, 1),
                "in_process_tokens_per_s": round(ld, 1),
                "throughput_overhead_pct": round((1 - sd / ld) * 100, 1),
            }
        results["concurrent"] = concurrent_clients(client, 4)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    print(
        json.dumps(
            {
                "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
                "repeats": args.repeats,
                **results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
