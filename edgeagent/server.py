"""`edgeagent serve`: the OpenAI chat-completions API over one loaded model.

Starlette and uvicorn: the routing, request bodies and streaming responses this needs, with
OpenAI-style error objects written here (FastAPI's validation answers 422 in its own shape,
which OpenAI clients do not read) and two small dependencies on a device.

    GET  /health               {"status": "ok"} once the model is loaded (503 before)
    GET  /v1/models            the one model served
    POST /v1/chat/completions  edgeagent.openai_api says what a request may hold

Every reply is generated under the tool-call grammar: a call the client receives is valid
against its tool's schema, and `response_format` with a JSON Schema constrains the answer the
same way. The client runs the tools (OpenAI's semantics). Requests wait their turn for the one
model in arrival order (asyncio's lock is fair); a client that disconnects mid-stream stops
its generation. Bound to 127.0.0.1 unless told otherwise; with an API key, every request but
/health needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

from edgeagent.agent import Agent
from edgeagent.backends import GenerationStats
from edgeagent.confidence import PROBE_TOKENS, reply_confidence
from edgeagent.errors import EdgeAgentError
from edgeagent.openai_api import (
    ApiError,
    CallDeltas,
    ChatRequest,
    chunk,
    completion,
    new_id,
    parse_request,
)
from edgeagent.tools import Tool
from edgeagent.wireformat import CallStream, Message, parse_reply, reply_kind

MAX_BODY_BYTES = 1 << 20
MAX_TOKENS_CAP = 1024
#: how long a stream lets pieces gather after its first one before sending them as one chunk
CHUNK_WINDOW_S = 0.02


@dataclass
class Reply:
    """What one generation produced."""

    text: str
    stats: GenerationStats
    seconds: float
    ttft_s: float


class Engine:
    """The loaded model and one generation at a time on it."""

    def __init__(
        self, make_agent: Callable[[], Agent], name: str, server_tools: list[Tool] | None = None
    ) -> None:
        self.make_agent = make_agent
        self.name = name
        #: tools the server runs itself (--tools, an extension of OpenAI's semantics)
        self.server_tools = list(server_tools or [])
        self.agent: Agent | None = None
        self.error: str | None = None
        self.lock = asyncio.Lock()
        self._stats = GenerationStats()  # the last generation's

    def load(self) -> None:
        try:
            agent = self.make_agent()
            agent.renderer  # noqa: B018  (loads the model now, not on the first request)
            self.agent = agent
        except Exception as exc:  # reported by /health and every request
            self.error = str(exc)

    def generate(self, req: ChatRequest, cancelled: threading.Event) -> Iterator[str]:
        """The reply's text as it is generated (in a worker thread); stops when cancelled."""
        assert self.agent is not None
        sampling = dataclasses.replace(  # the agent's call threshold stands
            self.agent.sampling, temperature=req.temperature, top_p=req.top_p, seed=req.seed
        )
        agent = self.agent.derive(
            req.tools + self.server_tools,
            instructions=req.instructions,
            sampling=sampling,
            max_tokens=req.max_tokens,
            max_calls=4 if req.parallel else 1,
            memory=None,
        )
        session = agent.session()
        session.messages = list(req.messages)
        if self.server_tools and req.json_schema is None:
            yield from self._with_server_tools(agent, session, req, cancelled)
            return
        stats = GenerationStats(probe_tokens=PROBE_TOKENS)
        if req.json_schema is not None:
            pieces = self._json_answer(agent, session, req, stats)
        else:
            pieces = session._generate(req.tools, req.allow_answer, req.allow_calls, stats)
        self._stats = stats
        with agent._lock:
            try:
                for piece in pieces:
                    if cancelled.is_set():
                        break
                    yield piece
            finally:
                pieces.close()

    def _with_server_tools(
        self, agent: Agent, session: Any, req: ChatRequest, cancelled: threading.Event
    ) -> Iterator[str]:
        """The agent loop over the server's own tools: a reply that calls them is run here (with
        the runtime's permission rules: a tool with side effects runs only if --allow names
        it) and the model goes on; the reply that answers, or calls the client's tools, is the
        one the client gets. A call is held until it is whole, to see whose tool it calls."""
        tools = req.tools + self.server_tools
        own = {t.name for t in self.server_tools}
        for step in range(agent.max_steps):
            last = step == agent.max_steps - 1
            stats = GenerationStats(probe_tokens=PROBE_TOKENS)
            self._stats = stats
            allow_answer = req.allow_answer or step > 0 or last
            pieces = session._generate(tools, allow_answer, req.allow_calls and not last, stats)
            text, stream = "", CallStream()
            with agent._lock:
                try:
                    for piece in pieces:
                        if cancelled.is_set():
                            return
                        keep_going = stream.feed(piece)
                        if reply_kind(stream.text) == "answer":
                            yield stream.text[len(text) :]
                            text = stream.text
                        if not keep_going:
                            break
                finally:
                    pieces.close()
            if reply_kind(stream.text) != "call":
                return
            calls = parse_reply(stream.text, tools).calls
            mine = [c for c in calls if c.name in own]
            if not mine:
                yield stream.text
                return
            session.messages.append(Message("assistant", calls=mine))
            for call in mine:
                record = session._execute(call)
                session.records.append(record)
                session.messages.append(Message("tool", record.result, name=call.name))

    def record(self, req: ChatRequest, text: str, seconds: float, ttft_s: float) -> None:
        """One trace record for a request, when the server traces (--trace)."""
        from edgeagent.traces import Turn, short_digest

        agent, stats = self.agent, self._stats
        if agent is None or agent.tracer is None:
            return
        parsed = parse_reply(text, req.tools)
        decode_s = max(seconds - ttft_s, 1e-9)
        agent.tracer.record(Turn(
            source="serve", model=short_digest(agent.backend.model_path),
            adapter=short_digest(str(agent.adapter or "")), tools=[t.name for t in req.tools],
            calls=[{"name": c.name, "status": "proposed", "valid": True, "duration_s": 0.0}
                   for c in parsed.calls],
            confidence=reply_confidence(stats, text), ttft_s=round(ttft_s, 4),
            decode_tokens_per_s=round(max(stats.completion_tokens - 1, 0) / decode_s, 2),
            total_s=round(seconds, 4), tokens_in=stats.prompt_tokens,
            tokens_out=stats.completion_tokens,
            prompt=req.messages[-1].content, answer=text,
        ))  # fmt: skip

    def _json_answer(
        self, agent: Agent, session: Any, req: ChatRequest, stats: GenerationStats
    ) -> Generator[str, None, None]:
        from edgeagent.grammar import DEFAULT_MAX_STRING_CHARS, json_grammar

        backend = agent.backend
        prompt = backend.tokenize(agent.render(session.messages, []))
        grammar = json_grammar(req.json_schema or {}, DEFAULT_MAX_STRING_CHARS)
        yield from backend.generate(
            prompt, grammar=grammar, sampling=agent.sampling, max_tokens=req.max_tokens, stats=stats
        )


