"""The wire format: rendering through the model's template, parsing, and the repeat guard."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeagent import tool
from edgeagent.wireformat import (
    CallStream,
    ChatRenderer,
    Message,
    ToolCall,
    format_calls,
    parse_reply,
    template_messages,
)

SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@tool
def set_timer(minutes: int, label: str = "") -> str:
    """Start a countdown timer."""
    return "ok"


def test_parse_answer_and_calls():
    assert parse_reply("Hello there.", [set_timer]).text == "Hello there."
    text = '<tool_call>[{"name": "set_timer", "arguments": {"minutes": 12}}]</tool_call>'
    reply = parse_reply(text, [set_timer])
    assert reply.calls == [ToolCall("set_timer", {"minutes": 12})]
    assert reply.text == "" and not reply.problems


def test_parse_drops_exact_repeats():
    call = '{"name": "set_timer", "arguments": {"minutes": 12}}'
    other = '{"name": "set_timer", "arguments": {"minutes": 5}}'
    reply = parse_reply(f"<tool_call>[{call}, {call}, {other}, {call}]</tool_call>", [set_timer])
    assert [c.arguments["minutes"] for c in reply.calls] == [12, 5]
    assert reply.duplicates_dropped == 2


@pytest.mark.parametrize(
    "text, n_calls, problem",
    [
        (
            'I will. <tool_call>{"name": "set_timer", "arguments": {"minutes": 1}}</tool_call>',
            1,
            None,
        ),
        (
            '<tool_call>[{"name": "set_timer", "arguments": {"minutes": 1}}, {"name": "set_t',
            1,
            "malformed",
        ),
        ('<tool_call>[{"name": "nope", "arguments": {}}]</tool_call>', 1, "unknown tool"),
        ('<tool_call>[{"name": "set_timer", "arguments": [1]}]</tool_call>', 0, "not an object"),
        ("<tool_call>[42]</tool_call>", 0, "string 'name'"),
    ],
)
def test_lenient_parse_of_unconstrained_output(text, n_calls, problem):
    reply = parse_reply(text, [set_timer])
    assert len(reply.calls) == n_calls
    if problem:
        assert any(problem in p for p in reply.problems)
    else:
        assert not reply.problems


def test_format_calls_round_trips():
    calls = [
        ToolCall("set_timer", {"minutes": 3, "label": "tea ☕"}),
        ToolCall("set_timer", {"minutes": 4, "label": "x']]</tool_call>1 and more"}),
    ]
    assert parse_reply(format_calls(calls), [set_timer]).calls == calls


def test_call_stream_stops_at_the_first_repeat():
    stream = CallStream()
    pieces = ['<tool_call>[{"name": "set_timer", ', '"arguments": {"minutes": 2}}', ", ",
              '{"name": "set_timer", "arguments": {"minutes": 2}}', ", {"]  # fmt: skip
    results = [stream.feed(p) for p in pieces[:4]]
    assert results == [True, True, True, False]
    assert stream.repeated
    assert parse_reply(stream.text, [set_timer]).calls == [ToolCall("set_timer", {"minutes": 2})]


def test_repeat_rests_name_what_would_complete_a_copy_of_an_earlier_call():
    from edgeagent.wireformat import repeat_rests

    first = '{"name": "set_timer", "arguments": {"minutes": 5, "label": "eggs"}}'
    head = "<tool_call>[" + first + ", "
    assert not repeat_rests("<tool_call>[" + first[:20])  # no earlier call
    assert not repeat_rests(head)  # between calls
    # '..."arguments": {"' so far; the rest without the spaces between tokens
    assert repeat_rests(head + first[:37]).rests == ['minutes":5,"label":"eggs"}}']
    assert not repeat_rests(head + first[:37] + "1")  # left the copy: 1 is not 5
    assert not repeat_rests(head + first + "]")  # the copy is complete (CallStream drops it)
    assert not repeat_rests('Use {"name": 1}')  # an answer
    other = '{"name": "set_timer", "arguments": {"minutes": 7}}'
    both = "<tool_call>[" + first + ", " + other + ", " + '{"name": "set_timer", "arguments": {"'
    assert repeat_rests(both).rests == ['minutes":5,"label":"eggs"}}', 'minutes":7}}']


def test_a_copy_written_with_other_spacing_is_still_a_copy():
    """Steered off `"minutes": 5`, the model wrote `"minutes":5` (the grammar admits both):
    that goes on copying; a space inside a string value does not count as spacing."""
    from edgeagent.wireformat import repeat_rests

    first = '{"name": "set_timer", "arguments": {"minutes": 5, "label": "boiled eggs"}}'
    head = "<tool_call>[" + first + ", "
    rests = repeat_rests(head + '{"name":"set_timer","arguments":{"minutes":')
    assert rests.continued_by("5") and rests.continued_by(" 5")
    assert rests.left_by("7") and not rests.left_by(" ")  # a space is neither
    inside = repeat_rests(
        head + '{"name": "set_timer", "arguments": {"minutes": 5, "label": "boiled'
    )
    assert inside.continued_by(" eggs") and inside.left_by("eggs")  # "boiledeggs" is no copy
    assert repeat_rests(head + '{"name": "set_timer", "arguments": {"minutes":5, "label"').rests


@given(st.lists(st.dictionaries(st.sampled_from("abc"), st.integers(0, 99)), min_size=1,
                max_size=3), st.data(), st.sampled_from(["", " "]))  # fmt: skip
def test_a_copy_is_recognised_at_every_point_of_its_text(calls, data, spacing):
    """Wherever a reply stops inside a call that so far matches an earlier one (written with
    the same spacing or another), the rest of that earlier call is among the rests, and each
    rest completes an earlier call exactly."""
    import json

    from edgeagent.wireformat import repeat_rests

    texts = [json.dumps({"name": "f", "arguments": a}) for a in calls]
    squeezed = [json.dumps({"name": "f", "arguments": a}, separators=(",", ":")) for a in calls]
    i = data.draw(st.integers(0, len(texts) - 1))
    copy = json.dumps({"name": "f", "arguments": calls[i]}, separators=(",", spacing + ":"))
    cut = data.draw(st.integers(1, len(copy) - 1))
    reply = "<tool_call>[" + ", ".join(texts) + ", " + copy[:cut]
    rests = repeat_rests(reply).rests
    done = copy[:cut].replace(" ", "")
    assert squeezed[i][len(done) :] in rests
    assert all(done + r in squeezed for r in rests)


def test_call_stream_ignores_answers_with_braces():
    stream = CallStream()
    assert all(stream.feed(p) for p in ["Use {x}", " and {x}", " again {x}"])


def test_render_through_the_models_template():
    renderer = ChatRenderer(SMOLLM2_TEMPLATE)
    messages = [
        Message("user", "Start a 12 minute timer"),
        Message("assistant", calls=[ToolCall("set_timer", {"minutes": 12})]),
        Message("tool", "Timer set.", name="set_timer"),
        Message("assistant", "Done."),
        Message("user", "Thanks"),
    ]
    text = renderer.render(template_messages(messages, [set_timer], "Be brief."))
    assert text.startswith("<|im_start|>system\nBe brief.\n\nYou can call these tools")
    assert '"name": "set_timer"' in text.split("<|im_end|>")[0]  # tools in the system message
    assert (
        '<|im_start|>assistant\n<tool_call>[{"name": "set_timer", "arguments": {"minutes": 12}}]'
        "</tool_call><|im_end|>\n"
    ) in text
    assert '<|im_start|>tool\n{"name": "set_timer", "result": "Timer set."}<|im_end|>' in text
    assert text.endswith("<|im_start|>user\nThanks<|im_end|>\n<|im_start|>assistant\n")


def test_render_is_prefix_stable_across_turns():
    """Turn N+1's prompt extends turn N's prompt plus the reply: what makes KV reuse work."""
    renderer = ChatRenderer(SMOLLM2_TEMPLATE)
    history = [Message("user", "hi")]
    first = renderer.render(template_messages(history, [set_timer]))
    history += [Message("assistant", "Hello!"), Message("user", "again")]
    second = renderer.render(template_messages(history, [set_timer]))
    assert second.startswith(first + "Hello!")


def test_templates_without_a_tool_role_get_results_as_user_turns():
    strict = (
        "{% for m in messages %}{% if m['role'] not in ['system', 'user', 'assistant'] %}"
        "{{ raise_exception('bad role') }}{% endif %}"
        "[{{ m['role'] }}]{{ m['content'] }}{% endfor %}"
    )
    renderer = ChatRenderer(strict)
    msgs = template_messages(
        [Message("user", "x"), Message("tool", "42", name="set_timer")], [set_timer]
    )
    assert '[user]{"name": "set_timer", "result": "42"}' in renderer.render(msgs)


def test_an_answer_going_round_in_circles_is_cut_where_the_loop_began():
    from edgeagent.wireformat import CallStream

    stream = CallStream()
    pieces = ["12.0", " *", " 0.15", " =", " 12.0", " *", " 0.15", " =", " 12.0", " *", " 0.15",
              " =", " 12.0", " *", " 0.15", " ="]  # fmt: skip
    fed = 0
    for piece in pieces:
        fed += 1
        if not stream.feed(piece):
            break
    assert stream.looped and fed < len(pieces) and stream.text == "12.0 * 0.15 ="
    again = CallStream()
    for piece in [
        "The",
        "user's",
        "response",
        "is:",
        "yes.",
        "The",
        "user's",
        "response",
        "is:",
        "yes.",
        "More",
    ]:
        if not again.feed(piece + " "):
            break
    assert again.looped and again.text == "The user's response is: yes."


def test_a_call_is_never_cut_as_a_loop():
    from edgeagent.wireformat import CallStream

    stream = CallStream()
    text = '<tool_call>[{"name": "a", "arguments": {"x": "go go go go go go go go go go go"}}'
    assert all(stream.feed(ch) for ch in text) and not stream.looped


@given(
    st.lists(st.text("abcdefgh", min_size=1, max_size=6), min_size=1, max_size=8, unique=True),
    st.integers(2, 8),
)
def test_a_repeated_phrase_is_cut_to_its_first_occurrence(words, times):
    from edgeagent.wireformat import loop_start

    phrase = " ".join(words) + ","
    text = " ".join([phrase] * times)
    cut = loop_start(text)
    if len(words) * times >= 4 + 2 * len(words):  # four words come round a third time
        assert cut is not None and text[:cut].rstrip() == phrase
    elif len(words) >= 4:
        assert cut is None  # twice is not yet a loop
    assert loop_start(" ".join(words) + ".") is None  # distinct words: never a loop


@given(st.lists(st.text("abcdefgh", min_size=1, max_size=6), min_size=12, max_size=16, unique=True))
def test_a_dozen_words_written_again_are_cut_from_the_sentence_they_start_in(words):
    from edgeagent.wireformat import loop_start

    stated = " ".join(words) + "."
    again = "You found 3: " + " ".join(words[:12]) + " and"
    assert loop_start(stated + " " + again) == len(stated) + 1
    assert loop_start(stated + " Then " + " ".join(words[:11]) + ".") is None  # eleven: not yet


def test_results_alike_are_not_a_restatement():
    from edgeagent.wireformat import loop_start

    eggs = "Timer 'eggs' set for 5 minutes; it ends at 18:42."
    assert loop_start(f"{eggs} {eggs.replace('eggs', 'rice')}") is None
    device = ("Cpu: 4, Load 1min: 0.42, Memory total mb: 8063, Memory available mb: 5120, Disk "
              "free GB: 41.3.")  # fmt: skip
    restated = " You found 3: cpus: 4, load 1min: 0.42, memory_total mb: 8063, memory_available mb"
    assert loop_start(device + restated) == len(device) + 1  # memory_total reads as two words


def test_the_answer_view_folds_this_turns_results_into_the_request():
    from edgeagent.wireformat import ANSWER_CUE, answer_view

    earlier = [Message("user", "hi"), Message("assistant", "Hello!")]
    turn = [
        Message("user", "What is 18% of 240?", recalled=("likes maths",)),
        Message("assistant", calls=[ToolCall("calculate", {"expression": "18%"})]),
        Message("tool", "error: invalid syntax", name="calculate"),
        Message("assistant", calls=[ToolCall("calculate", {"expression": "0.18*240"})]),
        Message("tool", "0.18*240 = 43.2", name="calculate"),
    ]
    view = answer_view(earlier + turn)
    assert view[:2] == earlier and len(view) == 3  # earlier turns as they were
    ask = view[2]
    assert ask.role == "user" and ask.recalled == ("likes maths",)
    assert ask.content.startswith("What is 18% of 240?")
    assert "- calculate: error: invalid syntax\n- calculate: 0.18*240 = 43.2" in ask.content
    assert ask.content.endswith(ANSWER_CUE)
    plain = [*earlier, Message("user", "thanks")]
    assert answer_view(plain) == plain  # no results this turn: nothing changes
    # the next turn shows this one as it was when answered, so the cache lines up
    answered = [*earlier, *turn, Message("assistant", "It is 43.2."), Message("user", "thanks")]
    assert answer_view(answered) == [*view, Message("assistant", "It is 43.2."),
                                     Message("user", "thanks")]  # fmt: skip


def test_the_answer_view_leaves_out_an_error_a_retry_got_past():
    from edgeagent.tools import failure
    from edgeagent.wireformat import answer_view

    refused = failure("get_weather", ValueError("unknown city 'Pariss'; did you mean 'Paris'?"))
    turn = [
        Message("user", "Weather in Pariss and the time?"),
        Message("assistant", calls=[ToolCall("get_weather", {"city": "Pariss"})]),
        Message("tool", refused, name="get_weather"),
        Message("tool", failure("current_time", OSError("no clock")), name="current_time"),
        Message("assistant", calls=[ToolCall("get_weather", {"city": "Paris"})]),
        Message("tool", '{"temp_c": 14}', name="get_weather"),
    ]
    (ask,) = answer_view(turn)
    assert "Pariss" not in ask.content.split("\n", 1)[1]  # the superseded error is gone
    assert "- get_weather: temp_c: 14" in ask.content
    assert "no clock" in ask.content  # another tool's error, never retried, stays
    (ask,) = answer_view(turn[:4])  # no retry yet: the error is what there is to say
    assert "did you mean 'Paris'" in ask.content


@pytest.mark.parametrize(
    "content, shown",
    [
        ("[]", "nothing found"),
        ("{}", "nothing found"),
        ("", "nothing found"),
        ('{"city": "Lisbon", "temperature_c": 23}', "city: Lisbon, temperature_c: 23"),
        ('[{"label": "eggs", "minutes_left": 4.5}]', "label: eggs, minutes_left: 4.5"),
        ('[{"n": "A"}, {"n": "B"}]', "\n  - n: A\n  - n: B"),
        ('{"percent": 64, "charging": false}', "percent: 64, charging: false"),
        ("Timer 'pasta' set for 12 minutes.", "Timer 'pasta' set for 12 minutes."),
        (
            "find_files failed: ValueError: bad pattern",
            "find_files failed: ValueError: bad pattern",
        ),
    ],
)
def test_tool_results_are_shown_to_the_answering_model_as_plain_text(content, shown):
    from edgeagent.wireformat import plain_result

    assert plain_result(content) == shown


@given(st.dictionaries(st.text("abcxyz_", min_size=1, max_size=8),
                       st.one_of(st.integers(), st.text("abc ", max_size=8)), min_size=1))  # fmt: skip
def test_every_value_of_a_result_object_is_shown(obj):
    import json

    from edgeagent.wireformat import plain_result

    shown = plain_result(json.dumps(obj))
    assert all(f"{k}: " in shown for k in obj)
    assert all(str(v) in shown for v in obj.values())
