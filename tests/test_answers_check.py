"""The answers check: what counts as a good answer after tool results, and the check on the
real default model."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeagent.evaluation.answers import (
    ANSWER_TOKENS,
    answer_problems,
    case_tools,
    looks_like_code,
    repeats,
    summarize,
)
from edgeagent.evaluation.beyond import shipped

CASES = shipped("answers.jsonl")


def test_the_shipped_cases_cover_every_kind_of_result():
    assert len(CASES) >= 40 and len({c["id"] for c in CASES}) == len(CASES)
    kinds = {c["kind"] for c in CASES}
    assert kinds == {"value", "empty", "error", "declined", "several", "later", "retry"}
    for case in CASES:  # every case builds its tools, and every expectation is a list of lists
        assert case_tools(case) and all(isinstance(g, list) and g for g in case["expect"])


@pytest.mark.parametrize(
    "answer",
    [
        "```python\nprint(get_battery())\n```",
        "You can use the `get_battery` function:\ndef battery():\n    return 64",
        'get_weather(city="Lisbon")',
        '{"name": "get_weather", "arguments": {"city": "Lisbon"}}',
        "<tool_call>\n{}\n</tool_call>",
    ],
)
def test_code_and_call_syntax_are_not_prose(answer):
    assert looks_like_code(answer)
    assert "code or call syntax, not prose" in answer_problems(answer, [], 10)


@pytest.mark.parametrize(
    "answer",
    [
        "It's 23 degrees and sunny in Lisbon.",
        "The next train leaves at 08:12 (platform 4).",
        "I couldn't find any notes about the dentist.",
        "18% of 240 is 43.2.",
    ],
)
def test_plain_sentences_are_prose(answer):
    assert not looks_like_code(answer) and not repeats(answer)


def test_loops_and_long_answers_are_caught():
    assert repeats("12.0 * 0.15 = 12.0 * 0.15 = 12.0 * 0.15 = 12.0 * 0.15")
    assert repeats("The user's response is: yes. The user's response is: yes.")
    assert answer_problems("It is 23 degrees.", [["23"]], ANSWER_TOKENS + 1) == [
        f"did not end within {ANSWER_TOKENS} tokens ({ANSWER_TOKENS + 1})"
    ]


def test_every_expected_group_must_be_stated_in_one_of_its_spellings():
    expect = [["18:35"], ["B42", "gate 42"]]
    assert answer_problems("It leaves at 18:35 from gate B42.", expect, 12) == []
    assert answer_problems("It leaves at 18:35.", expect, 8) == ["does not state 'B42'"]
    assert answer_problems("   ", expect, 0) == ["empty answer"]


@given(st.lists(st.sampled_from(["the", "train", "leaves", "at", "08:12", "from", "gate"]),
                min_size=1, max_size=12))  # fmt: skip
def test_a_sentence_of_distinct_words_never_repeats(words):
    distinct = list(dict.fromkeys(words))
    assert not repeats(" ".join(distinct) + ".")


def test_scripted_tools_answer_with_results_errors_and_templates():
    by_id = {c["id"]: c for c in CASES}
    (timer,) = case_tools(by_id["two_timers"])
    assert timer.effects == "write"
    assert timer.invoke({"minutes": 5, "label": "eggs"}).content.startswith("Timer 'eggs' set")
    (weather,) = case_tools(by_id["two_weathers"])
    assert '"temperature_c": 9' in weather.invoke({"city": "tokyo"}).content
    (broken,) = case_tools(by_id["error_city"])
    outcome = broken.invoke({"city": "Atlantis"})
    assert not outcome.ok and "unknown city" in outcome.error
    (real,) = case_tools(by_id["demo_percent"])  # the demo tool itself, with its real errors
    assert real.invoke({"expression": "240*0.18"}).content.endswith("43.2")
    assert not real.invoke({"expression": "18 +"}).ok


def test_a_retry_case_answers_only_the_value_its_error_suggests():
    case = next(c for c in CASES if c["id"] == "retry_city")
    (weather,) = case_tools(case)
    refused = weather.invoke({"city": "Pariss"})
    assert not refused.ok and "did you mean 'Paris'" in refused.error
    assert '"temp_c": 14' in weather.invoke({"city": "paris"}).content
    for case in (c for c in CASES if c["kind"] == "retry"):  # each names the value it wants
        assert f"'{case['fix']}'" in case["error"]
        assert not re.search(rf"\b{re.escape(case['fix'])}\b", case["question"])


def test_the_summary_counts_passes_per_kind_and_recoveries():
    from edgeagent.evaluation.answers import AnswerResult

    rows = [
        AnswerResult("a", "value", True, False, "It is 23.", 5),
        AnswerResult("b", "error", True, True, "Sorry.", 3, ["does not state 'x'"]),
        AnswerResult("c", "value", False, False, "", 0, ["no tool called", "empty answer"]),
    ]
    s = summarize(rows)
    assert s["passed"] == 0.333 and s["kinds"] == {"error": 0.0, "value": 0.5}
    assert s["retried_after_error"] == 1 and s["problems"]["no tool called"] == 1


@pytest.mark.model
def test_the_answers_check_runs_on_the_real_default_model():
    from edgeagent.evaluation.answers import check_answers
    from edgeagent.evaluation.runner import Evaluator

    picked = ["demo_timer", "weather", "error_city", "declined_email"]
    cases = [c for c in CASES if c["id"] in picked]
    report = check_answers(Evaluator(), adapter=True, grammar=True, cases=cases)
    assert report["cases"] == 4 and set(report["kinds"]) == {"value", "error", "declined"}
    for row in report["results"]:  # each row is judged by the rules above, whatever it says
        assert row["ok"] == (not answer_problems(
            row["answer"], next(c for c in cases if c["id"] == row["id"])["expect"],
            row["tokens"]) and row["called"])  # fmt: skip
    assert report["called"] >= 0.75  # the default configuration calls these tools


@pytest.mark.model
def test_after_a_tool_error_the_recovery_adapter_calls_again_with_what_the_error_suggests():
    """The shipped call adapter answers every error with the error; the recovery adapter, which
    takes only the step after an error, calls again where the error names the right value and
    answers where it names none."""
    from edgeagent.evaluation.answers import check_answers
    from edgeagent.evaluation.runner import Evaluator
    from edgeagent.models import RECOVERY_ADAPTER

    cases = [c for c in CASES if c["id"] in ("retry_city", "retry_contact", "error_city")]
    evaluator = Evaluator()
    assert evaluator.recovery_adapter == RECOVERY_ADAPTER  # on by default beside the shipped one
    report = check_answers(evaluator, adapter=True, grammar=True, cases=cases)
    rows = {r["id"]: r for r in report["results"]}
    assert rows["retry_city"]["retried"] and rows["retry_contact"]["retried"], rows
    assert rows["retry_city"]["ok"] and rows["retry_contact"]["ok"], rows
    assert not rows["error_city"]["retried"] and rows["error_city"]["ok"], rows
    evaluator.recovery_adapter = None
    without = check_answers(evaluator, adapter=True, grammar=True, cases=cases)
    assert without["retried_after_error"] == 0
