"""A proposed extra call is kept only where the request says its new values."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeagent.grounding import grounded, said
from edgeagent.wireformat import ToolCall


def timer(minutes: int, label: str) -> ToolCall:
    return ToolCall("set_timer", {"minutes": minutes, "label": label})


TWO_TIMERS = "Set a timer for 5 minutes for the eggs and another for 10 minutes for the rice"


def test_the_second_thing_asked_for_is_grounded():
    assert grounded(timer(10, "rice"), [timer(5, "eggs")], TWO_TIMERS)
    factorial = [ToolCall("factorial", {"number": 5})]
    assert grounded(ToolCall("factorial", {"number": 10}), factorial, "Factorial of 5,10 and 15.")


def test_made_up_values_and_values_already_used_are_not():
    assert not grounded(timer(10, "pasta"), [timer(12, "pasta")], "A 12 minute pasta timer")
    # the only "3" is the first call's distance: charge 3 is made up
    field = ToolCall("field", {"charge": 2, "distance": 3})
    ask = "The electric field for charge 2 at distance 3"
    assert not grounded(ToolCall("field", {"charge": 3, "distance": 3}), [field], ask)
    # said twice, used once: the second use is grounded
    km = ToolCall("convert", {"value": 5, "from": "km", "to": "mi"})
    swap = ToolCall("convert", {"value": 5, "from": "mi", "to": "km"})
    assert grounded(swap, [km], "Convert 5 km to mi and 5 mi to km")
    assert not grounded(swap, [km], "Convert 5 km to mi")


def test_a_copy_or_a_call_new_only_in_a_flag_is_not_grounded():
    first = ToolCall("get_case", {"number": "XY12", "history": False})
    assert not grounded(first, [first], "Get case XY12")
    assert not grounded(ToolCall("get_case", {"number": "XY12", "history": True}), [first],
                        "Get case XY12, with its history")  # fmt: skip


def test_another_tool_needs_all_its_values_said():
    weather = ToolCall("weather", {"city": "Paris"})
    assert grounded(ToolCall("time", {"city": "Oslo"}), [weather], "Weather in Paris, time in Oslo")
    assert not grounded(ToolCall("time", {"city": "Rome"}), [weather], "Weather in Paris")
    # no value to ground it: the demo model proposed list_timers() beside a timer
    assert not grounded(ToolCall("list_timers", {}), [weather], "Weather in Paris, list timers")


def test_numbers_are_matched_as_numbers():
    assert said(1200, "Move $1,200 to savings") == 1
    assert said(5.0, "for 5 minutes") == 1
    assert said(5, "5.5 km") == 0 and said(5, "15 km") == 0 and said(0.5, "10.5") == 0
    assert said("Rice", "the rice and the RICE") == 2


@given(
    name=st.sampled_from(["a", "b"]),
    args=st.dictionaries(
        st.sampled_from(["x", "y", "z"]),
        st.one_of(st.integers(-99, 99), st.text(max_size=8), st.booleans(), st.none()),
    ),
    request_text=st.text(max_size=60),
)
def test_a_copy_of_an_earlier_call_is_never_grounded(name, args, request_text):
    call = ToolCall(name, args)
    assert not grounded(ToolCall(name, dict(args)), [call], request_text)


@given(
    values=st.lists(st.integers(0, 10_000), min_size=2, max_size=4, unique=True),
    words=st.lists(
        st.sampled_from(["eggs", "rice", "pasta", "tea"]), min_size=2, max_size=2, unique=True
    ),  # fmt: skip
)
def test_calls_built_from_the_request_are_grounded_and_changed_values_are_not(values, words):
    first, second = values[0], values[1]
    ask = f"Set {first} minutes for {words[0]} and {second} minutes for {words[1]}"
    assert grounded(timer(second, words[1]), [timer(first, words[0])], ask)
    assert not grounded(timer(second + 10_001, words[1]), [timer(first, words[0])], ask)


# The agent: a reply's later calls, and the calls it asks the model for.


def _agent(replies, proposals=(), **kw):
    from edgeagent import Agent
    from tests.test_agent_loop import ScriptedBackend, set_timer

    backend = ScriptedBackend(replies)
    backend.proposals = list(proposals)
    return Agent([set_timer], backend=backend, **kw), backend


def _two(first: str, second: str) -> str:
    return (f'<tool_call>[{{"name": "set_timer", "arguments": {first}}}, '
            f'{{"name": "set_timer", "arguments": {second}}}]</tool_call>')  # fmt: skip


def test_the_models_own_calls_stand():
    agent, backend = _agent([_two('{"minutes": 5}', '{"minutes": 10}'), "Done."], [""])
    minutes = [c.arguments["minutes"] for c in agent.run("A timer of 5 minutes").tool_calls]
    assert minutes == [5, 10] and not backend.proposals  # asked for a third: nothing


def test_a_copy_in_the_reply_is_cut_and_counted():
    agent, _ = _agent([_two('{"minutes": 5}', '{"minutes": 5}'), "Done."], [""])
    result = agent.run("A timer of 5 minutes")
    assert len(result.tool_calls) == 1 and result.duplicates_dropped == 1


def test_asked_for_one_more_call_the_model_writes_the_second_thing_asked_for():
    from tests.test_agent_loop import call

    rice = '{"name": "set_timer", "arguments": {"minutes": 10, "label": "rice"}}]</tool_call>'
    first = call("set_timer", '{"minutes": 5, "label": "eggs"}')
    agent, backend = _agent([first, "Both set."], [rice, ""])
    result = agent.run(TWO_TIMERS)
    assert [c.arguments for c in result.tool_calls] == [
        {"minutes": 5, "label": "eggs"},
        {"minutes": 10, "label": "rice"},
    ]
    assert not backend.proposals  # asked twice: the second time it wrote nothing
    # the grammar it was asked under admits values the request says, not made-up ones
    from tests.gbnf import matches, parse_gbnf

    asked = parse_gbnf(backend.continued[0])
    assert matches(asked, rice) and not matches(asked, rice.replace("rice", "pasta"))
    # a made-up one is not run; and with propose_calls off the model is not asked
    made_up = rice.replace("10", "7")
    agent, backend = _agent([first, "Set."], [made_up])
    assert len(agent.run(TWO_TIMERS).tool_calls) == 1 and not backend.proposals
    agent, backend = _agent([first, "Set."], [rice], propose_calls=False)
    assert len(agent.run(TWO_TIMERS).tool_calls) == 1 and backend.proposals == [rice]


def test_a_proposed_call_with_no_arguments_is_followed_by_one_of_the_same_tool():
    """With all nine demo tools the model proposed list_timers() after the eggs timer; given
    set_timer's name, it writes the rice timer."""
    from edgeagent import Agent, tool
    from tests.test_agent_loop import ScriptedBackend, call, set_timer

    @tool
    def list_timers() -> str:
        """The running timers."""
        return "none"

    @tool
    def add_note(text: str) -> str:
        """Save a note."""
        return "saved"

    listing = '{"name": "list_timers", "arguments": {}}]</tool_call>'
    rice = ' {"minutes": 10, "label": "rice"}}]</tool_call>'  # after the name it was given
    first = call("set_timer", '{"minutes": 5, "label": "eggs"}')
    backend = ScriptedBackend([first, "Both set."])
    backend.proposals = [listing, rice]
    agent = Agent([set_timer, list_timers, add_note], backend=backend, allow=["set_timer"])
    calls = agent.run(TWO_TIMERS).tool_calls
    assert [(c.name, c.arguments.get("label")) for c in calls] == [
        ("set_timer", "eggs"), ("set_timer", "rice")
    ]  # fmt: skip
    offered = ["list_timers" in (g or "") for g in backend.continued]
    assert offered == [True, False, True]  # all tools, set_timer's arguments, all tools
    # a proposal with arguments that is not kept ends it: the model is not asked again
    backend = ScriptedBackend([first, "Set."])
    note = '{"name": "add_note", "arguments": {"text": "buy milk"}}]</tool_call>'
    backend.proposals = [note, rice]
    agent = Agent([set_timer, list_timers, add_note], backend=backend, allow=["set_timer"])
    assert len(agent.run(TWO_TIMERS).tool_calls) == 1 and backend.proposals == [rice]