def _usage(stats: GenerationStats) -> dict[str, int]:
    return {
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.completion_tokens,
        "total_tokens": stats.prompt_tokens + stats.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": stats.cached_tokens},  # type: ignore[dict-item]
    }


def _cut_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    at = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:at], True) if at >= 0 else (text, False)


def create_app(engine: Engine, *, api_key: str | None = None) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    def error(exc: ApiError) -> Response:
        return JSONResponse(exc.body(), status_code=exc.status)

    def check(request: Request) -> None:
        if api_key is not None and request.headers.get("authorization") != f"Bearer {api_key}":
            raise ApiError(
                401,
                "a valid API key is needed (Authorization: Bearer KEY)",
                "invalid_request_error",
                code="invalid_api_key",
            )
        if engine.error:
            raise ApiError(503, f"the model failed to load: {engine.error}", "server_error")
        if engine.agent is None:
            raise ApiError(503, "the model is loading; try again in a moment", "server_error")

    async def health(request: Request) -> Response:
        if engine.agent is None:
            status = "error: " + engine.error if engine.error else "loading"
            return JSONResponse({"status": status}, status_code=503)
        return JSONResponse({"status": "ok", "model": engine.name})

    async def models(request: Request) -> Response:
        try:
            check(request)
        except ApiError as exc:
            return error(exc)
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"id": engine.name, "object": "model", "created": 0, "owned_by": "edgeagent"}
                ],
            }
        )

    async def chat(request: Request) -> Response:
        try:
            check(request)
            size = int(request.headers.get("content-length") or 0)
            if size > MAX_BODY_BYTES:
                raise ApiError(413, f"the request is over {MAX_BODY_BYTES:,} bytes")
            raw = await request.body()
            if len(raw) > MAX_BODY_BYTES:
                raise ApiError(413, f"the request is over {MAX_BODY_BYTES:,} bytes")
            try:
                body = json.loads(raw)
            except ValueError:
                raise ApiError(400, "the request body is not JSON") from None
            req = parse_request(body, max_tokens_cap=MAX_TOKENS_CAP)
            if {t.name for t in req.tools} & {t.name for t in engine.server_tools}:
                raise ApiError(400, "a tool has the name of one the server runs itself",
                               param="tools")  # fmt: skip
        except ApiError as exc:
            return error(exc)
        if req.stream:
            return StreamingResponse(_stream(engine, req, request), media_type="text/event-stream")
        async with engine.lock:
            try:
                reply = await asyncio.to_thread(_collect, engine, req)
            except EdgeAgentError as exc:  # the conversation does not fit the context, ...
                return error(ApiError(400, str(exc.args[0]), param="messages"))
        return JSONResponse(_finish(engine, req, reply))

    routes = [
        Route("/health", health),
        Route("/v1/models", models),
        Route("/v1/chat/completions", chat, methods=["POST"]),
    ]
    return Starlette(routes=routes)


