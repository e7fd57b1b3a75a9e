"""Training data: canonical JSONL validation, importers, and loss masks through the wire format."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeagent.demo_tools import DEMO_TOOLS
from edgeagent.models import default_model_path, inspect_gguf
from edgeagent.train.data import example_to_dict, parse_example, read_jsonl, write_jsonl
from edgeagent.train.importers import from_bfcl, from_xlam, xlam_type
from edgeagent.train.render import (
    IGNORE,
    llama_offset_tokenizer,
    render_example,
    tokenize_with_mask,
)
from edgeagent.wireformat import ChatRenderer

TIMER = {
    "type": "function",
    "function": {
        "name": "set_timer",
        "description": "Start a countdown timer.",
        "parameters": {
            "type": "object",
            "properties": {
                "minutes": {"type": "integer", "minimum": 1},
                "label": {"type": "string"},
            },
            "required": ["minutes"],
        },
    },
}
GOOD = {
    "tools": [TIMER],
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Timer for tea, 4 minutes, and one for eggs, 7."},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "set_timer", "arguments": {"minutes": 4, "label": "tea"}}},
            {"type": "function", "function": {"name": "set_timer", "arguments": '{"minutes": 7, "label": "eggs"}'}},
        ]},
        {"role": "tool", "name": "set_timer", "content": "tea timer set"},
        {"role": "tool", "name": "set_timer", "content": "eggs timer set"},
        {"role": "assistant", "content": "Both timers are running."},
        {"role": "user", "content": "Thanks!"},
        {"role": "assistant", "content": "You're welcome."},
    ],
}  # fmt: skip


def test_a_valid_multi_turn_parallel_example_parses():
    ex = parse_example(GOOD)
    assert ex.instructions == "Be brief." and [t.name for t in ex.tools] == ["set_timer"]
    calls = ex.messages[1].calls
    assert [c.arguments["minutes"] for c in calls] == [4, 7]
    again = parse_example(example_to_dict(ex))  # the canonical writer round-trips
    assert again.messages == ex.messages


BAD_LINES = [
    (b"not json\n", "(line)", "not JSON"),
    (b"\xff\xfe garbage\n", "(line)", "not UTF-8"),
    (b"[1, 2]\n", "(line)", "JSON object"),
    (json.dumps({"messages": []}).encode() + b"\n", "messages", "non-empty"),
    (json.dumps({"tools": [TIMER], "messages": [{"role": "robot", "content": "x"}]}).encode() + b"\n", "messages[0].role", "must be one of"),
    (json.dumps({"tools": [TIMER], "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"function": {"name": "nope", "arguments": {}}}]}]}).encode() + b"\n", "messages[1].tool_calls[0].function.name", "not among"),
    (json.dumps({"tools": [TIMER], "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"function": {"name": "set_timer", "arguments": {"minutes": 0}}}]}]}).encode() + b"\n", "messages[1].tool_calls[0].function.arguments", "do not match"),
    (json.dumps({"tools": [TIMER], "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"function": {"name": "set_timer", "arguments": "{bad"}}]}]}).encode() + b"\n", "messages[1].tool_calls[0].function.arguments", "not JSON"),
    (json.dumps({"tools": [TIMER], "messages": [{"role": "user", "content": "x"}, {"role": "tool", "content": "?"}]}).encode() + b"\n", "messages[1]", "must follow"),
    (json.dumps({"tools": [TIMER], "messages": [{"role": "user", "content": "x"}]}).encode() + b"\n", "messages", "no assistant"),
]  # fmt: skip


def test_bad_lines_are_named_skipped_and_counted(tmp_path):
    path = tmp_path / "data.jsonl"
    good = json.dumps(GOOD).encode() + b"\n"
    path.write_bytes(good + b"".join(line for line, _, _ in BAD_LINES) + b"\n" + good)
    examples, report = read_jsonl(path)
    assert len(examples) == 2 and report.valid == 2 and report.skipped == len(BAD_LINES)
    for i, (_, field, reason) in enumerate(BAD_LINES):
        problem = report.problems[i]
        assert problem.line == i + 2 and problem.field == field and reason in problem.reason, (
            problem
        )


def test_data_validate_cli(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + BAD_LINES[0][0])
    proc = subprocess.run([sys.executable, "-m", "edgeagent", "data", "validate", str(path), "--json"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["valid"] == 1 and report["problems"][0]["line"] == 2


def test_write_jsonl_is_atomic_and_round_trips(tmp_path):
    path = tmp_path / "out.jsonl"
    assert write_jsonl([GOOD, GOOD], path) == 2
    assert read_jsonl(path)[1].valid == 2
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_xlam_import():
    record = {
        "query": "What's the weather in Paris in celsius?",
        "tools": json.dumps([{"name": "get_weather", "description": "Weather for a city.", "parameters": {
            "city": {"type": "str", "description": "City name"},
            "unit": {"type": "str, optional", "description": "c or f", "default": "c"},
            "days": {"type": "List[int]", "description": "days ahead"}}}]),
        "answers": json.dumps([{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c", "days": [0]}}]),
    }  # fmt: skip
    ex = from_xlam(record)
    params = ex.tools[0].parameters
    assert params["required"] == ["city", "days"]
    assert params["properties"]["days"] == {
        "type": "array",
        "items": {"type": "integer"},
        "description": "days ahead",
    }
    assert ex.messages[1].calls[0].arguments == {"city": "Paris", "unit": "c", "days": [0]}
    assert xlam_type("float, optional") == ({"type": "number"}, True)


def test_data_import_cli_converts_an_xlam_file_and_names_its_bad_lines(tmp_path):
    good = {"query": "Weather in Oslo?", "answers": [{"name": "w", "arguments": {"city": "Oslo"}}],
            "tools": [{"name": "w", "parameters": {"city": {"type": "str"}}}]}  # fmt: skip
    src = tmp_path / "xlam.jsonl"
    src.write_bytes(b"\n".join([json.dumps(good).encode(), b"null", b"\xff", b'{"query": "x"}']))
    out = tmp_path / "canonical.jsonl"
    proc = subprocess.run([sys.executable, "-m", "edgeagent", "data", "import", str(src), "--from",
                           "xlam", "--out", str(out), "--json"], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["valid"] == 1 and [p["line"] for p in report["problems"]] == [2, 3, 4]
    examples, again = read_jsonl(out)  # canonical now
    assert again.valid == 1 and examples[0].messages[1].calls[0].arguments == {"city": "Oslo"}


def test_bfcl_import_picks_the_first_acceptable_answer():
    from edgeagent.bfcl import Case

    case = Case(
        "x", [{"role": "user", "content": "Area of a triangle, base 10, height 5"}],
        [{"name": "area", "description": "d", "parameters": {"type": "dict", "properties": {
            "base": {"type": "integer"}, "height": {"type": "integer"}, "unit": {"type": "string"}},
            "required": ["base", "height"]}}],
        [{"area": {"base": [10], "height": [5], "unit": ["", "units"]}}],
    )  # fmt: skip
    ex = from_bfcl(case)
    assert ex.messages[-1].calls[0].arguments == {"base": 10, "height": 5, "unit": "units"}


@pytest.fixture(scope="module")
def smollm2():
    path = default_model_path()
    return ChatRenderer(inspect_gguf(path).chat_template), llama_offset_tokenizer(str(path))


def test_loss_mask_covers_exactly_the_assistant_parts(smollm2):
    renderer, tokenize = smollm2
    ex = parse_example(GOOD)
    rendered = render_example(ex, renderer)
    ids, labels = tokenize_with_mask(rendered, tokenize)
    assert len(ids) == len(labels)
    # Decode the unmasked tokens: exactly the assistant replies, each with its end marker.
    trained = [t for t, label in zip(ids, labels, strict=True) if label != IGNORE]
    from llama_cpp import Llama

    vocab = Llama(str(default_model_path()), vocab_only=True, verbose=False)
    decoded = vocab.detokenize(trained, special=True).decode("utf-8")
    expected = (
        '<tool_call>[{"name": "set_timer", "arguments": {"minutes": 4, "label": "tea"}}, '
        '{"name": "set_timer", "arguments": {"minutes": 7, "label": "eggs"}}]</tool_call><|im_end|>\n'
        "Both timers are running.<|im_end|>\nYou're welcome.<|im_end|>\n"
    )
    assert decoded == expected == rendered.learned_text()
    assert (
        "Thanks!" not in decoded and "Be brief." not in decoded and "tea timer set" not in decoded
    )


def test_selector_and_argument_masks(smollm2):
    renderer, _ = smollm2
    ex = parse_example(GOOD)
    # the selector learns to call (the marker) or not (an answer's first character) and which tool
    selector = render_example(ex, renderer, "selector").learned_text()
    assert selector == '<tool_call>"set_timer""set_timer"BY'
    assert render_example(ex, renderer, "arguments").learned_text() == (
        '{"minutes": 4, "label": "tea"}{"minutes": 7, "label": "eggs"}'
    )
    assert render_example(ex, renderer, "arguments", only_tool="set_timer").learned_text() == (
        '{"minutes": 4, "label": "tea"}{"minutes": 7, "label": "eggs"}'
    )
    assert render_example(ex, renderer, "arguments", only_tool="convert_units").spans == []
    # "calls": the calling reply whole, and of each answer only its first character
    assert render_example(ex, renderer, "calls").learned_text() == (
        '<tool_call>[{"name": "set_timer", "arguments": {"minutes": 4, "label": "tea"}}, '
        '{"name": "set_timer", "arguments": {"minutes": 7, "label": "eggs"}}]</tool_call>'
        "<|im_end|>\nBY"
    )


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_parser_never_crashes_on_arbitrary_lines(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("fuzz") / "f.jsonl"
    path.write_bytes(blob)
    examples, report = read_jsonl(path)
    assert report.valid == len(examples)


def test_synthesizer_is_deterministic_and_every_example_validates(tmp_path):
    from edgeagent.demo_tools import Unit
    from edgeagent.train.synth import synthesize

    first = synthesize(DEMO_TOOLS, 300, seed=7)
    assert first == synthesize(DEMO_TOOLS, 300, seed=7)
    assert first != synthesize(DEMO_TOOLS, 300, seed=8)
    write_jsonl(first, tmp_path / "s.jsonl")
    examples, report = read_jsonl(tmp_path / "s.jsonl")
    assert report.valid == 300 and not report.problems
    calls = [len(ex.messages[-1].calls) for ex in examples]
    assert calls.count(0) > 30 and calls.count(2) > 15 and calls.count(1) > 120
    # negatives where the fitting tool is missing from the offered list
    assert any(len(ex.tools) < len(DEMO_TOOLS) for ex in examples)
    timers = [
        c.arguments for ex in examples for c in ex.messages[-1].calls if c.name == "set_timer"
    ]
    assert timers and all(1 <= a["minutes"] <= 1440 for a in timers)
    units = {
        c.arguments["from_unit"]
        for ex in examples
        for c in ex.messages[-1].calls
        if c.name == "convert_units"
    }
    assert units and units <= set(get_args(Unit))  # values from the enum, never made up


def test_missing_sets_the_share_of_requests_for_a_tool_left_out():
    from edgeagent.train.synth import KINDS, OFF_TOPIC, kinds, synthesize

    assert kinds() == KINDS  # the default draws exactly as before the option existed
    assert kinds(0.5).count("missing") == len(kinds(0.5)) // 2

    def asks_for_a_left_out_tool(d):  # a no-call reply to a request that is not off-topic
        user, reply = d["messages"][0], d["messages"][1]
        return not reply.get("tool_calls") and user["content"] not in OFF_TOPIC

    assert sum(map(asks_for_a_left_out_tool, synthesize(DEMO_TOOLS, 300, seed=7))) > 50
    none = synthesize(DEMO_TOOLS, 300, seed=7, missing=0)
    assert not any(map(asks_for_a_left_out_tool, none))
    assert all(len(d["tools"]) == len(DEMO_TOOLS) for d in none)
    with pytest.raises(ValueError, match="missing"):
        kinds(1.0)


def test_data_synth_cli(tmp_path):
    out = tmp_path / "synth.jsonl"
    proc = subprocess.run([sys.executable, "-m", "edgeagent", "data", "synth", "--n", "50", "--seed", "1", "--out", str(out), "--json"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["examples"] == 50
    assert read_jsonl(out)[1].valid == 50


@pytest.mark.parametrize("bank, missing", [("demo", "0.25"), ("demo", "0"), ("train", "0.25")])
def test_data_synth_bank_offers_the_demo_tools_as_the_cli_does_and_the_bank_four_at_most(
    tmp_path, bank, missing
):
    out = tmp_path / "synth.jsonl"
    proc = subprocess.run([sys.executable, "-m", "edgeagent", "data", "synth", "--bank", bank, "--n", "40",
                           "--missing", missing, "--out", str(out)],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    offered = [[t["function"]["name"] for t in json.loads(line)["tools"]] for line in out.open()]
    if bank == "train":
        assert max(map(len, offered)) == 4
    else:  # every demo tool in `edgeagent run`'s order; only a "tool is missing" case lacks one
        order = [t.name for t in DEMO_TOOLS]
        assert all(names == [n for n in order if n in names] for names in offered)
        lengths = {len(order), len(order) - 1} if missing != "0" else {len(order)}
        assert {len(names) for names in offered} == lengths


def test_argument_mask_learns_the_token_that_glues_a_space_to_the_brace(smollm2):
    """`"arguments": {}` tokenizes as ... `:`, ` {}`: the token starts on the space, outside the
    span, and must still be learned (a no-argument call had nothing to learn before)."""
    renderer, tokenize = smollm2
    ex = parse_example({
        "tools": [{"type": "function", "function": {"name": "list_timers", "description": "List timers.",
                                                    "parameters": {"type": "object", "properties": {}}}}],
        "messages": [{"role": "user", "content": "Which timers are running?"},
                     {"role": "assistant", "tool_calls": [{"function": {"name": "list_timers", "arguments": {}}}]}],
    })  # fmt: skip
    ids, labels = tokenize_with_mask(render_example(ex, renderer, "arguments"), tokenize)
    learned = [t for t, label in zip(ids, labels, strict=True) if label != IGNORE]
    from llama_cpp import Llama

    vocab = Llama(str(default_model_path()), vocab_only=True, verbose=False)
    assert "{}" in vocab.detokenize(learned, special=True).decode()