def test_only_the_turns_first_reply_is_continued_and_max_calls_caps_it():
    from tests.test_agent_loop import call

    rice = '{"name": "set_timer", "arguments": {"minutes": 10, "label": "rice"}}]</tool_call>'
    first = call("set_timer", '{"minutes": 5, "label": "eggs"}')
    agent, backend = _agent([first, "Set."], [rice], max_calls=1)
    assert len(agent.run(TWO_TIMERS).tool_calls) == 1 and backend.proposals == [rice]
    # after tool results the model decides alone: the first reply is asked (and writes
    # nothing), the second is not
    agent, backend = _agent([first, call("set_timer", '{"minutes": 10}'), "Set."], ["", rice])
    assert len(agent.run(TWO_TIMERS).tool_calls) == 2 and backend.proposals == [rice]


def test_the_continuation_grammar_admits_one_more_call_and_the_end_only():
    from edgeagent.wireformat import build_grammar, first_call_end, next_call_grammar
    from tests.gbnf import matches, parse_gbnf
    from tests.test_agent_loop import set_timer

    grammar = parse_gbnf(next_call_grammar(build_grammar([set_timer], allow_answer=False)))
    rice = '{"name": "set_timer", "arguments": {"minutes": 10, "label": "rice"}}'
    assert matches(grammar, rice + "]</tool_call>")
    assert not matches(grammar, rice + ", " + rice + "]</tool_call>")
    assert not matches(grammar, "<tool_call>[" + rice + "]</tool_call>")
    assert not matches(grammar, "Done.")
    with pytest.raises(ValueError, match="calls only"):
        next_call_grammar(build_grammar([set_timer]))
    reply = f"<tool_call>[{rice}, {rice}]</tool_call>"
    assert reply[: first_call_end(reply)].endswith("}") and first_call_end(reply[:20]) is None


