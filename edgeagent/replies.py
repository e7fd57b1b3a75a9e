"""How a reply is generated, chosen once per agent from its adapters.

- `OneModel`: the model as loaded (bare, merged, or with one adapter always on) writes calls
  and answers alike.
- `AdapterCalls`: the shipped general adapter (trained on calls only) decides whether and how to
  call, except after a tool error, where the recovery adapter (trained on errors) decides; an
  answer is written by the base model with the adapters off, or after tool results by the
  answer adapter (trained on results -> answers only), when the agent has one. llama.cpp
  keeps one context per adapter setting, so switching keeps the KV caches.
- `Decoupled` (DualTune): a selector adapter picks the tool, that tool's argument adapter
  writes its arguments (edgeagent.decoupled); answers are the base model's.

Each strategy also says what to do after an answer (`after_answer`): the adapter's context
evaluates the finished turn while the user reads, so the next turn starts at once.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from edgeagent.backends import AdapterSwitching, GenerationStats, PromptCaching, SamplingParams
from edgeagent.context import split_turns
from edgeagent.decoupled import two_phase
from edgeagent.errors import Interrupted
from edgeagent.grammar import restrict_values
from edgeagent.grounding import grounded, said_values, unsaid
from edgeagent.tools import Tool, is_failure
from edgeagent.wireformat import (
    CALL_OPEN,
    CALLS_END,
    CallStream,
    Message,
    ToolCall,
    answer_view,
    build_arguments_grammar,
    call_head,
    first_call_end,
    format_calls,
    next_call_grammar,
    parse_reply,
    reply_kind,
)

if TYPE_CHECKING:
    from edgeagent.agent import Agent, Session

#: the name the single adapter is loaded under in the backend
ADAPTER = "adapter"
#: the name the answer adapter (answers after tool results) is loaded under
ANSWERS = "answers"
#: the name the recovery adapter (the step after a tool error) is loaded under
RECOVERY = "recovery"
#: how far below a copy of an earlier call (in logits) a proposal's other token may lie and be
#: taken instead: with no limit the proposal left the copy at its first value, where the model
#: is surest ("crime": "same" for a second "money laundering" search); within 3 it leaves where
#: another value is close ("year": 2018 after 2019), and a sure copy is written and dropped
PROPOSAL_COPY_MARGIN = 3.0


def loaded_adapters(
    adapter: Path | None, answers: Path | None, recovery: Path | None
) -> dict[str, str | Path]:
    """The adapters a backend loads for an agent, under the names the strategies switch by."""
    named = {ADAPTER: adapter, ANSWERS: answers, RECOVERY: recovery}
    return {name: path for name, path in named.items() if path}


@dataclass
class Request:
    """One reply to generate: the prompt's tokens, the tools offered, what the reply may be."""

    prompt: list[int]
    tools: list[Tool]
    allow_answer: bool
    allow_calls: bool
    max_tokens: int
    stats: GenerationStats
    #: the turn's first reply: the call threshold applies (it was calibrated on first decisions,
    #: whether a request needs a tool at all; after tool results it held back the calls the
    #: recovery adapter makes with the value an error suggests)
    first: bool = True

    def only_answer(self) -> Request:
        return replace(self, allow_answer=True, allow_calls=False)

    def sampling(self, agent: Agent) -> SamplingParams:
        if self.first or not agent.sampling.call_threshold:
            return agent.sampling
        return replace(agent.sampling, call_threshold=0.0)


class Replies(Protocol):
    def generate(self, session: Session, r: Request) -> Generator[str, None, None]: ...

    def after_answer(self, session: Session, tools: list[Tool]) -> None: ...


class OneModel:
    def generate(self, session: Session, r: Request) -> Generator[str, None, None]:
        agent = session.agent
        warm_start(session, r.tools)
        grammar = (
            agent.grammar(r.allow_answer, r.allow_calls, r.tools) if agent.constrained else None
        )
        sampling = r.sampling(agent)
        pieces = agent.backend.generate(
            r.prompt, grammar=grammar, sampling=sampling, max_tokens=r.max_tokens, stats=r.stats
        )
        if not (agent.constrained and r.allow_calls):
            yield from pieces
            return
        yield from asked_calls(agent, r, user_request(session.messages), pieces, sampling)

    def after_answer(self, session: Session, tools: list[Tool]) -> None:
        pass


