"""The real embedded default model (SmolLM2-135M-Instruct Q4_1) through llama.cpp."""

from __future__ import annotations

import json

import pytest

from edgeagent import Agent
from edgeagent.agent import RunFinished, TextDelta
from edgeagent.backends import SamplingParams
from edgeagent.demo_tools import DEMO_TOOLS
from edgeagent.wireformat import build_grammar

pytestmark = pytest.mark.model
BY_NAME = {t.name: t for t in DEMO_TOOLS}


def assert_calls_valid(result):
    for call in result.tool_calls:
        BY_NAME[call.name].validate(call.arguments)  # raises if not schema-valid
        json.dumps(call.arguments, allow_nan=False)


def test_timer_prompt_gives_schema_valid_calls_and_an_answer(backend):
    agent = Agent(DEMO_TOOLS, backend=backend)
    result = agent.run("Start a 12 minute timer for the pasta")
    assert_calls_valid(result)
    assert result.answer.strip()
    assert result.usage.completion_tokens > 0 and result.timings.total_s > 0
    assert result.steps <= agent.max_steps


@pytest.mark.parametrize("temperature,seed", [(0.7, 0), (0.7, 1), (1.5, 0), (1.5, 1)])
def test_sampled_calls_under_the_grammar_always_parse_and_validate(backend, temperature, seed):
    """What the real sampler draws is admitted by the grammar, so it must validate: the property
    test's claim, checked against llama.cpp's (and llguidance's) own grammar engine. The first
    reply must call (tool_choice required), so there are calls to check."""
    sampling = SamplingParams(temperature=temperature, top_k=0, top_p=1.0, min_p=0.0, seed=seed)
    agent = Agent(DEMO_TOOLS, backend=backend, sampling=sampling, max_steps=2, max_tokens=256,
                  tool_choice="required", allow="all")  # fmt: skip
    result = agent.run("Convert 3 cups to ml, then add a note about it and set a timer.")
    assert result.tool_calls, result.problems
    assert not any("incomplete" in p or "malformed" in p for p in result.problems)
    assert_calls_valid(result)


def test_the_backend_accepts_the_grammars(backend):
    for allow_calls in (True, False):
        backend.check_grammar(build_grammar(DEMO_TOOLS, allow_calls=allow_calls))


def test_session_reuses_the_kv_cache(backend):
    session = Agent(DEMO_TOOLS, backend=backend, max_steps=1, max_tokens=48).session()
    first = session.send("Hello! Who are you?")
    second = session.send("What can you do?")
    # The system prompt, tool schemas and the first turn are not evaluated again.
    assert second.usage.cached_tokens >= first.usage.prompt_tokens
    assert second.usage.prompt_tokens > first.usage.prompt_tokens


def test_streamed_text_is_the_answer(backend):
    agent = Agent([], backend=backend, max_tokens=40)
    events = list(agent.stream("Say hello in three words."))
    result = events[-1].result
    assert isinstance(events[-1], RunFinished)
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert streamed.strip() == result.answer and result.answer


def test_prompt_that_does_not_fit_is_refused(backend):
    from edgeagent.errors import ContextOverflowError

    with pytest.raises(ContextOverflowError, match="context holds 2048"):
        Agent([], backend=backend).run("word " * 3000)


def test_each_adapter_setting_keeps_its_own_kv_cache():
    """The agent switches the shipped adapter on for calls and off for answers every turn. One
    llama.cpp context per setting keeps both caches (with one, each switch threw its cache
    away), and gives exactly what a backend that never switched gives."""
    from edgeagent.backends import GenerationStats
    from edgeagent.backends.llamacpp import LlamaCppBackend
    from edgeagent.models import DEFAULT_ADAPTER, default_model_path

    def run(backend, prompt):
        stats = GenerationStats()
        text = "".join(backend.generate(prompt, grammar=None, sampling=SamplingParams(),
                                        max_tokens=12, stats=stats))  # fmt: skip
        return text, stats.cached_tokens

    model = default_model_path()
    backend = LlamaCppBackend(model, n_ctx=1024, adapters={"adapter": DEFAULT_ADAPTER})
    prompt = backend.tokenize("<|im_start|>user\nWhat should I cook tonight?<|im_end|>\n"
                              "<|im_start|>assistant\n")  # fmt: skip
    tuned, _ = run(backend, prompt)
    backend.set_adapters({})
    bare, _ = run(backend, prompt)
    backend.set_adapters({"adapter": 1.0})
    assert run(backend, prompt) == (tuned, len(prompt) - 1)  # its cache survived the switch
    backend.set_adapters({})
    assert run(backend, prompt) == (bare, len(prompt) - 1)
    assert backend.contexts == 2
    assert run(LlamaCppBackend(model, n_ctx=1024), prompt)[0] == bare  # as if never switched
    one = LlamaCppBackend(model, n_ctx=1024, adapters={"adapter": DEFAULT_ADAPTER},
                          max_contexts=1)  # fmt: skip
    run(one, prompt)
    one.set_adapters({})
    assert run(one, prompt) == (bare, 0) and one.contexts == 1  # one context: cache cleared