def test_a_call_that_only_adds_to_an_earlier_one_or_names_a_field_is_not_grounded():
    """Asked for one more, with its values restricted to the request's, the model wrote the
    first call again with an argument added, or the request's word for a field as its value."""
    route = ToolCall("get_directions", {"start": "Sydney", "end": "Melbourne"})
    ask = "Get directions from Sydney to Melbourne using the fastest route."
    fastest = ToolCall(
        "get_directions", {"start": "Sydney", "end": "Melbourne", "route": "fastest"}
    )
    assert not grounded(fastest, [route], ask)
    assert grounded(ToolCall("get_directions", {"start": "Melbourne", "end": "Sydney"}), [route],
                    "Directions from Sydney to Melbourne and back from Melbourne to Sydney")  # fmt: skip
    derivative = [ToolCall("calculus.derivative", {"function": "3x^2 + 2x - 1"})]
    ask = "Calculate the derivative of the function 3x^2 + 2x - 1."
    assert not grounded(ToolCall("calculus.derivative", {"function": "function"}), derivative, ask)
    pods = ToolCall("getPods", {"namespace": "namespace"})
    assert not grounded(pods, [route], "List the pods of the 'default' namespace")


def test_a_second_value_for_a_field_is_joined_to_the_first_in_the_request():
    """Two values of one field asked for alike are joined ("and", a comma, "then"...): "a
    gas-powered vehicle driving 1500 miles" says "driving", but as no second vehicle type."""
    gas = [ToolCall("emission", {"vehicle": "gas", "miles": 1500})]
    ask = "What is the carbon footprint of a gas-powered vehicle driving 1500 miles in a year?"
    assert not grounded(ToolCall("emission", {"vehicle": "driving", "miles": 1500}), gas, ask)
    ask = "The footprint of a gas vehicle and of a diesel one, over 1500 miles"
    assert grounded(ToolCall("emission", {"vehicle": "diesel", "miles": 1500}), gas, ask)
    todo = [ToolCall("todo_add", {"content": "go for shopping at 9 pm"})]
    ask = "create todo with the following words verbatim: go for shopping at 9 pm"
    assert not grounded(ToolCall("todo_add", {"content": "verbatim"}), todo, ask)
    em = [ToolCall("em_force", {"b_field": 5, "d_time": 4})]
    ask = "field of 5 Tesla and change in time of 4 seconds, then repeat with a time of 10 seconds"
    assert grounded(ToolCall("em_force", {"b_field": 5, "d_time": 10}), em, ask)


