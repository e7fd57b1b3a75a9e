"""Render training examples through the one wire format, with the loss mask.

The text is the base model's chat template applied to the example (tools in the system message,
calls in canonical form), exactly as the runtime renders a conversation. The mask marks what the
model learns to write:

- "assistant": every assistant message, calls and answers, with its end-of-turn marker;
- "calls": the assistant messages that call tools, whole, and the first token of the others (the
  decision to answer): a tool-calling adapter that leaves the wording of answers to the base
  model (the shipped general adapter);
- "selector": the decision to call (the call marker, or the first token of a plain answer: the
  "no tool" choice) and the tool names (DualTune's tool-selector adapter);
- "arguments": the argument objects of the calls only (DualTune's argument adapters); with
  `only_tool`, the arguments of that tool's calls only (one adapter per tool);
- "answer": the answers after tool results, with the conversation shown as the agent shows it
  to the model that answers (`wireformat.answer_view`: results folded into the request, no tool
  schemas): the answer adapter (edgeagent.train.answers).

Spans are found by rendering the conversation up to each assistant message with and without it,
so any prefix-stable chat template works; a template that is not prefix-stable is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from edgeagent.train.data import Example
from edgeagent.wireformat import (
    CALL_OPEN,
    RESULTS_HEADER,
    ChatRenderer,
    Message,
    answer_view,
    call_spans,
    template_messages,
)

MaskKind = Literal["assistant", "calls", "selector", "arguments", "answer"]
IGNORE = -100  # the label transformers' loss ignores

#: text -> [(token id, start character, end character)]
OffsetTokenizer = Callable[[str], list[tuple[int, int, int]]]


@dataclass(frozen=True)
class Rendered:
    text: str
    spans: list[tuple[int, int]]  # character spans to learn

    def learned_text(self) -> str:
        return "".join(self.text[a:b] for a, b in self.spans)


def render_example(
    example: Example,
    renderer: ChatRenderer,
    mask: MaskKind = "assistant",
    only_tool: str | None = None,
) -> Rendered:
    if mask == "answer":
        example = Example([], answer_view(example.messages), example.instructions)
    msgs = example.messages
    full = renderer.render(_tm(msgs, example), add_generation_prompt=False)
    spans: list[tuple[int, int]] = []
    for i, msg in enumerate(msgs):
        if msg.role != "assistant":
            continue
        before = renderer.render(_tm(msgs[:i], example), add_generation_prompt=True)
        upto = renderer.render(_tm(msgs[: i + 1], example), add_generation_prompt=False)
        if not (upto.startswith(before) and full.startswith(upto)):
            raise ValueError("the chat template is not prefix-stable; cannot locate the replies")
        if mask == "answer":
            if i and RESULTS_HEADER in msgs[i - 1].content:  # an answer to folded results
                spans.append((len(before), len(upto)))
        elif mask == "assistant" or (mask == "calls" and msg.calls):
            spans.append((len(before), len(upto)))
        elif msg.calls:
            spans += _call_spans(full, len(before), msg, mask, only_tool)
        elif mask in ("selector", "calls"):
            spans.append((len(before), len(before) + 1))  # "no tool": the answer's first token
    return Rendered(full, spans)


def _tm(messages: Sequence[Message], example: Example) -> list[dict[str, str]]:
    return template_messages(list(messages), example.tools, example.instructions)


def _call_spans(
    text: str, start: int, msg: Message, mask: MaskKind, only_tool: str | None
) -> list[tuple[int, int]]:
    """Spans of the call marker and names (selector) or of the argument objects (arguments) in
    a canonical call list."""
    spans = [(start, start + len(CALL_OPEN))] if mask == "selector" else []
    for call, found in zip(msg.calls, call_spans(text, start, msg.calls), strict=True):
        if mask == "selector":
            spans.append(found.name)
        if mask == "arguments" and only_tool in (None, call.name):
            spans.append(found.arguments)
    return spans


def tokenize_with_mask(
    rendered: Rendered, tokenize: OffsetTokenizer
) -> tuple[list[int], list[int]]:
    """(input ids, labels): labels are the ids of the tokens that overlap a learned span, IGNORE
    elsewhere. Overlap, not "starts inside": BPE glues a space to what follows (` {"`), and the
    model must learn to write that token even though the space is outside the span."""
    ids, labels = [], []
    for token, start, end in tokenize(rendered.text):
        ids.append(token)
        inside = any(start < b and max(end, start + 1) > a for a, b in rendered.spans)
        labels.append(token if inside else IGNORE)
    return ids, labels


def llama_offset_tokenizer(model_path: str) -> OffsetTokenizer:
    """Tokens with byte offsets from a GGUF file's own vocabulary (llama.cpp, no weights)."""
    import llama_cpp

    vocab = llama_cpp.Llama(model_path, vocab_only=True, verbose=False)

    def tokenize(text: str) -> list[tuple[int, int, int]]:
        char_at = [i for i, ch in enumerate(text) for _ in ch.encode("utf-8")] + [len(text)]
        out, pos = [], 0
        for token in vocab.tokenize(text.encode("utf-8"), add_bos=False, special=True):
            piece = vocab.detokenize([token], special=True)
            end = min(pos + len(piece), len(char_at) - 1)
            out.append((token, char_at[min(pos, len(char_at) - 1)], char_at[end]))
            pos += len(piece)
        return out

    return tokenize


def hf_offset_tokenizer(tokenizer: Any) -> OffsetTokenizer:
    """Tokens with character offsets from a Hugging Face fast tokenizer (no BOS added: the chat
    template writes what the model needs)."""

    def tokenize(text: str) -> list[tuple[int, int, int]]:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return [
            (t, a, b) for t, (a, b) in zip(enc["input_ids"], enc["offset_mapping"], strict=True)
        ]

    return tokenize