class AdapterCalls(OneModel):
    def generate(self, session: Session, r: Request) -> Generator[str, None, None]:
        """The reply under the adapter until it shows a call or an answer; a call is finished
        by the adapter, an answer is written again by the base model (adapter off)."""
        backend = switching(session)
        if r.allow_calls:
            # after a tool error the recovery adapter decides: call again with what the error
            # suggests, or answer (its data would teach the call adapter to call too often)
            recover = session.agent.recovery_adapter is not None and after_error(session)
            backend.set_adapters({RECOVERY if recover else ADAPTER: 1.0})
            pieces = super().generate(session, r)
            text = ""
            for piece in pieces:
                text += piece
                # under the grammar a call is known at its first token, not five tokens later
                # at the whole tag (the turn's first text waits for this)
                kind = reply_kind(text, under_grammar=session.agent.constrained)
                if kind == "call":
                    yield text
                    yield from pieces
                    return
                if kind == "answer":
                    break  # the base model writes it
            pieces.close()
        # the answer adapter states results; the base model answers everything else (its data
        # never saw a request without results)
        use = session.agent.answer_adapter is not None and session.messages[-1].role == "tool"
        answer = base_answer(session, r, this_turn=use)
        use = use and answer.prompt is not r.prompt
        backend.set_adapters({ANSWERS: 1.0} if use else {})
        r.stats.probe_tokens = 0  # the decision was the adapter's, probed above
        yield from super().generate(session, answer)

    def after_answer(self, session: Session, tools: list[Tool]) -> None:
        """Evaluate the conversation so far in the adapter's context too: the next turn starts
        there, and would otherwise first evaluate this turn's tool results and answer (up to
        max_tokens of them). The next prompt extends this text, so its cache is reused."""
        agent = session.agent
        backend = agent.backend
        if not isinstance(backend, PromptCaching):
            return
        visible = session.window.visible(session.messages)
        tokens = backend.tokenize(agent.render(visible, tools, add_generation_prompt=False))
        if len(tokens) >= backend.n_ctx:
            return  # the next turn's window evicts first anyway
        with agent._lock:
            switching(session).set_adapters({ADAPTER: 1.0})
            with contextlib.suppress(Interrupted):  # the answer stands; the next turn goes on
                backend.prefill(tokens)


class Decoupled(OneModel):
    def generate(self, session: Session, r: Request) -> Generator[str, None, None]:
        agent = session.agent
        assert agent.decoupled is not None
        if not (r.allow_calls and agent.constrained):
            switching(session).set_adapters({})  # answers: the base model
            # without the grammar the base model may still call: it keeps the tools' prompt
            yield from super().generate(session, r if r.allow_calls else base_answer(session, r))
            return
        visible = session.window.visible(session.messages)
        yield from two_phase(
            agent.backend,
            agent.decoupled,
            agent.render(visible, r.tools),
            r.prompt,
            r.tools,
            allow_answer=r.allow_answer,
            sampling=r.sampling(agent),
            max_tokens=r.max_tokens,
            max_string_chars=agent.max_string_chars,
            stats=r.stats,
        )


def asked_calls(
    agent: Agent,
    r: Request,
    request: str,
    pieces: Iterator[str],
    sampling: SamplingParams,
) -> Generator[str, None, None]:
    """A reply under the grammar, and on the turn's first reply the calls the model writes when
    asked for one more (`propose_calls`). An answer and the first call stream as the model
    writes them; the calls after it are sent once the reply is final (a copy of an earlier call
    is cut, as CallStream does)."""
    stream = CallStream()  # stops at a copy of an earlier call, and cuts it
    sent, first_end = 0, None
    try:
        for piece in pieces:
            if not stream.text and not piece.startswith(CALL_OPEN[: len(piece)]):
                yield piece  # an answer, as it comes
                yield from pieces
                return
            going = stream.feed(piece)
            if first_end is None:
                first_end = first_call_end(stream.text)
                upto = len(stream.text) if first_end is None else first_end
                if upto > sent:
                    yield stream.text[sent:upto]
                    sent = upto
            if not going:
                break
    finally:
        if isinstance(pieces, Generator):  # stops the backend's generation
            pieces.close()
    if first_end is None:  # a call the length limit cut
        return
    written = parse_reply(stream.text, r.tools)
    r.stats.calls_dropped += written.duplicates_dropped + stream.repeated
    calls = written.calls[: agent.max_calls]
    if r.first and agent.propose_calls:
        calls += propose_calls(agent, r, request, calls, sampling)
    more = "".join(", " + json.dumps(c.to_dict(), ensure_ascii=False) for c in calls[1:])
    yield more + CALLS_END


def propose_calls(
    agent: Agent, r: Request, request: str, calls: list[ToolCall], sampling: SamplingParams
) -> list[ToolCall]:
    """Calls the model writes when its reply is continued after `calls` with `, `, steered off
    copies of them, for as long as each is grounded in the request (up to agent.max_calls).
    A small model asked for two things writes one call and ends the list, or writes the first
    again (BFCL parallel: 0.04 without this); asked for one more, it writes the second thing
    asked for, or a made-up call the grounding turns away."""
    if not getattr(agent.backend, "steers_copies", True):
        return []
    found: list[ToolCall] = []
    while len(calls) + len(found) < agent.max_calls:
        so_far = calls + found
        call = _one_more(agent, r, request, so_far, sampling)
        last = next(t for t in r.tools if t.name == so_far[-1].name)
        if call is not None and not call.arguments and last.parameters.get("properties"):
            # a call with no arguments is never kept and tells nothing of whether another was
            # asked for (list_timers() after a timer where two were): given the same tool's
            # name, the model writes the other timer
            call = _one_more(agent, r, request, so_far, sampling, last)
        if call is None or not grounded(call, so_far, request):
            break
        found.append(call)
    return found