def test_a_quoted_part_of_the_request_is_a_value_whole():
    from edgeagent.grounding import said_values

    strings, _ = said_values("Reverse the string 'Hello, World!' and the word \"Hi!\"", [], 128)
    assert "Hello, World!" in strings and "Hi!" in strings
    strings, _ = said_values("Berlin's and Madrid's stores", [], 128)
    assert "s and Madrid" not in strings  # an apostrophe inside a word quotes nothing


def test_a_part_of_the_request_an_earlier_call_took_grounds_nothing_else():
    translate = ToolCall("translate", {"text": "Hello, how are you?", "to": "French"})
    ask = "Translate Hello, how are you? from English to French."
    assert not grounded(ToolCall("sentiment", {"text": "How are you?"}), [translate], ask)
    assert not grounded(timer(5, "mi"), [timer(5, "pasta")], "5 minutes for the pasta")  # words
    # an earlier value not said whole takes its words: "pdf" is the first call's
    pdf = [ToolCall("find_files", {"pattern": "*.pdf"})]
    ask = "Find the pdf files and the txt files"
    assert not grounded(ToolCall("find_files", {"pattern": "pdf"}), pdf, ask)
    assert grounded(ToolCall("find_files", {"pattern": "txt"}), pdf, ask)


def test_a_proposal_stops_at_its_first_value_the_request_does_not_say():
    from edgeagent.replies import _unsaid_so_far

    eggs = [timer(5, "eggs")]
    made_up = '{"name": "set_timer", "arguments": {"minutes": 7,'
    assert _unsaid_so_far(made_up, eggs, TWO_TIMERS)
    assert not _unsaid_so_far(made_up.replace("7", "10"), eggs, TWO_TIMERS)
    assert not _unsaid_so_far('{"name": "set_timer",', eggs, TWO_TIMERS)  # no value yet
    assert not _unsaid_so_far('{"name": "n", "arguments": {"text": "a,', eggs, "a, b")


@pytest.mark.model
def test_the_default_agent_sets_both_timers_of_one_request_and_makes_up_none():
    """The embedded model with the shipped adapter writes the eggs timer and ends its list;
    asked for one more, it writes the rice timer (with all nine demo tools offered it first
    proposes list_timers(), then, given set_timer's name, the rice timer). Asked for one timer,
    it gets one."""
    from edgeagent import Agent
    from edgeagent.demo_tools import DEMO_TOOLS, set_timer

    for tools in ([set_timer], DEMO_TOOLS):
        calls = Agent(tools, allow=["set_timer"]).run(TWO_TIMERS).tool_calls
        timers = [(c.name, c.arguments["minutes"], c.arguments.get("label")) for c in calls]
        assert sorted(timers) == [("set_timer", 5, "eggs"), ("set_timer", 10, "rice")]
    one = Agent(DEMO_TOOLS, allow=["set_timer"]).run("Start a 12 minute timer for the pasta")
    assert [(c.name, c.arguments["minutes"]) for c in one.tool_calls] == [("set_timer", 12)]