def test_after_an_answer_the_adapters_context_already_holds_the_conversation():
    """With the shipped adapter (calls) and the base model (answers), the adapter's context
    evaluates the finished turn while the user reads, so the next turn starts from a full
    cache instead of first evaluating this turn's tool results and answer."""
    agent = Agent(DEMO_TOOLS)  # the default configuration
    session = agent.session()
    first = session.send("What time is it?")
    assert first.answer
    backend = agent.backend
    assert backend.adapters == {"adapter": 1.0}  # where the next turn starts
    held = backend.tokenize(agent.render(session.window.visible(session.messages), None, False))
    assert backend.reuse_cache(held) == len(held)  # the whole conversation, answer included


def test_a_call_under_the_adapter_streams_from_its_first_token():
    """The default configuration holds an adapter's reply back until it knows whether the base
    model must write it; under the grammar a call is known at its first token ("<"), so its
    text flows from there, not once the whole call tag has been generated."""
    from edgeagent.wireformat import CALL_OPEN

    agent = Agent(DEMO_TOOLS, tool_choice="required", max_steps=1)  # the default configuration
    deltas = [e for e in agent.session().stream("Start a 12 minute timer for the pasta")
              if isinstance(e, TextDelta)]  # fmt: skip
    assert deltas and deltas[0].kind == "call"
    assert CALL_OPEN.startswith(deltas[0].text) and len(deltas[0].text) < len(CALL_OPEN)


def test_a_new_session_starts_from_the_saved_state_of_its_system_prompt(tmp_path):
    """Every session with the same tools starts with the same ~1,000 tokens: the first one
    evaluates and saves them, later ones (other processes: a fresh backend here) load them, and
    a damaged state file is not used but evaluated and written again. Replies are the same."""
    from edgeagent.backends.llamacpp import LlamaCppBackend
    from edgeagent.models import default_model_path

    def first_reply():
        backend = LlamaCppBackend(default_model_path(), n_ctx=2048)
        evaluated: list[int] = []
        prefill = backend.prefill
        backend.prefill = lambda tokens: evaluated.append(len(tokens)) or prefill(tokens)
        agent = Agent(DEMO_TOOLS, backend=backend, max_steps=1, max_tokens=24)
        result = agent.run("What can you do?")
        return result.answer, evaluated

    answer, evaluated = first_reply()
    states = list((tmp_path / "home" / "cache" / "prompt-state").glob("*.state"))
    assert len(states) == 1 and evaluated and evaluated[0] > 500  # evaluated, then saved
    assert first_reply() == (answer, [])  # loaded: nothing evaluated before the request
    states[0].write_bytes(states[0].read_bytes()[:1000])  # a damaged state
    again, evaluated = first_reply()
    assert again == answer and evaluated  # not used: evaluated and saved again
    assert states[0].stat().st_size > 1000


def test_a_copy_of_an_earlier_call_is_steered_away_from_within_the_margin():
    """BFCL parallel_4 ("BMI for 6 ft and 80 kg, also for 5.6 ft and 60 kg"): the shipped adapter
    writes its first call a second time, which the agent drops. With a margin, the token that
    would go on copying gives way to a close one, and the second call is another call."""
    from edgeagent.bfcl import function_tools
    from edgeagent.evaluation.runner import Evaluator, bfcl_cases, first_reply
    from edgeagent.replies import ADAPTER
    from edgeagent.wireformat import parse_reply

    (case,) = [c for c in bfcl_cases(["parallel"], 5) if c.id == "parallel_4"]
    tools = function_tools(case.functions)
    backend = Evaluator().backend
    backend.set_adapters({ADAPTER: 1.0})
    # the reply as the model writes it, without the call the agent would ask for after it
    off, _ = first_reply(backend, tools, case.question, propose_calls=False)
    on, _ = first_reply(backend, tools, case.question, propose_calls=False,
                        sampling=SamplingParams(repeated_call_margin=3.0))  # fmt: skip
    assert len(parse_reply(off, tools).calls) == 1  # the copy was written and dropped
    calls = parse_reply(on, tools).calls
    assert len(calls) == 2 and calls[0] != calls[1]
    for call in calls:
        next(t for t in tools if t.name == call.name).validate(call.arguments)
