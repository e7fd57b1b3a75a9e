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
from collections.abc import Generator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from edgeagent.backends import AdapterSwitching, GenerationStats, PromptCaching, SamplingParams
from edgeagent.context import split_turns
from edgeagent.decoupled import two_phase
from edgeagent.errors import Interrupted
from edgeagent.tools import Tool, is_failure
from edgeagent.wireformat import answer_view, reply_kind

if TYPE_CHECKING:
    from edgeagent.agent import Agent, Session

#: the name the single adapter is loaded under in the backend
ADAPTER = "adapter"
#: the name the answer adapter (answers after tool results) is loaded under
ANSWERS = "answers"
#: the name the recovery adapter (the step after a tool error) is loaded under
RECOVERY = "recovery"


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
        yield from agent.backend.generate(
            r.prompt, grammar=grammar, sampling=r.sampling(agent), max_tokens=r.max_tokens,
            stats=r.stats,
        )  # fmt: skip

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