# A proposal's values: chosen among what the request says.


def _restricted(tools, request, earlier):
    from edgeagent.grammar import restrict_values
    from edgeagent.grounding import said_values
    from edgeagent.wireformat import build_grammar, next_call_grammar
    from tests.gbnf import parse_gbnf

    grammar = next_call_grammar(build_grammar(tools, allow_answer=False))
    return parse_gbnf(restrict_values(grammar, *said_values(request, earlier, 128)))


def test_a_proposals_values_are_chosen_among_what_the_request_says():
    """Asked for one more call beside get_weather("Paris"), the model wrote "Istanbul" for
    "Paris and in Tokyo": under the restricted grammar it can write only what was said."""
    from tests.gbnf import matches
    from tests.test_agent_loop import set_timer

    rules = _restricted([set_timer], TWO_TIMERS, [timer(5, "eggs")])

    def admits(minutes: str, label: str) -> bool:
        text = f'{{"name": "set_timer", "arguments": {{"minutes": {minutes}, "label": "{label}"}}}}'
        return matches(rules, text + "]</tool_call>")

    assert admits("10", "rice") and admits("10", "minutes for the rice") and admits("5", "eggs")
    assert not admits("7", "rice") and not admits("10", "pasta")  # made up
    assert not admits("10", "ric")  # a span is whole words
    assert not admits("10", "the rice") and not admits("10", "rice and")  # no "the" at its edge
    # numbers as a request writes them: "$1,200", "-74.0060"
    from edgeagent.bfcl import function_tools

    pay = function_tools([{"name": "pay", "description": "", "parameters": {"type": "dict",
                           "properties": {"amount": {"type": "float"}}}}])  # fmt: skip
    rules = _restricted(pay, "Pay $1,200 to -74.0060", [])
    for number, ok in (("1200", True), ("-74.0060", True), ("74.0060", True), ("200", False),
                       ("1", False)):  # fmt: skip
        assert (
            matches(rules, f'{{"name": "pay", "arguments": {{"amount": {number}}}}}]</tool_call>')
            is ok
        )


def test_a_rule_nothing_said_fits_is_left_as_it_was():
    from edgeagent.grammar import restrict_values
    from edgeagent.wireformat import build_grammar, next_call_grammar
    from tests.test_agent_loop import set_timer

    grammar = next_call_grammar(build_grammar([set_timer], allow_answer=False))
    assert restrict_values(grammar, [], []) == grammar  # no number said: minutes stays free
    assert "said-integer" in restrict_values(grammar, [], ["5", "2.5"])
    assert "said-string" not in restrict_values(grammar, ["x" * 200], [])  # over the cap


@given(
    words=st.lists(st.sampled_from(["eggs", "rice", "pasta", "O'Brien", 'say "hi"', "7:30"]),
                   min_size=1, max_size=4),
    numbers=st.lists(st.integers(0, 5000), max_size=3),
    data=st.data(),
)  # fmt: skip
def test_every_value_a_restricted_proposal_can_write_was_said(words, numbers, data):
    """Whatever call the restricted grammar derives, each of its strings is a span of the
    request's words (or an earlier value) and each number is said."""
    import json

    from edgeagent.grounding import said_values
    from tests.gbnf import generate
    from tests.test_agent_loop import set_timer

    request = " and ".join(words + [f"{n:,} minutes" for n in numbers])
    earlier = [timer(3, "tea")]
    rules = _restricted([set_timer], request, earlier)
    call = json.loads(generate(data, rules).removesuffix("]</tool_call>"))
    strings, said_numbers = said_values(request, earlier, 128)
    for value in call["arguments"].values():
        if isinstance(value, str):
            assert value in strings and (value in request or value == "tea")
        else:
            assert json.dumps(value) in said_numbers and (value == 3 or said(value, request))
