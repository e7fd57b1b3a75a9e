"""An agent: a model, its tools and the settings of the loop (the loop itself, one turn of a
conversation, is edgeagent.session).

    from edgeagent import Agent, tool

    @tool
    def set_timer(minutes: int, label: str = "") -> str:
        "Start a countdown timer."

    agent = Agent(tools=[set_timer])            # embedded default model, llama.cpp backend
    result = agent.run("Start a 12 minute timer for the pasta")
    result.answer, result.tool_calls, result.usage, result.timings
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Generator, Iterable
from pathlib import Path
from typing import Any, Literal

from edgeagent.backends import (
    AdapterSwitching,
    Backend,
    Interruptible,
    SamplingParams,
    open_backend,
)
from edgeagent.confidence import SHIPPED_CALL_THRESHOLD
from edgeagent.context import WindowSettings
from edgeagent.decoupled import DecoupledAdapters
from edgeagent.errors import Interrupted
from edgeagent.fallback import Fallback
from edgeagent.grammar import DEFAULT_MAX_STRING_CHARS
from edgeagent.grammarset import GrammarKey, GrammarSet
from edgeagent.memory import Embedder, MemoryIndex
from edgeagent.models import DEFAULT, is_default_adapter, resolve_adapter, resolve_companions
from edgeagent.pruning import ToolIndex
from edgeagent.replies import (
    AdapterCalls,
    Decoupled,
    OneModel,
    Replies,
    loaded_adapters,
)
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
from edgeagent.session import Session
from edgeagent.tools import DEFAULT_MAX_RESULT_CHARS, Tool, collect_tools
from edgeagent.traces import Tracer
from edgeagent.wireformat import (
    DEFAULT_MAX_CALLS,
    ChatRenderer,
    Message,
    ToolCall,
    template_messages,
)

#: "auto": the model answers or calls tools; "required": its first reply must call a tool;
#: "none": it only answers. Small base models rarely choose to call on their own (docs).
ToolChoice = Literal["auto", "required", "none"]
#: Asked before a tool with side effects ("write" or "external") runs; False declines the call.
Confirm = Callable[[ToolCall, Tool], bool]
#: Tools with side effects that run without asking: their names, or "all" (a trusted script).
Allow = Iterable[str] | Literal["all"]


class Agent:
    """A model, a set of tools and the settings of the loop. Cheap to create: the model loads on
    first use. Sessions share the model; generations are serialized by a lock."""

    def __init__(
        self,
        tools: Iterable[Any] = (),
        *,
        model: str | Path | None = None,
        adapter: str | Path | None = DEFAULT,
        answer_adapter: str | Path | None = DEFAULT,
        recovery_adapter: str | Path | None = DEFAULT,
        decoupled: str | Path | None = None,
        backend: Backend | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        instructions: str | None = None,
        max_steps: int = 4,
        max_tokens: int = 256,
        max_calls: int = DEFAULT_MAX_CALLS,
        propose_calls: bool = True,
        max_string_chars: int = DEFAULT_MAX_STRING_CHARS,
        max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
        sampling: SamplingParams | None = None,
        constrained: bool = True,
        tool_choice: ToolChoice = "auto",
        memory: MemoryIndex | str | Path | None = None,
        memory_embedder: Embedder | None = None,
        window: WindowSettings | None = None,
        max_tools: int = 12,
        tool_k: int = 5,
        tool_embedder: Embedder | None = None,
        grammars: dict[GrammarKey, str] | None = None,
        base_answers: bool | None = None,
        confirm: Confirm | None = None,
        allow: Allow = (),
        min_confidence: float = 0.0,
        call_threshold: float | None = None,
        fallback: Fallback | None = None,
        trace: str | Path | Tracer | None = None,
        trace_content: bool = False,
    ) -> None:
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        if tool_choice not in ("auto", "required", "none"):
            raise ValueError(f"tool_choice must be auto, required or none, not {tool_choice!r}")
        self.tools: list[Tool] = collect_tools(tools)
        self._tool_map = {t.name: t for t in self.tools}
        self.model = model
        # DualTune: a selector adapter, then the chosen tool's argument adapter, per reply
        self.decoupled = DecoupledAdapters.load(decoupled) if decoupled else None
        # The shipped general adapter, on the embedded model only. It decides whether and how
        # to call (trained with the "calls" mask); answers are the base model's own words.
        # (base_answers None: so for the shipped adapter, which was trained on calls only)
        self._base_answers = adapter == DEFAULT if base_answers is None else base_answers
        if adapter == DEFAULT and (self.decoupled or backend):
            adapter = None
        if backend:  # a backend given has loaded what it has: name them explicitly
            answer_adapter = None if answer_adapter == DEFAULT else answer_adapter
            recovery_adapter = None if recovery_adapter == DEFAULT else recovery_adapter
        # a GGUF LoRA adapter applied on the model (edgeagent export lora); None: the bare model
        self.adapter = resolve_adapter(adapter, model)
        # beside an adapter whose answers are written apart from its calls: the adapter that
        # writes the answer after tool results (edgeagent.train.answers; None: the base model),
        # and the one that takes the step after a tool error (call again, or answer), trained
        # on errors and kept off every first call (edgeagent.replies)
        self.answer_adapter, self.recovery_adapter = resolve_companions(
            answer_adapter, recovery_adapter, self.adapter, self._base_answers
        )
        if self.decoupled and adapter:
            raise ValueError("give either adapter or decoupled adapters, not both")
        if self.decoupled and backend is not None and not isinstance(backend, AdapterSwitching):
            raise ValueError("decoupled adapters need a backend that switches adapters (llama.cpp)")
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.instructions = instructions
        self.max_steps = max_steps
        self.max_tokens = max_tokens
        self.max_calls = max_calls
        #: after the first reply's calls, ask the model for one more while the request grounds
        #: each (edgeagent.replies.propose_calls; it is what makes two calls of one request)
        self.propose_calls = propose_calls
        self.max_string_chars = max_string_chars
        self.max_result_chars = max_result_chars
        self.sampling = sampling or SamplingParams()
        if call_threshold is None:  # calibrated for the shipped adapter; others: as sampled
            shipped = bool(self.adapter and self._base_answers and is_default_adapter(self.adapter))
            call_threshold = SHIPPED_CALL_THRESHOLD if shipped and constrained else 0.0
        # a first reply begins a call only at this P(call) or above, else it answers
        self.sampling = dataclasses.replace(self.sampling, call_threshold=call_threshold)
        self.constrained = constrained
        self.tool_choice: ToolChoice = tool_choice
        self.window_settings = window or WindowSettings()
        # More tools than max_tools: each turn offers only the tool_k best matches (pruning).
        self.tool_k = tool_k
        self.tool_index = (
            ToolIndex(self.tools, tool_embedder) if len(self.tools) > max_tools else None
        )
        self._memory_arg = memory
        self._memory_embedder = memory_embedder
        self._memory: MemoryIndex | None = memory if isinstance(memory, MemoryIndex) else None
        self._backend = backend
        self._renderer: ChatRenderer | None = None
        # precompiled grammars (a bundle's grammars.json): a device without llama-cpp-python's
        # JSON-Schema converter runs on these
        self.grammars = GrammarSet(max_calls, max_string_chars, grammars)
        # A tool with side effects runs only if it is allowed or the user says yes; with
        # neither it is declined. The model reads tool results, and a result's text must not
        # be able to make it act (docs/security.md).
        #: asked before each call of a tool with side effects that `allow` does not name
        self.confirm = confirm
        #: a first reply that calls with less confidence than this runs nothing and abstains
        #: (edgeagent.confidence; 0: never)
        self.min_confidence = min_confidence
        #: an OpenAI-compatible server asked when the first reply is unsure or unusable
        self.fallback = fallback
        #: what a trace calls this agent (from_deployment: the slot it runs)
        self.trace_source = "agent"
        #: one record per turn (edgeagent.traces); None: nothing recorded
        self.tracer = (
            trace if isinstance(trace, Tracer) or trace is None
            else Tracer(trace, content=trace_content)
        )  # fmt: skip
        self.allow: frozenset[str] | Literal["all"] = "all" if allow == "all" else frozenset(allow)
        if self.allow != "all" and (unknown := self.allow - self._tool_map.keys()):
            raise ValueError(f"allow names tools the agent does not have: {sorted(unknown)}")
        self.replies: Replies = (
            Decoupled()
            if self.decoupled
            else AdapterCalls()
            if self.adapter and self._base_answers and constrained
            else OneModel()
        )
        self._lock = threading.Lock()
        self._interrupt = threading.Event()
        if constrained:  # build the grammars now: a schema they cannot express fails here
            for t in self.tools:
                self.grammar(allow_answer=True, allow_calls=True, tools=[t])

    def unsure(self, confidence: float | None) -> bool:
        """Below min_confidence (a backend that cannot tell is taken at its word)."""
        return confidence is not None and confidence < self.min_confidence

    def refusal(self, call: ToolCall, tool: Tool) -> str | None:
        """Why this call may not run, or None: read-only and allowed tools run; the others
        need a yes from `confirm`."""
        if tool.effects == "read" or self.allow == "all" or tool.name in self.allow:
            return None
        if self.confirm is None:
            return (
                f"{call.name} was not run: it has side effects ({tool.effects}) and this agent "
                "has no way to ask the user (give it confirm= or allow=)"
            )
        if not self.confirm(call, tool):
            return f"the user declined to run {call.name}"
        return None

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            adapters = loaded_adapters(self.adapter, self.answer_adapter, self.recovery_adapter)
            if self.decoupled:
                adapters = dict(self.decoupled.backend_adapters())
            self._backend = open_backend(
                self.model, n_ctx=self.n_ctx, n_threads=self.n_threads, adapters=adapters
            )
        return self._backend

    @property
    def memory(self) -> MemoryIndex:
        """The memory index evicted turns go to and recall comes from: in-process by default, a
        file when `memory` is a path. Keyword search unless `memory_embedder` is given: the
        default model's own embeddings lower recall when fused in (docs/benchmarks.md)."""
        if self._memory is None:
            where = self._memory_arg
            path = ":memory:" if where is None or isinstance(where, MemoryIndex) else where
            self._memory = MemoryIndex(Path(path).expanduser(), self._memory_embedder)
        return self._memory

    @property
    def renderer(self) -> ChatRenderer:
        if self._renderer is None:
            bos, eos = self.backend.special_tokens()
            self._renderer = ChatRenderer(self.backend.chat_template(), bos, eos)
        return self._renderer

    def tools_for(self, request: str) -> list[Tool]:
        """The tools offered for a request: all of them, or the best tool_k when pruning."""
        if self.tool_index is None:
            return self.tools
        return self.tool_index.select(request, self.tool_k)

    def grammar(
        self, allow_answer: bool, allow_calls: bool, tools: list[Tool] | None = None
    ) -> str:
        return self.grammars.get(allow_answer, allow_calls, self.tools if tools is None else tools)

    def reply_kinds(self, step: int, tools: list[Tool] | None = None) -> tuple[bool, bool]:
        """(answer allowed, calls allowed) for the reply at `step`. The last step answers, so a
        loop that does not converge still ends with an answer."""
        if not (self.tools if tools is None else tools) or self.tool_choice == "none":
            return True, False
        if step == 0 and self.tool_choice == "required":
            return False, True
        if step == self.max_steps - 1:
            return True, False
        return True, True

    @classmethod
    def from_bundle(cls, bundle: str | Path, *, dry_run: bool = False, **options: Any) -> Agent:
        """The agent a bundle describes (edgeagent build): its model, adapters, tools and runtime
        settings; `options` override the settings (n_ctx, n_threads, memory, ...). The manifest's
        paths are checked to stay inside the bundle; `edgeagent verify` checks the hashes.
        `dry_run` replaces every tool's function with a stub that runs nothing."""
        from edgeagent.backends.llamacpp import default_threads
        from edgeagent.manifest import inside, load_grammars, read_manifest
        from edgeagent.toolsource import load_tools

        root = Path(bundle)
        m = read_manifest(root)
        source = m.tools if m.tools.startswith("edgeagent.") else str(inside(root, m.tools))
        tools = load_tools(source)
        if dry_run:  # stubs change nothing, so they need no permission
            tools = [dataclasses.replace(t, fn=_dry_run) for t in tools]
            options.setdefault("allow", "all")
        settings: dict[str, Any] = {
            "model": inside(root, m.model),
            "adapter": inside(root, m.adapter) if m.adapter else None,
            "decoupled": inside(root, m.decoupled) if m.decoupled else None,
            "n_ctx": m.n_ctx,
            # the target's threads, but never more than this machine gives the process
            "n_threads": min(m.threads, default_threads()),
        }
        if not {"max_calls", "max_string_chars"} & options.keys():
            settings["grammars"] = load_grammars(root)
        # the shipped general adapter decides calls; the answers are written with it off, after
        # tool results by the bundle's answer adapter (older bundles: the installed one's)
        settings["base_answers"] = m.adapter_kind == "general" and "adapter" not in options
        if m.answer_adapter:
            settings["answer_adapter"] = inside(root, m.answer_adapter)
        if m.recovery_adapter:
            settings["recovery_adapter"] = inside(root, m.recovery_adapter)
        return cls(tools, **{**settings, **options})

    @classmethod
    def from_deployment(
        cls, root: str | Path, *, session_key: str | None = None, **options: Any
    ) -> Agent:
        """The agent of the slot a deployment runs now (edgeagent deploy): its confirmed slot,
        or a canary's for its share of sessions (`session_key` keeps a session on one slot).
        The memory file lives in the deployment's data folder, outside every slot."""
        from edgeagent.slots import data_dir, running_slot

        slot = running_slot(root, session_key)
        if options.get("memory") is None:
            options["memory"] = data_dir(Path(root)) / "memory.db"
        agent = cls.from_bundle(slot, **options)
        agent.trace_source = f"slot {slot.name}"  # stats compare a canary's two slots by this
        return agent

    def derive(self, tools: Iterable[Any], **overrides: Any) -> Agent:
        """An agent with other tools (and settings) on this agent's loaded model: its backend,
        adapter setting and lock are shared (edgeagent serve makes one per request)."""
        if self.decoupled:
            raise ValueError("an agent with decoupled adapters cannot be derived")
        settings: dict[str, Any] = {
            "model": self.model, "adapter": self.adapter, "base_answers": self._base_answers,
            "backend": self.backend, "n_ctx": self.n_ctx, "instructions": self.instructions,
            "max_steps": self.max_steps, "max_tokens": self.max_tokens,
            "max_calls": self.max_calls, "propose_calls": self.propose_calls,
            "max_string_chars": self.max_string_chars,
            "max_result_chars": self.max_result_chars, "sampling": self.sampling,
            "constrained": self.constrained, "tool_choice": self.tool_choice,
            "memory": self._memory_arg, "confirm": self.confirm,
            "min_confidence": self.min_confidence, "answer_adapter": self.answer_adapter,
            "recovery_adapter": self.recovery_adapter,
            "call_threshold": self.sampling.call_threshold,
        }  # fmt: skip
        tools = collect_tools(tools)
        names = {t.name for t in tools}
        settings["allow"] = "all" if self.allow == "all" else self.allow & names
        agent = Agent(tools, **{**settings, **overrides})
        agent._renderer, agent._lock = self._renderer, self._lock
        return agent

    def interrupt(self) -> None:
        """Stop the turn running now, from any thread: its stream raises Interrupted at the
        next prompt batch, token or tool call, and the turn is taken back. A tool already
        running finishes first."""
        self._interrupt.set()
        if isinstance(self._backend, Interruptible):
            self._backend.interrupt()

    def _check_interrupt(self) -> None:
        if self._interrupt.is_set():
            raise Interrupted("the turn was interrupted")

    def session(self, session_id: str | None = None) -> Session:
        return Session(self, session_id)

    def run(self, prompt: str) -> RunResult:
        """One request in a fresh conversation."""
        return self.session().send(prompt)

    def stream(self, prompt: str) -> Generator[Event, None, None]:
        return self.session().stream(prompt)

    def render(
        self,
        messages: list[Message],
        tools: list[Tool] | None = None,
        add_generation_prompt: bool = True,
    ) -> str:
        offered = self.tools if tools is None else tools
        return self.renderer.render(
            template_messages(messages, offered, self.instructions), add_generation_prompt
        )


def _dry_run(**_: Any) -> str:
    return "ok (dry run: the tool was not executed)"


__all__ = [
    "Agent",
    "Confirm",
    "Event",
    "RunFinished",
    "RunResult",
    "Session",
    "TextDelta",
    "Timings",
    "ToolCallFinished",
    "ToolCallRecord",
    "ToolCallStarted",
    "Usage",
]
