"""The tool bank the shipped general adapter is trained on: broad, held out by tool, values
copied verbatim from the requests, deterministic."""

from __future__ import annotations

import json
import re

import pytest

from edgeagent.demo_tools import DEMO_TOOLS
from edgeagent.train import toolbank
from edgeagent.train.data import parse_example
from edgeagent.train.toolbank import (
    SAID_AS_NAME,
    bank_tools,
    load_bank,
    split_bank,
    synthesize_bank,
)


def test_the_bank_is_broad_and_held_out_by_tool():
    bank = load_bank()
    train, held = split_bank(bank)
    assert len(bank) >= 180 and len({t.domain for t in bank}) >= 20
    assert len({t.tool.name for t in bank}) == len(bank)
    kinds = {t.tool.parameters["properties"][p]["type"] for t in bank for p in t.kinds}
    assert kinds >= {"string", "integer", "number", "boolean", "array"}
    assert any("enum" in s for t in bank for s in t.tool.parameters["properties"].values())
    assert {t.tool.name for t in train}.isdisjoint(t.tool.name for t in held)
    assert len(held) >= 30
    # the demo tools are trained on, with their real schemas, and never held out; two are as
    # the shipped adapter was trained on them: convert_units' enum without unit words and
    # calculate's description without a percentage
    demo = {t.name: t for t in DEMO_TOOLS}
    trained = {t.tool.name: t.tool for t in train if t.domain == "demo"}
    assert {n for n, t in trained.items() if t is not demo[n]} == {"convert_units", "calculate"}
    assert all(t.fn is demo[n].fn for n, t in trained.items())
    enum = trained["convert_units"].parameters["properties"]["from_unit"]["enum"]
    assert "mi" in enum and "miles" not in enum
    assert "%" not in trained["calculate"].description and "%" in demo["calculate"].description
    assert {t.tool.name for t in held}.isdisjoint(demo)


def test_synthesized_examples_validate_copy_values_and_repeat_by_seed():
    train = bank_tools("train")
    data = synthesize_bank(train, 300, seed=3)
    assert data == synthesize_bank(train, 300, seed=3)
    assert data != synthesize_bank(train, 300, seed=4)
    examples = [parse_example(d) for d in data]  # every call validated against its tool
    calls = followups = 0
    for ex in examples:
        request, reply = ex.messages[0].content, ex.messages[1]
        offered = {t.name for t in ex.tools}
        assert 1 <= len(offered) <= 4
        for call in reply.calls:
            calls += 1
            assert call.name in offered
            for value in call.arguments.values():
                values = value if isinstance(value, list) else [value]
                for v in values:
                    if isinstance(v, str):  # copied verbatim, so the model learns to copy
                        assert v in request, (v, request)
        if reply.calls and len(ex.messages) > 2:
            followups += 1  # a tool result, then an answer and not another call
            assert [m.role for m in ex.messages[2:]] == ["tool"] * len(reply.calls) + ["assistant"]
            assert not ex.messages[-1].calls
    assert calls > 150 and followups > 30


def test_held_out_examples_offer_only_held_out_tools():
    held = bank_tools("held-out")
    names = {t.tool.name for t in held}
    for d in synthesize_bank(held, 50, seed=1):
        assert {t["function"]["name"] for t in d["tools"]} <= names


def test_the_demo_part_offers_the_demo_tools_in_lists_as_long_as_the_cli_offers():
    demo = bank_tools("demo")
    assert [t.tool.name for t in demo] == [t.name for t in DEMO_TOOLS]
    sizes = {len(d["tools"]) for d in synthesize_bank(demo, 120, seed=2, max_offered=9)}
    assert max(sizes) == len(DEMO_TOOLS) and min(sizes) < 4


def test_a_bad_bank_line_is_refused_with_the_tool_named(tmp_path, monkeypatch):
    bad = tmp_path / "bank.txt"
    bad.write_text("[x]\nsend_fax | Send a fax. | number:phone | Fax it please\n")
    monkeypatch.setattr(toolbank, "BANK_FILE", bad)
    with pytest.raises(ValueError, match="send_fax.*must name"):
        load_bank()
    bad.write_text("[x]\nsend_fax | Send a fax. | number:telex | Fax {number}\n")
    with pytest.raises(ValueError, match="unknown kind 'telex'"):
        load_bank()


def test_make_adapter_synthesizes_the_shipped_adapters_data_byte_for_byte():
    """The data `make adapter` writes for the shipped general adapter's two runs and for the
    recovery adapter, as its JSON lines' digests: the same bytes the adapters were trained on
    (checked against the synthesizer of the commit that shipped them). A change to the synthesizer that moves these digests means
    `make adapter` no longer rebuilds the shipped adapter: put the change behind an option."""
    import hashlib
    import json

    def digest(part: str, n: int, seed: int, **kw) -> str:
        rows = synthesize_bank(bank_tools(part), n, seed=seed, **kw)
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        return hashlib.sha256(text.encode()).hexdigest()

    assert digest("train", 900, 1, max_offered=4).startswith("b65a395e924e2a02")
    assert digest("train", 150, 3, max_offered=4).startswith("340044953d2141e7")
    assert digest("demo", 150, 2, max_offered=None, missing=0).startswith("fe462b04997d1999")
    # the recovery adapter's data (the step after a tool error)
    assert digest("train", 240, 51, max_offered=4, retries=0.7).startswith("5a5804cc7a977464")