def _collect(engine: Engine, req: ChatRequest) -> Reply:
    start = time.perf_counter()
    stream, ttft = CallStream(), 0.0
    for piece in engine.generate(req, threading.Event()):
        ttft = ttft or time.perf_counter() - start
        if not stream.feed(piece):
            break
        answer = req.stop and reply_kind(stream.text) == "answer"
        if answer and _cut_at_stop(stream.text, req.stop)[1]:
            break
    reply = Reply(stream.text, engine._stats, time.perf_counter() - start, ttft)
    engine.record(req, reply.text, reply.seconds, reply.ttft_s)
    return reply


def _finish(engine: Engine, req: ChatRequest, reply: Reply) -> dict[str, Any]:
    rid, stats = new_id(), reply.stats
    parsed = parse_reply(reply.text, req.tools)
    extra = {
        "edgeagent": {
            "confidence": reply_confidence(stats, reply.text),
            "ttft_s": round(reply.ttft_s, 4),
        }
    }
    if parsed.is_call:
        calls = parsed.calls if req.parallel else parsed.calls[:1]
        return completion(rid, engine.name, None, calls, "tool_calls", _usage(stats), extra)
    text, stopped = _cut_at_stop(parsed.text, req.stop)
    finish = "stop" if stopped or stats.stop_reason == "eos" else "length"
    return completion(rid, engine.name, text, [], finish, _usage(stats), extra)


