"""The call threshold: a first reply begins a call only where the model's P(call) at the first
token reaches it, else it answers; the shipped adapter's value is the calibrated one."""

from __future__ import annotations

import pytest

from edgeagent.agent import Agent
from edgeagent.backends import SamplingParams
from edgeagent.confidence import SHIPPED_CALL_THRESHOLD
from edgeagent.demo_tools import DEMO_TOOLS


def test_the_shipped_adapter_gets_the_calibrated_threshold_and_nothing_else_does():
    assert 0 < SHIPPED_CALL_THRESHOLD < 1
    assert Agent(DEMO_TOOLS).sampling.call_threshold == SHIPPED_CALL_THRESHOLD
    assert Agent(DEMO_TOOLS, call_threshold=0.9).sampling.call_threshold == 0.9
    assert Agent(DEMO_TOOLS, adapter=None).sampling.call_threshold == 0.0  # the bare model
    assert Agent(DEMO_TOOLS, constrained=False).sampling.call_threshold == 0.0  # no P(call)
    derived = Agent(DEMO_TOOLS, call_threshold=0.5).derive(DEMO_TOOLS[:2])
    assert derived.sampling.call_threshold == 0.5


def test_the_threshold_holds_back_only_the_turns_first_call():
    """It was calibrated on first decisions (does the request need a tool?); after a tool error
    it held back the call again with the value the error suggests (the answers check)."""
    from tests.test_agent_loop import ScriptedBackend, broken, call

    class Recording(ScriptedBackend):
        thresholds: list[float] = []

        def generate(self, prompt, *, sampling, **kw):
            if not sampling.continues:  # not the one more call the agent asks for
                self.thresholds.append(sampling.call_threshold)
            return super().generate(prompt, sampling=sampling, **kw)

    backend = Recording([call("broken", '{"x": 1}'), call("broken", '{"x": 2}'), "It failed."])
    agent = Agent([broken], backend=backend, call_threshold=0.7, base_answers=False)
    result = agent.run("Break it")
    assert [c.arguments["x"] for c in result.tool_calls] == [1, 2]
    assert backend.thresholds == [0.7, 0.0, 0.0]
    assert agent.sampling.call_threshold == 0.7  # the agent's own setting is unchanged


@pytest.mark.model
def test_a_call_the_model_is_less_sure_of_than_the_threshold_becomes_an_answer():
    from edgeagent.bfcl import function_tools
    from edgeagent.evaluation.runner import Evaluator, bfcl_cases, first_reply
    from edgeagent.replies import ADAPTER
    from edgeagent.wireformat import reply_kind

    evaluator = Evaluator()
    backend = evaluator.backend
    backend.set_adapters({ADAPTER: 1.0})
    for case in bfcl_cases(["irrelevance"], 20):  # the shipped adapter calls on some of them
        tools = function_tools(case.functions)
        text, stats = first_reply(backend, tools, case.question)
        if reply_kind(text) == "call" and stats.call_mass < 0.9:
            break
    else:
        pytest.fail("no call below P 0.9 among the first 20 irrelevance cases")
    # P(call) moves by a point or two between a prompt evaluated whole and one from the cache
    mass = stats.call_mass
    above, s1 = first_reply(backend, tools, case.question,
                            sampling=SamplingParams(call_threshold=mass + 0.05))  # fmt: skip
    assert reply_kind(above) == "answer" and s1.call_mass == pytest.approx(mass, abs=0.05)
    below, _ = first_reply(backend, tools, case.question,
                           sampling=SamplingParams(call_threshold=mass - 0.05))  # fmt: skip
    assert reply_kind(below) == "call"  # at or above the threshold the call stands


@pytest.mark.model
def test_a_reply_that_must_call_calls_whatever_the_threshold():
    agent = Agent(DEMO_TOOLS, tool_choice="required", call_threshold=0.9999, max_steps=1)
    result = agent.run("Tell me a joke about penguins.")
    assert result.tool_calls  # the grammar admits only calls: nothing to hold back
