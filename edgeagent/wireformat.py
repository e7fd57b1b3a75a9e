"""The one tool-call wire format (docs/architecture.md). Nothing else knows what a call looks like.

A reply is either a plain-text answer or a list of calls inside one tag pair:

    <tool_call>[{"name": "set_timer", "arguments": {"minutes": 12, "label": "pasta"}}]</tool_call>

This is the shape SmolLM2's instruct data used for function calling, so the embedded default model
has seen it. The module renders a conversation with tools through the model's own chat template
(tools go into the system message: SmolLM2's template has no tool section), builds the grammar that
admits exactly an answer or a bounded list of schema-valid calls, and parses replies back.

Why the grammar looks the way it does: a 135M model under a "list of calls" grammar tends to
repeat the same call, and rambles inside free strings. So the list holds at most `max_calls`
calls, every string is bounded (edgeagent.grammar), and `CallStream` stops generation as soon as
a call repeats an earlier one in the same reply; the repeat is dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from edgeagent.errors import GrammarError
from edgeagent.grammar import DEFAULT_MAX_STRING_CHARS, gbnf_literal, schema_rules
from edgeagent.tools import Tool, is_failure

CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"
#: the end of a calling reply: the list, then the tag
CALLS_END = "]" + CALL_CLOSE
DEFAULT_MAX_CALLS = 4
# An answer may not start with whitespace (str.isspace() chars) or control characters.
_SPACES = r"\x00-\x20\x7F\x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000"
# A plain-text answer: it cannot start with '<' (a call) or whitespace, and it never writes the
# call tag later on: a '<' is not followed by 't' or another '<'. (Without this a model wrote
# prose, then "<tool_call>[...]", and the parser took it for a call the grammar never checked.)
_ANSWER_RULE = (
    f'answer ::= [^<{_SPACES}] answer-char* "<"?\nanswer-char ::= [^<\\x00] | "<" [^t<\\x00]'
)

Role = Literal["system", "user", "assistant", "tool"]

RECALL_HEADER = "(Recalled from earlier in our conversation:)"

DEFAULT_INSTRUCTIONS = "You are a helpful assistant running on the user's device."

TOOLS_PROMPT = """You can call these tools, listed as JSON in <tools></tools>:
<tools>{tools}</tools>

