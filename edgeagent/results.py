"""What a turn returns: the calls it ran, the answer, token counts and timings, and the events
a streamed turn yields on the way. Data only: the terminal app and the CLI read these fields."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from edgeagent.wireformat import ToolCall

#: "ran": the tool ran and returned; "error": it raised, or its arguments were refused;
#: "declined": it has side effects and was not allowed, or the user said no
CallStatus = Literal["ran", "error", "declined"]


@dataclass
class ToolCallRecord:
    """One executed call: what the model asked for and what came back."""

    name: str
    arguments: dict[str, Any]
    result: str
    ok: bool
    error: str | None = None
    duration_s: float = 0.0
    status: CallStatus | None = None  # None: "ran" when ok, else "error"

    def __post_init__(self) -> None:
        if self.status is None:
            self.status = "ran" if self.ok else "error"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Usage:
    prompt_tokens: int = 0
    cached_tokens: int = 0  # of prompt_tokens, reused from the KV cache
    completion_tokens: int = 0
    generations: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_tokens": self.total_tokens}


@dataclass
class Timings:
    total_s: float = 0.0
    ttft_s: float = 0.0  # from the call until the first generated text
    prompt_eval_s: float = 0.0
    decode_s: float = 0.0
    tools_s: float = 0.0

    def decode_tokens_per_s(self, tokens: int) -> float:
        return tokens / self.decode_s if self.decode_s > 0 else 0.0


@dataclass
class RunResult:
    answer: str
    tool_calls: list[ToolCallRecord]
    usage: Usage
    timings: Timings
    steps: int = 0
    duplicates_dropped: int = 0  # repeated calls cut from the model's replies
    hit_step_limit: bool = False
    problems: list[str] = field(default_factory=list)  # replies that could not be used
    #: how sure the model was of the turn's first reply (edgeagent.confidence); None: unknown
    confidence: float | None = None
    abstained: bool = False  # too unsure to call (Agent.min_confidence): nothing ran
    escalated: bool = False  # the first reply came from the fallback model (Agent.fallback)
    escalation_error: str | None = None  # why the fallback was asked and could not help

    @property
    def decode_tokens_per_s(self) -> float:
        """Tokens after each generation's first one, over the time after the first one."""
        decoded = self.usage.completion_tokens - self.usage.generations
        return self.timings.decode_tokens_per_s(decoded)

    def to_dict(self) -> dict[str, Any]:
        timings = asdict(self.timings)
        timings["decode_tokens_per_s"] = round(self.decode_tokens_per_s, 2)
        return {
            "answer": self.answer,
            "tool_calls": [c.to_dict() for c in self.tool_calls],
            "usage": self.usage.to_dict(),
            "timings": timings,
            "steps": self.steps,
            "duplicates_dropped": self.duplicates_dropped,
            "hit_step_limit": self.hit_step_limit,
            "problems": self.problems,
            "confidence": self.confidence,
            "abstained": self.abstained,
            "escalated": self.escalated,
            "escalation_error": self.escalation_error,
        }


# Streaming events, in the order they happen.
@dataclass(frozen=True)
class TextDelta:
    text: str
    kind: str  # "answer" or "call": what the reply turned out to be


@dataclass(frozen=True)
class ToolCallStarted:
    call: ToolCall


@dataclass(frozen=True)
class ToolCallFinished:
    record: ToolCallRecord


@dataclass(frozen=True)
class RunFinished:
    result: RunResult


Event = TextDelta | ToolCallStarted | ToolCallFinished | RunFinished