def _one_more(
    agent: Agent,
    r: Request,
    request: str,
    so_far: list[ToolCall],
    sampling: SamplingParams,
    tool: Tool | None = None,
) -> ToolCall | None:
    """The call the model writes after `so_far` and `, ` (one call of the offered tools, or
    `tool`'s arguments, and the end of the list); None where it was stopped at a value the
    request does not say."""
    agent._check_interrupt()
    backend = agent.backend
    before = format_calls(so_far)[: -len(CALLS_END)] + ", "
    if tool is None:
        call = ""
        grammar = next_call_grammar(agent.grammar(False, True, r.tools))
    else:  # the name given is read with the prompt, not generated token by token
        call = call_head(tool.name).removesuffix(" ")  # the grammar writes the space
        grammar = build_arguments_grammar(tool, agent.max_string_chars)
    # its values chosen among what the request says (and the earlier calls' values): asked for
    # one more, the model otherwise makes one up ("Istanbul" for "Paris and Tokyo")
    grammar = restrict_values(grammar, *said_values(request, so_far, agent.max_string_chars))
    stats = GenerationStats()
    steer = replace(sampling, call_threshold=0.0, repeated_call_margin=PROPOSAL_COPY_MARGIN,
                    continues=before + call)  # fmt: skip
    pieces = backend.generate(
        r.prompt + backend.tokenize(before + call), grammar=grammar, sampling=steer,
        max_tokens=r.max_tokens, stats=stats,
    )  # fmt: skip
    try:
        for piece in pieces:
            call += piece
            if piece.rstrip().endswith(",") and _unsaid_so_far(call, so_far, request):
                break  # a value written in full that the request does not say: stop here
    finally:
        if isinstance(pieces, Generator):
            pieces.close()
    r.stats.completion_tokens += stats.completion_tokens
    r.stats.decode_s += stats.prompt_eval_s + stats.decode_s
    return next(iter(parse_reply(before + call, r.tools).calls[len(so_far) :]), None)


def _unsaid_so_far(text: str, earlier: list[ToolCall], request: str) -> bool:
    """Whether a proposed call cut after a comma already has a value the request does not say
    (the arguments written in full so far; a comma inside a string or a list tells nothing)."""
    try:
        partial = json.loads(text.rstrip().removesuffix(",") + "}}")
        call = ToolCall(str(partial["name"]), dict(partial["arguments"]))
    except (ValueError, KeyError, TypeError):
        return False
    return bool(unsaid(call, earlier, request))


def user_request(messages: list[Message]) -> str:
    """What the user asked in this turn: the last user message."""
    return next((m.content for m in reversed(messages) if m.role == "user"), "")


def base_answer(session: Session, r: Request, this_turn: bool = False) -> Request:
    """The answer request for the base model (one never trained on our wire format): no tool
    schemas or call instructions in its prompt (with them it wrote code and JSON "calls"), and
    each turn's tool results shown by `answer_view`, where that fits the context.

    `this_turn`: only the turn being answered, for the answer adapter. It was trained on one-turn
    conversations; shown the earlier turns too, it repeated the first turn's answer at every
    later turn."""
    agent = session.agent
    visible = session.window.visible(session.messages)
    if this_turn:
        visible = split_turns(visible)[-1]
    view = answer_view(visible)
    prompt = agent.backend.tokenize(agent.render(view, []))
    if len(prompt) + r.max_tokens > agent.backend.n_ctx:
        return r.only_answer()
    return replace(r.only_answer(), prompt=prompt, tools=[])


def after_error(session: Session) -> bool:
    """Whether the last step's tool results hold an error."""
    for message in reversed(session.messages):
        if message.role != "tool":
            return False
        if is_failure(message.name, message.content):
            return True
    return False


def switching(session: Session) -> AdapterSwitching:
    backend = session.agent.backend
    if not isinstance(backend, AdapterSwitching):
        raise ValueError(f"the {backend.name} backend cannot switch adapters (use llama.cpp)")
    return backend


def warm_start(session: Session, tools: list[Tool]) -> None:
    """A fresh cache starts from the saved state of the system prompt with these tools (every
    session's first ~1,000 tokens), where the backend can save and load states."""
    agent = session.agent
    backend = agent.backend
    if isinstance(backend, PromptCaching) and backend.cached_tokens == 0:
        backend.warm_start(backend.tokenize(agent.render([], tools, add_generation_prompt=False)))