To call tools, reply with nothing but a JSON list of calls inside <tool_call></tool_call>:
<tool_call>[{{"name": "tool_name", "arguments": {{"argument": "value"}}}}]</tool_call>
Use only the tools and arguments listed. Each call in the list must be different.
When no tool fits, or once the tool results answer the request, reply to the user in plain text."""

# Used when a GGUF file carries no chat template: ChatML, which most small instruct models use.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments}


@dataclass
class Message:
    """One turn of a conversation, in edgeagent's terms (not a template's)."""

    role: Role
    content: str = ""
    calls: list[ToolCall] = field(default_factory=list)  # assistant turns that call tools
    name: str = ""  # tool turns: which tool produced this result
    #: user turns: the memories recalled for this turn (edgeagent.context), each on one line
    recalled: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reply:
    """A parsed model reply: an answer, or calls (never both)."""

    text: str
    calls: list[ToolCall]
    duplicates_dropped: int = 0
    problems: list[str] = field(default_factory=list)  # only possible without the grammar

    @property
    def is_call(self) -> bool:
        return bool(self.calls)


# --------------------------------------------------------------------------- rendering


def format_calls(calls: Sequence[ToolCall]) -> str:
    """The canonical text of a calling reply: what the grammar makes the model write."""
    body = ", ".join(json.dumps(c.to_dict(), ensure_ascii=False) for c in calls)
    return f"{CALL_OPEN}[{body}]{CALL_CLOSE}"


def format_tool_result(name: str, content: str) -> str:
    return json.dumps({"name": name, "result": content}, ensure_ascii=False)


def system_prompt(tools: Sequence[Tool], instructions: str | None = None) -> str:
    text = (instructions or DEFAULT_INSTRUCTIONS).strip()
    if not tools:
        return text
    specs = json.dumps([t.spec() for t in tools], ensure_ascii=False)
    return f"{text}\n\n{TOOLS_PROMPT.format(tools=specs)}"


def template_messages(
    messages: Sequence[Message], tools: Sequence[Tool], instructions: str | None = None
) -> list[dict[str, str]]:
    """Our messages as chat-template messages: a system message with the tools first, calls as
    canonical text, tool results as `tool` messages."""
    out = [{"role": "system", "content": system_prompt(tools, instructions)}]
    for msg in messages:
        if msg.role == "system":
            continue  # the instructions travel in the first system message
        if msg.role == "assistant" and msg.calls:
            out.append({"role": "assistant", "content": format_calls(msg.calls)})
        elif msg.role == "tool":
            out.append({"role": "tool", "content": format_tool_result(msg.name, msg.content)})
        elif msg.role == "user" and msg.recalled:
            memories = "\n".join(f"- {m}" for m in msg.recalled)
            content = f"{RECALL_HEADER}\n{memories}\n\n{msg.content}"
            out.append({"role": "user", "content": content})
        else:
            out.append({"role": msg.role, "content": msg.content})
    return out


#: How a base model (one never trained on our wire format) is shown this turn's tool results
#: when it writes the answer (edgeagent.replies): a plain request with the results beside it.
RESULTS_HEADER = "What the tools returned:"
ANSWER_CUE = "Answer me in one or two short sentences that state these results."


def plain_result(content: str) -> str:
    """A tool result as a small model reads it best: JSON objects as `key: value` pairs, lists
    one item a line, nothing as "nothing found"; text as it is."""
    try:
        value = json.loads(content)
    except ValueError:
        return content.strip() or "nothing found"

    def say(v: Any) -> str:
        if isinstance(v, dict):
            return ", ".join(f"{k}: {say(x)}" for k, x in v.items()) if v else "nothing"
        if isinstance(v, list):
            return "; ".join(say(x) for x in v) if v else "nothing"
        return v if isinstance(v, str) else json.dumps(v)

    if value in ([], {}, None, ""):
        return "nothing found"
    if isinstance(value, list) and len(value) > 1:
        return "".join(f"\n  - {say(item)}" for item in value)
    return say(value[0] if isinstance(value, list) else value)


def answer_view(messages: Sequence[Message]) -> list[Message]:
    """The conversation as a base model reads it best when it answers after tool results: each
    turn's calls and results folded into its user message, as a list and a request to state
    them, followed by that turn's answer. Every turn is shown the way it was when it was
    answered, so the base model's cache of the conversation so far is reused whole (folding only
    the last turn made the previous one look different at every turn: 120-170 tokens again).
    Turns without results stay as they are."""
    view: list[Message] = []
    turn: list[Message] = []
    for message in [*messages, None]:
        if message is not None and message.role != "user":
            turn.append(message)
            continue
        view.extend(_folded(turn))
        turn = [message] if message is not None else []
    return view


def _folded(turn: list[Message]) -> list[Message]:
    """One turn (its user message first) as `answer_view` shows it. An error that a later call
    of the same tool got past (a retry with the value the error suggested) is left out: shown
    it, the answer began "I couldn't do it" before stating the result."""
    results = [m for i, m in enumerate(turn) if m.role == "tool" and not (
        is_failure(m.name, m.content)
        and any(later.role == "tool" and later.name == m.name
                and not is_failure(later.name, later.content) for later in turn[i + 1 :])
    )]  # fmt: skip
    if not turn or turn[0].role != "user" or not results:
        return turn
    ask = turn[0]
    lines = "\n".join(f"- {m.name}: {plain_result(m.content)}" for m in results)
    content = f"{ask.content}\n\n{RESULTS_HEADER}\n{lines}\n\n{ANSWER_CUE}"
    last_result = max(i for i, m in enumerate(turn) if m.role == "tool")
    answers = [m for m in turn[last_result + 1 :] if m.role == "assistant" and not m.calls]
    return [Message("user", content, recalled=ask.recalled), *answers]


class ChatRenderer:
    """Renders conversations through a model's own Jinja chat template (from its GGUF file)."""

    def __init__(self, template: str | None, bos_token: str = "", eos_token: str = "") -> None:
        from jinja2 import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str) -> None:
            raise TemplateError(message)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = raise_exception
        self.template_text = template or CHATML_TEMPLATE
        self._template = env.from_string(self.template_text)
        self._tokens = {"bos_token": bos_token, "eos_token": eos_token}
        self._tool_role_ok: bool | None = None

    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        from jinja2 import TemplateError

        if self._tool_role_ok is not False:
            try:
                text = self._render(messages, add_generation_prompt)
                self._tool_role_ok = True
                return text
            except TemplateError:
                if not any(m["role"] == "tool" for m in messages):
                    raise
                self._tool_role_ok = False
        # Templates that reject a `tool` role (strict user/assistant alternation) get results
        # as user turns.
        remapped = [
            {"role": "user", "content": m["content"]} if m["role"] == "tool" else m
            for m in messages
        ]
        return self._render(remapped, add_generation_prompt)

    def _render(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
        return str(
            self._template.render(
                messages=messages, add_generation_prompt=add_generation_prompt, **self._tokens
            )
        )


# --------------------------------------------------------------------------- grammar


def build_grammar(
    tools: Sequence[Tool],
    *,
    allow_answer: bool = True,
    allow_calls: bool = True,
    max_calls: int = DEFAULT_MAX_CALLS,
    max_string_chars: int = DEFAULT_MAX_STRING_CHARS,
) -> str:
    """GBNF admitting exactly: a plain-text answer (which cannot start with '<' or whitespace),
    or `<tool_call>[...]</tool_call>` with 1..max_calls calls of the offered tools, each with
    arguments valid against that tool's schema."""
    allow_calls = allow_calls and bool(tools)
    if not (allow_answer or allow_calls):
        raise ValueError("the grammar must allow an answer or a call")
    branches = []
    lines = []
    if allow_answer:
        branches.append("answer")
        lines.append(_ANSWER_RULE)
    if allow_calls:
        branches.append("calls")
        more = " ".join(['(", " call'] * (max_calls - 1)) + ")?" * (max_calls - 1)
        lines.append(f'calls ::= "{CALL_OPEN}[" call {more} "]{CALL_CLOSE}"'.replace("  ", " "))
        names = [f"tool{i}" for i in range(len(tools))]
        lines.append("call ::= " + " | ".join(f"{n}-call" for n in names))
        for n, t in zip(names, tools, strict=True):
            head = gbnf_literal(call_head(t.name))
            lines.append(f'{n}-call ::= {head} {n}-args "}}"')
        rules = schema_rules(
            {f"{n}-args": t.parameters for n, t in zip(names, tools, strict=True)},
            max_string_chars,
        )
        for n, t in zip(names, tools, strict=True):
            if f"\n{n}-args ::=" not in "\n" + rules:  # the converter inlines a bare primitive
                raise GrammarError(f"{t.name}: its arguments must be an object schema")
        lines.append(rules)
    return "\n".join([f"root ::= {' | '.join(branches)}", *lines])


def next_call_grammar(calls_grammar: str) -> str:
    """From a calls-only grammar (`build_grammar(..., allow_answer=False)`, built or precompiled):
    one more call of the same tools and the end of the list, the continuation of a calling
    reply after `, ` (edgeagent.replies.propose_calls)."""
    lines = [
        f'calls ::= call "]{CALL_CLOSE}"' if line.startswith("calls ::= ") else line
        for line in calls_grammar.splitlines()
    ]
    if lines[0] != "root ::= calls":
        raise ValueError("next_call_grammar takes a grammar of calls only")
    return "\n".join(lines)


def first_call_end(text: str) -> int | None:
    """Where the first call of a calling reply ends (after its closing brace), once it is whole."""
    if not text.startswith(CALL_OPEN + "["):
        return None
    start = text.find("{", len(CALL_OPEN) + 1)
    if start < 0:
        return None
    try:
        _, end = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError:
        return None
    return end


_NAME_KEY = '{"name": '
#: a decoupled reply's selector phase ends after the tool's name; the argument phase goes on
#: after this
ARGUMENTS_SEP = ', "arguments":'
#: the fixed text of a call list before the first tool's name
SELECT_HEAD = CALL_OPEN + "[" + _NAME_KEY


def call_head(name: str) -> str:
    """The fixed text of a call before its arguments (the canonical form, as rendered)."""
    return _NAME_KEY + json.dumps(name) + ARGUMENTS_SEP + " "


def call_prefix(name: str) -> str:
    """A one-call list up to its arguments, without the space before them (a model writes
    ` {` as one token)."""
    return SELECT_HEAD + json.dumps(name) + ARGUMENTS_SEP


def selected_name(text: str) -> str:
    """The tool name a selector phase wrote: `text` is SELECT_HEAD and a JSON string."""
    return str(json.loads(text[len(SELECT_HEAD) :]))


ReplyKind = Literal["call", "answer", ""]


def reply_kind(text: str, under_grammar: bool = False) -> ReplyKind:
    """What a reply is from its first characters: a call (it opens the call tag), an answer,
    or "" while the text could still become the tag. Under the grammar an answer never starts
    with "<", so there a call is known at its first character."""
    if text.startswith(CALL_OPEN) or (under_grammar and text.startswith("<")):
        return "call"
    return "" if CALL_OPEN.startswith(text) else "answer"


@dataclass(frozen=True)
class CallSpans:
    """Where one call's parts are in a rendered call list: (start, end) offsets."""

    name: tuple[int, int]  # the JSON string of the tool's name
    arguments: tuple[int, int]  # the arguments object


def call_spans(text: str, start: int, calls: Sequence[ToolCall]) -> list[CallSpans]:
    """The spans of each call of a canonical call list rendered at `text[start:]`."""
    if not text.startswith(CALL_OPEN, start):
        raise ValueError("no call list at this offset")
    spans, pos = [], start
    for call in calls:
        head = call_head(call.name)
        at = text.index(head, pos) + len(_NAME_KEY)
        name = (at, at + len(json.dumps(call.name)))
        args_at = text.index(head, pos) + len(head)
        args = json.dumps(call.arguments, ensure_ascii=False)
        spans.append(CallSpans(name, (args_at, args_at + len(args))))
        pos = args_at + len(args)
    return spans


def build_selector_grammar(tools: Sequence[Tool], *, allow_answer: bool = True) -> str:
    """Phase 1 of a decoupled (DualTune) reply: an answer, or the call marker and one offered
    tool's name; generation ends after the name's closing quote."""
    names = " | ".join(gbnf_literal(json.dumps(t.name)) for t in tools)
    head = gbnf_literal(SELECT_HEAD)
    rules = [f"select ::= {head} ({names})"]
    branches = ["select"]
    if allow_answer:
        branches.insert(0, "answer")
        rules.append(_ANSWER_RULE)
    return "\n".join([f"root ::= {' | '.join(branches)}", *rules])


def build_arguments_grammar(tool: Tool, max_string_chars: int = DEFAULT_MAX_STRING_CHARS) -> str:
    """Phase 2 of a decoupled reply: a space, the chosen tool's arguments, valid against its
    schema, and the end of a one-call list (after `, "arguments":` has been written)."""
    close = gbnf_literal("}]" + CALL_CLOSE)
    return "\n".join(
        [f'root ::= " " args {close}', schema_rules({"args": tool.parameters}, max_string_chars)]
    )


# --------------------------------------------------------------------------- parsing


def parse_reply(text: str, tools: Sequence[Tool] = ()) -> Reply:
    """Parse a reply. Under the grammar it is always well formed; without it (or for evaluating
    other models) the parser is lenient: text around the tag, a single object instead of a list,
    a missing closing tag. Unknown tools and malformed calls are reported in `problems`."""
    start = text.find(CALL_OPEN)
    if start < 0:
        return Reply(text=text.strip(), calls=[])
    body = text[start + len(CALL_OPEN) :].lstrip()
    problems: list[str] = []
    try:
        # the JSON first, not the text up to the closing tag: a string value may hold the tag
        # itself, which the grammar admits (a sampled search query did)
        data, _ = json.JSONDecoder().raw_decode(body)
    except json.JSONDecodeError:
        end = body.find(CALL_CLOSE)
        data, problems = _decode_prefix(body if end < 0 else body[:end])
    items = data if isinstance(data, list) else [data]
    known = {t.name for t in tools}
    calls: list[ToolCall] = []
    duplicates = 0
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            problems.append(f"call {i}: not an object with a string 'name'")
            continue
        args = item.get("arguments", {})
        if not isinstance(args, dict):
            problems.append(f"call {i} ({item['name']}): 'arguments' is not an object")
            continue
        if known and item["name"] not in known:  # kept: running it returns the error
            problems.append(f"call {i}: unknown tool {item['name']!r}")
        call = ToolCall(item["name"], args)
        if call in calls:
            duplicates += 1
            continue
        calls.append(call)
    # Nothing usable in the tag: show the model's text as it was rather than an empty answer.
    shown = "" if calls else text.strip()
    return Reply(text=shown, calls=calls, duplicates_dropped=duplicates, problems=problems)


def _decode_prefix(body: str) -> tuple[list[Any], list[str]]:
    """Recover the complete call objects at the start of a cut-off or garbled list."""
    decoder = json.JSONDecoder()
    items: list[Any] = []
    pos = body.find("{")
    while 0 <= pos < len(body):
        try:
            obj, pos = decoder.raw_decode(body, pos)
        except json.JSONDecodeError:
            return items, [f"malformed call list after {len(items)} call(s)"]
        items.append(obj)
        pos = body.find("{", pos)
    return items, []


_WORD = re.compile(r"[^\W_]+")  # memory_total: two words, as "Memory total"
_SENTENCE_END = re.compile(r"[.!?]+(?:\s+|$)|\n+")  # not the point inside 12.0
_WORD_END = re.compile(r"[\s.!?]")


#: this many words written again, in order, is an answer restating itself (two results alike,
#: "Timer 'eggs' set for 5 minutes; it ends at 18:42." and the same for rice, repeat nine)
RESTATED_WORDS = 12


def loop_start(text: str) -> int | None:
    """Where an answer starts going round in circles, or None: the start of the second
    occurrence of four words that now occur a third time ("12.0 * 0.15 = 12.0 * 0.15 = 12.0 *
    0.15"), of a sentence (three words or more) written a second time, or of RESTATED_WORDS
    words written again (a six-field result stated, then "You found 3: cpus: 4, load 1min:
    0.42, memory_total mb: 8063, ..." again; from the sentence it starts in, where that began
    after the first occurrence). Cutting there keeps the first occurrence."""
    words = [(m.group().lower(), m.start(), m.end()) for m in _WORD.finditer(text)]
    seen: dict[tuple[str, ...], list[int]] = {}
    for i in range(len(words) - 3):
        gram = tuple(w for w, _, _ in words[i : i + 4])
        starts = seen.setdefault(gram, [])
        starts.append(words[i][1])
        if len(starts) == 3:
            return starts[1]
    sentences: dict[str, int] = {}
    pos = 0
    for end in _SENTENCE_END.finditer(text):
        sentence = text[pos : end.start()].strip().lower()
        if len(sentence.split()) >= 3:
            if sentence in sentences:
                return pos
            sentences[sentence] = pos
        pos = end.end()
    first: dict[tuple[str, ...], int] = {}
    for i in range(len(words) - RESTATED_WORDS + 1):
        gram = tuple(w for w, _, _ in words[i : i + RESTATED_WORDS])
        j = first.setdefault(gram, i)
        if i >= j + RESTATED_WORDS:  # written again after the first occurrence ended
            first_end, again = words[j + RESTATED_WORDS - 1][2], words[i][1]
            starts = [m.end() for m in _SENTENCE_END.finditer(text, first_end, again)]
            return starts[-1] if starts else again
    return None


@dataclass(frozen=True)
class CopyRests:
    """The texts that would complete the call being written into a copy of an earlier complete
    call of the same reply, with the whitespace between JSON tokens left out: the grammar lets
    a space after `:` or `,` be written or not, and steered off `"minutes": 5` the model wrote
    `"minutes":5`, the same call. Falsy when the current call is no copy."""

    rests: list[str]
    state: tuple[bool, bool] = (False, False)  # (inside a string, after a backslash) so far

    def __bool__(self) -> bool:
        return bool(self.rests)

    def continued_by(self, piece: str) -> bool:
        """Whether writing `piece` next goes on copying (whitespace between tokens does not)."""
        squeezed, _ = _squeeze(piece, self.state)
        return bool(squeezed) and self._copies(squeezed)

    def left_by(self, piece: str) -> bool:
        """Whether writing `piece` next leaves the copy (whitespace between tokens does not)."""
        squeezed, _ = _squeeze(piece, self.state)
        return bool(squeezed) and not self._copies(squeezed)

    def _copies(self, squeezed: str) -> bool:
        return any(r.startswith(squeezed) or squeezed.startswith(r) for r in self.rests)


def repeat_rests(text: str) -> CopyRests:
    """In a reply calling tools, what would complete the call being written into a copy of an
    earlier complete call of the same reply (none when the current call has already left every
    earlier one's path, or no call is open). A backend steers away from these
    (SamplingParams.repeated_call_margin): a small model asked for two things tends to write its
    first call again where the second should differ."""
    if not text.startswith(CALL_OPEN + "["):
        return CopyRests([])
    body = text[len(CALL_OPEN) + 1 :]
    done: list[str] = []
    pos = 0
    decoder = json.JSONDecoder()
    while True:
        start = body.find("{", pos)
        if start < 0:
            return CopyRests([])  # between calls, or the list is closed
        try:
            _, end = decoder.raw_decode(body, start)
        except json.JSONDecodeError:
            current, state = _squeeze(body[start:])
            rests = [p[len(current) :] for p in done if p.startswith(current) and p != current]
            return CopyRests(rests, state)
        done.append(_squeeze(body[start:end])[0])
        pos = end


def _squeeze(text: str, state: tuple[bool, bool] = (False, False)) -> tuple[str, tuple[bool, bool]]:
    """JSON text without the whitespace outside strings, and whether it ends inside a string
    (and after a backslash there), from `state` at its start."""
    out, (inside, escaped) = [], state
    for char in text:
        if inside:
            inside = escaped or char != '"'
            escaped = not escaped and char == "\\"
        elif char == '"':
            inside = True
        elif char.isspace():
            continue
        out.append(char)
    return "".join(out), (inside, escaped)


class CallStream:
    """Watches a reply as it is generated. `feed` returns False when generation should stop:
    the reply is calling tools and its newest complete call repeats an earlier one, or it is
    an answer going round in circles (`loop_start`; the text is cut where the loop began)."""

    def __init__(self) -> None:
        self.text = ""
        self._decoder = json.JSONDecoder()
        self._seen: list[Any] = []
        self._scan = 0
        self.repeated = False
        self.looped = False

    def feed(self, piece: str) -> bool:
        self.text += piece
        if not self.text.startswith(CALL_OPEN):
            if self.text.startswith("<") or not _WORD_END.search(piece):
                return True  # a call may still be opening; or no word or sentence ended
            cut = loop_start(self.text)
            if cut is None:
                return True
            self.looped = True
            self.text = self.text[:cut].rstrip()
            return False
        if "}" not in piece:
            return True
        body = self.text[len(CALL_OPEN) + 1 :]  # after "<tool_call>["
        pos = max(self._scan, 0)
        while True:
            start = body.find("{", pos)
            if start < 0:
                return True
            try:
                obj, end = self._decoder.raw_decode(body, start)
            except json.JSONDecodeError:
                return True  # the current call is not complete yet
            self._scan = pos = end
            if obj in self._seen:
                self.repeated = True
                self.text = CALL_OPEN + "[" + body[:start].rstrip(", ") + "]" + CALL_CLOSE
                return False
            self._seen.append(obj)
