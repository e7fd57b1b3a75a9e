"""Errors a user can act on. Each message says what went wrong and what to do next."""

from __future__ import annotations


class EdgeAgentError(Exception):
    """Base class: the CLI prints these as one message, without a traceback."""

    hint: str = ""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\n  hint: {self.hint}" if self.hint else text


class ModelFileError(EdgeAgentError):
    """A model file is missing, truncated or not a GGUF file."""


class ModelNotFoundError(EdgeAgentError):
    """The embedded default model's package is not installed."""


class ToolDefinitionError(EdgeAgentError):
    """A Python function cannot be turned into a tool (e.g. an unsupported annotation)."""


class ContextOverflowError(EdgeAgentError):
    """The prompt does not fit the model's context window."""


class GrammarError(EdgeAgentError):
    """A tool schema could not be turned into a grammar."""


class Interrupted(Exception):
    """A generation stopped by `Agent.interrupt()`; the turn is taken back."""