async def _stream(engine: Engine, req: ChatRequest, request: Any) -> AsyncIterator[str]:
    """Server-sent events: role, then content or tool-call deltas, then the finish chunk (with
    usage), then [DONE]. The generation runs in a thread and hands its pieces to the event
    loop (call_soon_threadsafe: no thread hop per token, which on two cores beside llama.cpp's
    own threads halved the decode speed); what has arrived by the time the loop looks is sent
    as one chunk."""
    rid, name = new_id(), engine.name
    cancelled = threading.Event()
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue[str | None] = asyncio.Queue()
    finished = asyncio.Event()  # the generation ended: no more pieces to wait for

    def work() -> None:
        try:
            stream = CallStream()
            for piece in engine.generate(req, cancelled):
                loop.call_soon_threadsafe(pieces.put_nowait, piece)
                if not stream.feed(piece):
                    break
        finally:
            loop.call_soon_threadsafe(pieces.put_nowait, None)
            loop.call_soon_threadsafe(finished.set)

    async def next_pieces(gather: bool) -> str | None:
        """What has arrived (at least one piece), or None at the end. With `gather` it lets a
        few more arrive first (CHUNK_WINDOW_S): fewer, larger chunks leave the decode loop
        more of the CPU (the event loop and the generating thread share one interpreter)."""
        piece = await pieces.get()
        if piece is None:
            return None
        if gather and not finished.is_set():  # the last pieces go out at once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), CHUNK_WINDOW_S)
        while not pieces.empty():
            more = pieces.get_nowait()
            if more is None:
                pieces.put_nowait(None)  # the end, seen on the next call
                break
            piece += more
        return piece

    def sse(data: dict[str, Any]) -> str:
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    start = time.perf_counter()
    async with engine.lock:
        worker = asyncio.create_task(asyncio.to_thread(work))
        try:
            yield sse(chunk(rid, name, {"role": "assistant", "content": ""}))
            text, sent, kind, deltas, stopped = "", 0, "", CallDeltas(), False
            first_at = 0.0
            holdback = max((len(s) for s in req.stop), default=1) - 1
            while True:
                piece = await next_pieces(gather=bool(text))  # the first goes out at once
                if piece is None:
                    break
                if await request.is_disconnected():
                    cancelled.set()
                    engine.agent.interrupt()  # type: ignore[union-attr]
                    return
                text += piece
                first_at = first_at or time.perf_counter() - start
                kind = kind or reply_kind(text)
                if kind == "call":
                    for delta in deltas.feed(piece if deltas.text else text):
                        if req.parallel or delta["index"] == 0:
                            yield sse(chunk(rid, name, {"tool_calls": [delta]}))
                elif kind == "answer":
                    cut, stopped = _cut_at_stop(text, req.stop)
                    ready = len(cut) if stopped else max(len(cut) - holdback, sent)
                    if ready > sent:
                        yield sse(chunk(rid, name, {"content": cut[sent:ready]}))
                        sent = ready
                    if stopped:
                        cancelled.set()
                        break
            if kind == "answer" and not stopped and sent < len(text):
                yield sse(chunk(rid, name, {"content": text[sent:]}))
            try:
                await worker
            except EdgeAgentError as exc:  # after the headers: an error event, as OpenAI sends
                yield sse(ApiError(400, str(exc.args[0]), param="messages").body())
                yield "data: [DONE]\n\n"
                return
            stats = engine._stats
            engine.record(req, text, time.perf_counter() - start, first_at or 0.0)
            finish = (
                "tool_calls"
                if kind == "call"
                else "stop"
                if stopped or stats.stop_reason in ("eos", "stopped")
                else "length"
            )
            yield sse(chunk(rid, name, {}, finish, usage=_usage(stats)))
            if req.include_usage:
                yield sse(
                    {
                        "id": rid,
                        "object": "chat.completion.chunk",
                        "created": int(time.time()),
                        "model": name,
                        "choices": [],
                        "usage": _usage(stats),
                    }
                )
            yield "data: [DONE]\n\n"
        finally:
            cancelled.set()
            if not worker.done():
                await asyncio.wait({worker}, timeout=30)


def serve(engine: Engine, host: str, port: int, api_key: str | None = None) -> None:
    import uvicorn

    threading.Thread(target=engine.load, daemon=True).start()
    uvicorn.run(create_app(engine, api_key=api_key), host=host, port=port, log_level="warning")