def test_same_tool_examples_ask_one_tool_for_several_values():
    def same_tool_calls(rows):
        out = []
        for row in rows:
            calls = next(m for m in parse_example(row).messages if m.role == "assistant").calls
            if len(calls) > 1 and len({c.name for c in calls}) == 1 and calls[0] != calls[1]:
                out.append(calls)
        return out

    train = bank_tools("train")
    plain = same_tool_calls(synthesize_bank(train, 300, seed=4))
    more = same_tool_calls(synthesize_bank(train, 300, seed=4, same_tool=True))
    assert len(more) >= 15 and len(more) > 3 * len(plain)
    for calls in more:  # alike but for the asked-for values
        differing = {k for c in calls[1:] for k, v in c.arguments.items()
                     if calls[0].arguments.get(k) != v}  # fmt: skip
        assert differing


def test_said_numbers_are_written_as_people_write_them():
    import random

    from edgeagent.train.toolbank import said_number

    rng = random.Random(0)
    assert {said_number(1200, "count", rng) for _ in range(40)} == {"1,200"}
    assert {said_number(2450.5, "count", rng) for _ in range(20)} == {"2,450.5"}
    money = {said_number(45000, "amount", rng) for _ in range(60)}
    assert money == {"45,000", "$45,000", "$45k"}  # a "k" only after "$": "1kg" is a mass


def test_numbers_examples_say_units_in_words_and_percentages_whole():
    from edgeagent.train.toolbank import UNIT_DIMENSION, UNIT_WORDS

    tools = {b.tool.name: b.tool for b in bank_tools("train")}
    words = {w: unit for unit, said in UNIT_WORDS.items() for w in said}
    units = percents = 0
    for row in synthesize_bank(bank_tools("train"), 300, seed=7, numbers=1.0):
        example = parse_example(row)
        request = example.messages[0].content
        (call,) = example.messages[1].calls
        tools[call.name].validate(call.arguments)
        spoken = [w for w in re.findall(r"[a-z]+", request) if w in words]
        if call.name == "convert_units" and spoken:
            units += 1
            for word in spoken:  # "5 miles": the call has the enum's "mi"
                assert words[word] in call.arguments.values(), (request, call)
            pair = {call.arguments["from_unit"], call.arguments["to_unit"]}
            assert len({UNIT_DIMENSION[u] for u in pair}) == 1, call  # not "miles to cups"
        if m := re.search(r"\d+% of \d+", request):
            percents += 1
            assert call.arguments["expression"] == m[0], (request, call)  # copied whole
    assert units >= 10 and percents >= 10, (units, percents)


def test_numbers_examples_say_a_large_number_and_call_with_the_number_itself():
    import re

    tools = {b.tool.name: b.tool for b in bank_tools("train")}
    rows = synthesize_bank(bank_tools("train"), 200, seed=5, numbers=0.5)
    said = 0
    for row in rows:
        example = parse_example(row)
        request = example.messages[0].content
        written = re.search(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<=\$)\d+(?:\.\d+)?k\b", request)
        if not written:
            continue
        said += 1
        (call,) = example.messages[1].calls
        tools[call.name].validate(call.arguments)
        text = written[0].replace(",", "")
        value = float(text[:-1]) * 1000 if text.endswith("k") else float(text)
        assert value >= 1000 and value in call.arguments.values(), (request, call)
        digits = next(v for v in call.arguments.values() if v == value)
        assert json.dumps(digits) not in request  # the plain digits are not there to copy
    assert said >= 40  # 3/5 of half the examples, less the tools whose request says no number
    assert synthesize_bank(bank_tools("train"), 50, seed=5) != synthesize_bank(
        bank_tools("train"), 50, seed=5, numbers=0.5
    )


def test_retry_examples_call_again_with_the_value_the_error_suggests():
    from edgeagent.train.toolbank import misspelled

    tools = {b.tool.name: b.tool for b in bank_tools("train")}
    retried = gave_up = 0
    codes, wordings = 0, set()  # a code said as its name ("Apple" -> AAPL); ways to suggest
    for row in synthesize_bank(bank_tools("train"), 200, seed=9, retries=1.0, masked=0.3):
        example = parse_example(row)
        roles = [m.role for m in example.messages]
        if roles[:3] != ["user", "assistant", "tool"] or "failed: ValueError" not in (
            error := example.messages[2].content
        ):
            continue
        (first,) = example.messages[1].calls
        assert error.startswith(f"{first.name} failed: ")  # the tool's name, masked or not
        if roles == ["user", "assistant", "tool"] + ["assistant", "tool", "assistant"]:
            retried += 1
            (fixed,) = example.messages[3].calls
            changed = {k: v for k, v in fixed.arguments.items() if first.arguments[k] != v}
            ((slot, good),) = changed.items()
            assert f"'{first.arguments[slot]}'" in error and f"'{good}'" in error
            assert first.arguments[slot] in example.messages[0].content  # what the user typed
            assert good not in example.messages[0].content
            if fixed.name in tools:
                tools[fixed.name].validate(fixed.arguments)
            said = first.arguments[slot]
            codes += any(good in names and said.lower()[:3] == names[good].lower()[:3]
                         for names in SAID_AS_NAME.values())  # fmt: skip
            message = re.sub(r"'[^']*'", "Q", error.split(": ", 2)[2])
            wordings.add(re.sub(rf"\b{re.escape(slot.replace('_', ' '))}\b", "W", message))
        else:  # nothing to try: the model answers with the error
            assert roles == ["user", "assistant", "tool", "assistant"]
            assert error.split("ValueError: ", 1)[1] in example.messages[3].content
            gave_up += 1
    assert retried >= 80 and gave_up >= 30, (retried, gave_up)
    assert codes >= 3 and len(wordings) >= 15, (codes, sorted(wordings))
    import random

    rng = random.Random(0)
    for word in ["Paris", "Union Square", "Dr. Okafor"]:
        typed = [misspelled(word, rng) for _ in range(20)]
        assert all(t != word and abs(len(t) - len(word)) <= 1 for t in typed), typed
