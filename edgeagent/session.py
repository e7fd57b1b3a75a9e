"""The loop of one conversation: prompt -> (tool calls -> tool results)* -> answer.

Every call the loop executes was admitted by the grammar and validated by the tool's pydantic
model; a failing tool's error goes back to the model as the tool result. The last allowed step
admits only an answer, so a loop that does not converge still ends with one. The turn's first
reply carries the model's confidence: below the agent's min_confidence a call is not made, or
the turn goes to the fallback model (edgeagent.fallback); every turn can be traced.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
import warnings
from collections.abc import Generator
from typing import TYPE_CHECKING

from edgeagent.backends import GenerationStats, Interruptible
from edgeagent.confidence import PROBE_TOKENS, reply_confidence
from edgeagent.context import ContextWindow
from edgeagent.errors import ContextOverflowError
from edgeagent.fallback import FallbackError
from edgeagent.replies import Request
from edgeagent.results import (
    Event,
    RunFinished,
    RunResult,
    TextDelta,
    Timings,
    ToolCallFinished,
    ToolCallRecord,
    ToolCallStarted,
    Usage,
)
from edgeagent.tools import Tool
from edgeagent.wireformat import CallStream, Message, Reply, ToolCall, parse_reply, reply_kind

if TYPE_CHECKING:
    from edgeagent.agent import Agent

#: What the agent answers when it is too unsure of a call to make it (min_confidence).
ABSTAIN_ANSWER = (
    "I'm not sure which of my tools fits that, so I did nothing. Could you say it another way?"
)

#: A prompt must leave at least this many tokens of the context for the reply.
MIN_REPLY_TOKENS = 32


class Session:
    """A multi-turn conversation with an agent. Turns reuse the KV cache of the shared prefix
    (system prompt, tool schemas, earlier turns), so only the new turn is evaluated."""

    def __init__(self, agent: Agent, session_id: str | None = None) -> None:
        self.agent = agent
        self.id = session_id or uuid.uuid4().hex[:12]
        self.messages: list[Message] = []
        #: every call executed in this conversation, in the order of its "tool" messages
        self.records: list[ToolCallRecord] = []
        self.window = ContextWindow(agent.memory, self.id, agent.window_settings)
        #: tokens of the context the last reply was generated in: its prompt and the reply
        self.context_tokens = 0

    def send(self, prompt: str) -> RunResult:
        for event in self.stream(prompt):
            if isinstance(event, RunFinished):
                return event.result
        raise RuntimeError("the run ended without a result")  # pragma: no cover

    def stream(self, prompt: str) -> Generator[Event, None, None]:
        """Run one user turn, yielding text as it is generated and each tool call as it runs."""
        agent = self.agent
        agent._interrupt.clear()
        if isinstance(agent._backend, Interruptible):
            agent._backend.clear_interrupt()
        start = time.perf_counter()
        checkpoint, records_checkpoint = len(self.messages), len(self.records)
        recalled = self.window.recall(prompt)
        self.messages.append(Message("user", prompt, recalled=recalled))
        tools = agent.tools_for(prompt)
        usage, timings = Usage(), Timings()
        records: list[ToolCallRecord] = []
        answer, duplicates, hit_limit, steps = "", 0, False, 0
        executed: list[ToolCall] = []
        problems: list[str] = []
        force_answer, abstained, escalated = False, False, False
        confidence: float | None = None
        escalation_error: str | None = None
        try:
            for step in range(agent.max_steps):
                steps = step + 1
                allow_answer, allow_calls = (
                    (True, False) if force_answer else agent.reply_kinds(step, tools)
                )
                text, stats, stream = "", GenerationStats(), CallStream()
                if step == 0 and agent.constrained:  # the turn's decision: how sure was it?
                    stats.probe_tokens = PROBE_TOKENS
                kind = ""
                with agent._lock:
                    agent._check_interrupt()
                    pieces = self._generate(tools, allow_answer, allow_calls, stats)
                    try:
                        for piece in pieces:
                            agent._check_interrupt()
                            if not timings.ttft_s:
                                timings.ttft_s = time.perf_counter() - start
                            keep_going = stream.feed(piece)
                            # under the grammar an answer never starts with '<'
                            kind = kind or ("answer" if reply_kind(stream.text) == "answer"
                                            else "call")  # fmt: skip
                            yield TextDelta(piece, kind)
                            if not keep_going:
                                break
                    finally:
                        pieces.close()  # stops generation; the backend records its timings
                    text = stream.text
                self._account(usage, timings, stats)
                self.context_tokens = stats.prompt_tokens + stats.completion_tokens
                reply = parse_reply(text, tools if agent.constrained else agent.tools)
                if step == 0:
                    confidence = reply_confidence(stats, text)
                    failed = bool(reply.problems) or (
                        reply_kind(text) == "call" and not reply.is_call
                    )
                    if agent.fallback and (agent.unsure(confidence) or failed):
                        try:
                            reply, escalated = self._escalate(tools, allow_answer), True
                        except FallbackError as exc:
                            escalation_error = str(exc.args[0])
                    if reply.is_call and agent.unsure(confidence) and not escalated:
                        # too unsure to act: run nothing, say so (the caller may escalate)
                        answer, abstained = ABSTAIN_ANSWER, True
                        self.messages.append(Message("assistant", answer))
                        break
                duplicates += reply.duplicates_dropped + stream.repeated + stats.calls_dropped
                if stream.looped:
                    problems.append(f"reply {steps}: cut where it began repeating itself")
                problems += [f"reply {steps}: {p}" for p in reply.problems]
                if reply_kind(text) == "call" and not reply.is_call:
                    # A call cut off by max_tokens (or malformed, without the grammar): nothing
                    # to run, and its text is no answer. Ask for the answer instead.
                    problems.append(f"reply {steps}: incomplete call ({stats.stop_reason})")
                    force_answer = True
                    continue
                if not reply.is_call:
                    answer = reply.text
                    self.messages.append(Message("assistant", answer))
                    agent.replies.after_answer(self, tools)
                    break
                fresh = [c for c in reply.calls if c not in executed]
                if not fresh:
                    # Every call repeats one already run in this turn: its result is in the
                    # context already, so the model is looping. Ask for the answer instead.
                    duplicates += len(reply.calls)
                    force_answer = True
                    continue
                duplicates += len(reply.calls) - len(fresh)
                executed += fresh
                self.messages.append(Message("assistant", calls=fresh))
                for call in fresh:
                    yield ToolCallStarted(call)
                    agent._check_interrupt()
                    record = self._execute(call)
                    timings.tools_s += record.duration_s
                    records.append(record)
                    self.records.append(record)
                    self.messages.append(Message("tool", record.result, name=call.name))
                    yield ToolCallFinished(record)
            else:
                hit_limit = True
        except BaseException:
            # a failed or cancelled turn leaves the conversation as it was
            del self.messages[checkpoint:]
            del self.records[records_checkpoint:]
            raise
        timings.total_s = time.perf_counter() - start
        result = RunResult(answer, records, usage, timings, steps, duplicates, hit_limit, problems,
                           confidence, abstained, escalated, escalation_error)  # fmt: skip
        self._trace(result, tools, prompt)
        yield RunFinished(result)

    def _generate(
        self, tools: list[Tool], allow_answer: bool, allow_calls: bool, stats: GenerationStats
    ) -> Generator[str, None, None]:
        agent = self.agent
        backend = agent.backend
        rendered: dict[int, list[int]] = {}

        def count(messages: list[Message]) -> int:
            rendered[len(messages)] = backend.tokenize(agent.render(messages, tools))
            return len(rendered[len(messages)])

        reserve = max(min(agent.max_tokens, backend.n_ctx // 4), MIN_REPLY_TOKENS)
        self.window.fit(self.messages, count, backend.n_ctx - reserve)
        visible = self.window.visible(self.messages)
        prompt = rendered.get(len(visible)) or backend.tokenize(agent.render(visible, tools))
        room = backend.n_ctx - len(prompt)
        if room < MIN_REPLY_TOKENS:
            raise ContextOverflowError(
                f"the conversation needs {len(prompt)} tokens but the context holds "
                f"{backend.n_ctx}, and {MIN_REPLY_TOKENS} must stay free for the reply",
                hint="shorten the prompt, offer fewer tools, or raise n_ctx",
            )
        max_tokens = min(agent.max_tokens, room)
        # the turn's first reply answers the user's message; later ones follow tool results
        first = not self.messages or self.messages[-1].role != "tool"
        request = Request(prompt, tools, allow_answer, allow_calls, max_tokens, stats, first)
        yield from agent.replies.generate(self, request)

    def _escalate(self, tools: list[Tool], allow_answer: bool) -> Reply:
        """The fallback model's reply to this turn, its calls checked against the offered
        tools' schemas (they then run through the same permission rules as any call)."""
        agent = self.agent
        assert agent.fallback is not None
        answer, calls = agent.fallback.ask(self.messages, agent.instructions, tools, allow_answer)
        offered = {t.name: t for t in tools}
        for call in calls:
            tool = offered.get(call.name)
            if tool is None:
                raise FallbackError(f"the fallback called {call.name}, which is not offered")
            try:
                tool.validate(call.arguments)
            except Exception as exc:  # the tool's own validation error, whatever its type
                why = f"the fallback's call to {call.name} is not valid: {exc}"
                raise FallbackError(why) from None
        if not calls and not answer.strip():
            raise FallbackError("the fallback's reply is empty")
        return Reply("" if calls else answer, calls[: agent.max_calls])

    def _trace(self, result: RunResult, tools: list[Tool], prompt: str) -> None:
        tracer = self.agent.tracer
        if tracer is None:
            return
        try:
            tracer.record_run(
                result, source=self.agent.trace_source, model=self.agent.backend.model_path,
                adapter=self.agent.adapter, tools=[t.name for t in tools], prompt=prompt,
            )  # fmt: skip
        except sqlite3.Error as exc:  # the turn is done; a trace that cannot be written says so
            warnings.warn(f"trace not written: {exc}", stacklevel=2)

    def _execute(self, call: ToolCall) -> ToolCallRecord:
        tool = self.agent._tool_map.get(call.name)
        if tool is None:  # only possible without the grammar
            error = f"unknown tool {call.name!r}; the tools are: {', '.join(self.agent._tool_map)}"
            return ToolCallRecord(call.name, call.arguments, error, False, error)
        refusal = self.agent.refusal(call, tool)
        if refusal:
            result = refusal[:1].upper() + refusal[1:] + "."
            return ToolCallRecord(
                call.name, call.arguments, result, False, refusal, status="declined"
            )
        outcome = tool.invoke(call.arguments, max_chars=self.agent.max_result_chars)
        return ToolCallRecord(
            call.name,
            call.arguments,
            outcome.content,
            outcome.ok,
            outcome.error,
            outcome.duration_s,
        )

    @staticmethod
    def _account(usage: Usage, timings: Timings, stats: GenerationStats) -> None:
        usage.prompt_tokens += stats.prompt_tokens
        usage.cached_tokens += stats.cached_tokens
        usage.completion_tokens += stats.completion_tokens
        usage.generations += 1
        timings.prompt_eval_s += stats.prompt_eval_s
        timings.decode_s += stats.decode_s
