"""The answer adapter: its data (results and answers that state them), its loss mask, and how
the agent switches it on only to answer after tool results."""

from __future__ import annotations

import json

import pytest

from edgeagent.agent import Agent
from edgeagent.demo_tools import DEMO_TOOLS
from edgeagent.models import ANSWER_ADAPTER, DEFAULT_ADAPTER
from edgeagent.train.answers import synthesize_answers
from edgeagent.train.data import parse_example
from edgeagent.train.render import render_example
from edgeagent.train.toolbank import bank_tools
from edgeagent.wireformat import CHATML_TEMPLATE, RESULTS_HEADER, ChatRenderer, plain_result

EXAMPLES = [parse_example(d) for d in synthesize_answers(bank_tools("train"), 300, seed=4)]


def scalars(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from scalars(v)
    elif isinstance(value, list):
        for v in value:
            yield from scalars(v)
    elif value not in (None, ""):
        yield value


def test_every_answer_states_what_its_results_hold():
    """A value, an error's message, "no" for nothing, "not run" for a declined call: the
    answers teach to state the results, so every one of them must be in the answer."""
    for ex in EXAMPLES:
        results = [m for m in ex.messages if m.role == "tool"]
        answer = ex.messages[-1].content
        assert ex.messages[-1].role == "assistant" and results
        for result in results:
            content = result.content
            if " failed: " in content:
                assert content.split(": ", 2)[2] in answer
            elif "declined" in content or "was not run" in content:
                assert f"did not run {result.name}" in answer
            elif plain_result(content) == "nothing found":
                assert "no " in answer.lower()
            else:
                try:
                    value = json.loads(content)
                except ValueError:
                    value = content
                for v in scalars(value):
                    assert str(v) in answer, (content, answer)


def test_the_data_is_deterministic_varied_and_leaves_the_demo_tools_out():
    again = [parse_example(d) for d in synthesize_answers(bank_tools("train"), 300, seed=4)]
    assert [e.messages[-1].content for e in again] == [e.messages[-1].content for e in EXAMPLES]
    names = {c.name for ex in EXAMPLES for m in ex.messages for c in m.calls}
    assert len(names) > 60 and not names & {t.name for t in DEMO_TOOLS}
    several = [ex for ex in EXAMPLES if len(ex.messages[1].calls) > 1]
    assert 0.05 < len(several) / len(EXAMPLES) < 0.4
    with pytest.raises(ValueError, match="demo tools are left out"):
        synthesize_answers(bank_tools("demo"), 3)


def test_the_answer_mask_learns_the_answer_to_results_shown_as_the_agent_shows_them():
    renderer = ChatRenderer(CHATML_TEMPLATE)
    ex = EXAMPLES[0]
    rendered = render_example(ex, renderer, "answer")
    assert rendered.learned_text().startswith(ex.messages[-1].content)
    assert rendered.learned_text().count(ex.messages[-1].content) == 1
    assert RESULTS_HEADER in rendered.text  # the results folded into the request
    assert "<tools>" not in rendered.text and "<tool_call>" not in rendered.text  # no schemas
    # an example without results has no answer to learn
    plain = parse_example(
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hi!"}]}
    )
    assert render_example(plain, renderer, "answer").spans == []


def test_the_shipped_answer_adapter_goes_with_the_shipped_adapter_only():
    if not ANSWER_ADAPTER.exists():
        pytest.skip("no answer adapter shipped in this checkout")
    assert Agent(DEMO_TOOLS).answer_adapter == ANSWER_ADAPTER
    shipped_by_path = Agent(DEMO_TOOLS, adapter=DEFAULT_ADAPTER, base_answers=True)
    assert shipped_by_path.answer_adapter == ANSWER_ADAPTER
    assert Agent(DEMO_TOOLS, answer_adapter=None).answer_adapter is None
    assert Agent(DEMO_TOOLS, adapter=None).answer_adapter is None
    assert Agent(DEMO_TOOLS, base_answers=False).answer_adapter is None  # one model answers


def test_the_shipped_recovery_adapter_goes_with_the_shipped_adapter_only():
    from edgeagent.models import RECOVERY_ADAPTER

    if not RECOVERY_ADAPTER.exists():
        pytest.skip("no recovery adapter shipped in this checkout")
    assert Agent(DEMO_TOOLS).recovery_adapter == RECOVERY_ADAPTER
    assert Agent(DEMO_TOOLS, recovery_adapter=None).recovery_adapter is None
    assert Agent(DEMO_TOOLS, adapter=None).recovery_adapter is None
    assert Agent(DEMO_TOOLS, base_answers=False).recovery_adapter is None


def test_the_recovery_adapter_decides_only_after_a_step_whose_results_hold_an_error():
    from types import SimpleNamespace

    from edgeagent.replies import after_error
    from edgeagent.tools import failure
    from edgeagent.wireformat import Message, ToolCall

    call = Message("assistant", calls=[ToolCall("get_weather", {"city": "Pariss"})])
    error = Message("tool", failure("get_weather", ValueError("did you mean 'Paris'?")),
                    name="get_weather")  # fmt: skip
    fine = Message("tool", '{"temp_c": 14}', name="get_weather")
    ask = Message("user", "Weather in Pariss?")
    assert after_error(SimpleNamespace(messages=[ask, call, error]))
    assert after_error(SimpleNamespace(messages=[ask, call, error, fine]))  # one of two failed
    assert not after_error(SimpleNamespace(messages=[ask, call, fine]))
    assert not after_error(SimpleNamespace(messages=[ask, call, error, call, fine, ask]))
    assert not after_error(SimpleNamespace(messages=[ask]))


@pytest.mark.model
def test_the_answer_adapter_writes_answers_after_results_and_only_then():
    """After a tool result the answer adapter is on while the answer is written; a reply
    without a call is the base model's (the adapter's data never had a request without
    results)."""
    if not ANSWER_ADAPTER.exists():
        pytest.skip("no answer adapter shipped in this checkout")
    agent = Agent(DEMO_TOOLS)
    backend = agent.backend
    settings: list[dict[str, float]] = []
    switch = backend.set_adapters
    backend.set_adapters = lambda scales: (settings.append(dict(scales)), switch(scales))[1]

    first = agent.run("What is 17 * 23?")
    assert first.tool_calls and "391" in first.answer
    assert {"answers": 1.0} in settings
    settings.clear()
    agent.tool_choice = "none"
    agent.run("Hello! Who are you?")
    assert {"answers": 1.0} not in settings


@pytest.mark.model
def test_a_later_turn_is_answered_with_its_own_result():
    session = Agent(DEMO_TOOLS, allow="all").session()
    session.send("Start a 12 minute timer for the pasta")
    later = session.send("What is 17 * 23?")
    assert [c.name for c in later.tool_calls] == ["calculate"]  # the call is right
    assert "391" in later.answer, later.answer  # not the timer's sentence again (it was)
    third = session.send("What time is it?")
    assert [c.name for c in third.tool_calls] == ["current_time"]
    assert "timer" not in third.answer.lower(), third.answer


def test_data_synth_writes_answer_examples_that_validate(tmp_path):
    from click.testing import CliRunner

    from edgeagent.cli import main
    from edgeagent.train.data import read_jsonl

    out = tmp_path / "answers.jsonl"
    runner = CliRunner()
    result = runner.invoke(main, ["data", "synth", "--bank", "train", "--answers", "--n", "20",
                                  "--out", str(out), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    examples, report = read_jsonl(out)
    assert report.valid == 20 and all(ex.messages[-1].role == "assistant" for ex in examples)
    refused = runner.invoke(main, ["data", "synth", "--bank", "demo", "--answers", "--n", "2",
                                   "--out", str(tmp_path / "x.jsonl")])  # fmt: skip
    assert refused.exit_code == 2 and "use --bank train" in refused.output
