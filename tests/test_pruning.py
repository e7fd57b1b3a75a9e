"""Tool pruning: with many tools, each turn offers only the best few, in the prompt and grammar."""

from __future__ import annotations

from edgeagent import Agent, Tool
from edgeagent.pruning import ToolIndex, tool_document
from tests.test_agent_loop import ScriptedBackend

TOPICS = ["weather", "music", "calendar", "email", "timer", "lights", "recipe", "flight", "stock",
          "news", "translate", "map", "alarm", "shopping", "fitness", "bank", "podcast", "taxi",
          "hotel", "movie", "library", "parcel", "garden", "pharmacy"]  # fmt: skip
PARAMS = {
    "type": "object",
    "properties": {"query": {"type": "string", "description": "what to look up"}},
}


def make_tools():
    return [
        Tool.from_schema(
            f"{t}_lookup", f"Look up {t} information for the user.", PARAMS, fn=lambda query, t=t: t
        )
        for t in TOPICS
    ]


def test_tool_document_names_parameters():
    doc = tool_document(make_tools()[0])
    assert "weather lookup" in doc and "query: what to look up" in doc


def test_index_ranks_the_matching_tool_first():
    index = ToolIndex(make_tools())
    assert index.ranked("what is the weather tomorrow", 3)[0] == "weather_lookup"
    assert index.ranked("book a taxi to the station", 3)[0] == "taxi_lookup"
    selected = index.select("play some music", 5)
    assert len(selected) == 5 and "music_lookup" in [t.name for t in selected]
    # the selection keeps the agent's order, so the same selection renders the same prompt
    order = [t.name for t in make_tools()]
    assert [t.name for t in selected] == sorted((t.name for t in selected), key=order.index)


def test_agent_offers_only_the_selected_tools():
    call = '<tool_call>[{"name": "taxi_lookup", "arguments": {"query": "station"}}]</tool_call>'
    backend = ScriptedBackend([call, "A taxi is on its way."])
    agent = Agent(make_tools(), backend=backend, max_tools=8, tool_k=4)
    result = agent.run("Book a taxi to the station")
    assert result.tool_calls[0].name == "taxi_lookup" and result.tool_calls[0].result == "taxi"
    prompt = "".join(map(chr, backend.prompts[0]))
    offered = [t for t in TOPICS if f'"{t}_lookup"' in prompt]
    assert len(offered) == 4 and "taxi" in offered
    grammar = backend.grammars[0]
    assert grammar.count("-call ::=") == 4 and "taxi_lookup" in grammar


def test_few_tools_are_not_pruned():
    backend = ScriptedBackend(["hi"])
    agent = Agent(make_tools()[:5], backend=backend, max_tools=8)
    assert agent.tool_index is None
    agent.run("hello")
    assert all(f'"{t}_lookup"' in "".join(map(chr, backend.prompts[0])) for t in TOPICS[:5])
