"""`edgeagent serve` driven by the official `openai` client: tools, tool_choice, parallel calls,
streaming deltas, json_schema answers, a tool result answered, and every error status. One real
server process on the embedded model (default configuration) for the module."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

openai = pytest.importorskip("openai")
pytest.importorskip("starlette")

KEY = "test-key"
TIMER = {
    "type": "function",
    "function": {
        "name": "set_timer",
        "description": "Start a countdown timer.",
        "parameters": {
            "type": "object",
            "properties": {
                "minutes": {"type": "integer", "minimum": 1, "maximum": 600},
                "label": {"type": "string"},
            },
            "required": ["minutes"],
        },
    },
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TOOLS = [TIMER, WEATHER]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp_path, *extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "EDGEAGENT_HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgeagent", "serve", "--port", str(port), *extra],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # a hang guard: the model loads in seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read() if proc.stderr else "the server died")
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the server did not come up")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc, url = start_server(tmp_path_factory.mktemp("serve"), "--api-key", KEY)
    yield url
    proc.terminate()
    proc.wait(timeout=60)


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, timeout=300, max_retries=0)


def valid_calls(message) -> list[tuple[str, dict]]:
    out = []
    for call in message.tool_calls or []:
        args = json.loads(call.function.arguments)
        jsonschema.validate(args, SCHEMAS[call.function.name])
        out.append((call.function.name, args))
    return out


pytestmark = pytest.mark.model


def test_models_and_health(server, client):
    assert [m.id for m in client.models.list().data] == ["edgeagent-default"]
    assert httpx.get(f"{server}/health").json()["status"] == "ok"


def test_required_tool_choice_returns_schema_valid_calls(client):
    reply = client.chat.completions.create(
        model="edgeagent-default", tools=TOOLS, tool_choice="required",
        messages=[{"role": "user", "content": "Start a 12 minute timer for the pasta"}],
    )  # fmt: skip
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = valid_calls(choice.message)
    assert calls and calls[0][0] == "set_timer" and calls[0][1]["minutes"] == 12
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0


def test_streamed_tool_call_deltas_assemble_into_the_same_call(client):
    kwargs = dict(
        model="edgeagent-default", tools=TOOLS, tool_choice="required",
        messages=[{"role": "user", "content": "What's the weather in Oslo?"}],
    )  # fmt: skip
    whole = valid_calls(client.chat.completions.create(**kwargs).choices[0].message)
    names: dict[int, str] = {}
    args: dict[int, str] = {}
    first_delta_kinds = []
    usage = None
    finish = None
    for event in client.chat.completions.create(
        **kwargs, stream=True, stream_options={"include_usage": True}
    ):
        usage = event.usage or usage
        for choice in event.choices:
            finish = choice.finish_reason or finish
            for d in choice.delta.tool_calls or []:
                first_delta_kinds.append("name" if d.function.name else "arguments")
                if d.function.name:
                    names[d.index] = d.function.name
                args[d.index] = args.get(d.index, "") + (d.function.arguments or "")
    streamed = [(names[i], json.loads(args[i])) for i in sorted(names)]
    assert streamed == whole and streamed[0][0] == "get_weather"
    assert first_delta_kinds[0] == "name" and first_delta_kinds.count("arguments") >= 2
    assert finish == "tool_calls" and usage is not None and usage.completion_tokens > 0


def test_named_tool_choice_and_none(client):
    named = client.chat.completions.create(
        model="m", tools=TOOLS, messages=[{"role": "user", "content": "Paris, please"}],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )  # fmt: skip
    assert [n for n, _ in valid_calls(named.choices[0].message)] == ["get_weather"]
    none = client.chat.completions.create(
        model="m", tools=TOOLS, tool_choice="none", max_tokens=40,
        messages=[{"role": "user", "content": "Start a 12 minute timer for the pasta"}],
    )  # fmt: skip
    assert none.choices[0].message.tool_calls is None and none.choices[0].message.content


def test_parallel_tool_calls_false_gives_at_most_one_call(client):
    reply = client.chat.completions.create(
        model="m", tools=TOOLS, tool_choice="required", parallel_tool_calls=False,
        messages=[{"role": "user", "content": "Set a timer for 5 minutes and another for 10"}],
    )  # fmt: skip
    assert len(valid_calls(reply.choices[0].message)) == 1


def test_a_tool_result_is_answered_in_words(client):
    reply = client.chat.completions.create(
        model="m", tools=TOOLS, max_tokens=60,
        messages=[
            {"role": "user", "content": "What's the weather in Oslo?"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1",
             "type": "function", "function": {"name": "get_weather",
             "arguments": '{"city": "Oslo"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "Oslo: 14 C, light rain"},
        ],
    )  # fmt: skip
    choice = reply.choices[0]
    assert choice.message.content and choice.finish_reason in ("stop", "length")


def test_a_json_schema_answer_is_valid_json_of_that_schema(client):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1,
                                                              "maximum": 14}},
        "required": ["city", "days"],
    }  # fmt: skip
    reply = client.chat.completions.create(
        model="m", max_tokens=80,
        messages=[{"role": "user", "content": "A 3 day trip to Lisbon: city and days as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "trip", "schema": schema}},
    )  # fmt: skip
    jsonschema.validate(json.loads(reply.choices[0].message.content), schema)


def test_stop_sequences_end_the_answer(client):
    reply = client.chat.completions.create(
        model="m", max_tokens=80, stop=["."],
        messages=[{"role": "user", "content": "Tell me about tea in two sentences."}],
    )  # fmt: skip
    text = reply.choices[0].message.content
    assert "." not in text and reply.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"messages": []}, 400, "messages must be a non-empty list"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, 400, "role must be"),
        ({"messages": [{"role": "user", "content": "hi"}],
          "tools": [{"type": "function", "function": {"name": "x", "parameters": {
              "type": "object", "properties": {"a": {"type": "nonsense"}}}}}]},
         400, "not a valid JSON Schema"),
        ({"messages": [{"role": "user", "content": "hi"}], "tools": [TIMER],
          "tool_choice": {"type": "function", "function": {"name": "nope"}}}, 400, "nope"),
    ],
)  # fmt: skip
def test_bad_requests_get_openai_error_objects(server, body, status, says):
    r = httpx.post(f"{server}/v1/chat/completions", json=body, timeout=60,
                   headers={"Authorization": f"Bearer {KEY}"})  # fmt: skip
    assert r.status_code == status
    error = r.json()["error"]
    assert says in error["message"] and error["type"] == "invalid_request_error"


def test_a_conversation_longer_than_the_context_is_a_400(client):
    long = [{"role": "user", "content": "lorem ipsum " * 3000}]
    with pytest.raises(openai.BadRequestError, match="context"):
        client.chat.completions.create(model="m", messages=long)
    with pytest.raises(openai.APIError, match="context"):
        for _ in client.chat.completions.create(model="m", messages=long, stream=True):
            pass


def test_the_client_sees_401_and_413_as_errors(server, client):
    wrong = openai.OpenAI(base_url=f"{server}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    huge = {"messages": [{"role": "user", "content": "x" * (2 << 20)}]}
    r = httpx.post(f"{server}/v1/chat/completions", json=huge, timeout=60,
                   headers={"Authorization": f"Bearer {KEY}"})  # fmt: skip
    assert r.status_code == 413 and "over" in r.json()["error"]["message"]


def test_a_disconnected_stream_frees_the_model(server, client):
    stream = client.chat.completions.create(
        model="m", max_tokens=400, stream=True,
        messages=[{"role": "user", "content": "Write a long story about a lighthouse."}],
    )  # fmt: skip
    next(iter(stream))
    stream.close()  # the client goes away mid-answer
    start = time.monotonic()
    reply = client.chat.completions.create(
        model="m", max_tokens=5, messages=[{"role": "user", "content": "Hi"}]
    )
    assert reply.choices[0].message.content is not None
    assert time.monotonic() - start < 120  # a hang guard, not a measurement


def test_503_while_the_model_loads():
    from starlette.testclient import TestClient

    from edgeagent.server import Engine, create_app

    engine = Engine(lambda: None, "m")  # type: ignore[arg-type,return-value]
    with TestClient(create_app(engine)) as http:
        r = http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 503 and "loading" in r.json()["error"]["message"]
        assert http.get("/health").status_code == 503


# ---------------------------------------------------------------------------- the deltas


@given(
    calls=st.lists(
        st.tuples(
            st.sampled_from(["set_timer", "get_weather", "a.b"]),
            st.dictionaries(st.text(min_size=1, max_size=5),
                            st.one_of(st.integers(), st.text(max_size=8),
                                      st.lists(st.integers(), max_size=2),
                                      st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)),
                            max_size=3),
        ),
        min_size=1, max_size=3,
    ),
    cuts=st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=40),
)  # fmt: skip
def test_call_deltas_assemble_to_the_calls_for_any_chunking(calls, cuts):
    """The wire text of any call list, cut into pieces anywhere: the deltas assemble into the
    same calls (names first, arguments in fragments)."""
    from edgeagent.openai_api import CallDeltas
    from edgeagent.wireformat import ToolCall, format_calls

    text = format_calls([ToolCall(n, a) for n, a in calls])
    deltas, at, i = CallDeltas(), 0, 0
    out: list[dict] = []
    while at < len(text):
        step = cuts[i % len(cuts)]
        out += deltas.feed(text[at : at + step])
        at, i = at + step, i + 1
    names, args = {}, {}
    for d in out:
        if "id" in d:
            names[d["index"]] = d["function"]["name"]
        args[d["index"]] = args.get(d["index"], "") + d["function"]["arguments"]
    assert [(names[i], json.loads(args[i])) for i in sorted(names)] == [tuple(c) for c in calls]


def test_parallel_tool_calls_false_admits_one_call_in_the_grammar():
    """The grammar a request gets: two calls are admitted with parallel_tool_calls (the
    default), one without; and the reply holds that many (a scripted model that writes two)."""
    from starlette.testclient import TestClient

    from edgeagent.agent import Agent
    from edgeagent.server import Engine, create_app
    from tests.gbnf import matches, parse_gbnf
    from tests.test_agent_loop import ScriptedBackend

    two = ('<tool_call>[{"name": "set_timer", "arguments": {"minutes": 5}}, '
           '{"name": "set_timer", "arguments": {"minutes": 10}}]</tool_call>')  # fmt: skip
    backend = ScriptedBackend([two, two])
    engine = Engine(lambda: Agent([], backend=backend), "m")
    engine.load()
    counts = []
    with TestClient(create_app(engine)) as http:
        for parallel in (True, False):
            r = http.post("/v1/chat/completions", json={
                "messages": [{"role": "user", "content": "two timers"}], "tools": [TIMER],
                "tool_choice": "required", "parallel_tool_calls": parallel})  # fmt: skip
            counts.append(len(r.json()["choices"][0]["message"]["tool_calls"]))
    assert counts == [2, 1]
    with_parallel, single = (parse_gbnf(g) for g in backend.grammars)
    assert matches(with_parallel, two) and not matches(single, two)


def test_server_tools_run_in_the_server_and_the_client_gets_the_rest():
    """--tools: a call of the server's own tool runs there (a tool with side effects only when
    allowed) and the model goes on; the client gets the reply that calls its tools."""
    from starlette.testclient import TestClient

    from edgeagent.agent import Agent
    from edgeagent.server import Engine, create_app
    from edgeagent.tools import tool
    from tests.test_agent_loop import ScriptedBackend, call

    ran = []

    @tool
    def room_temperature() -> str:
        "The temperature in this room."
        ran.append("room_temperature")
        return "21 C"

    @tool(effects="write")
    def open_window() -> str:
        "Open the window."
        ran.append("open_window")
        return "opened"

    backend = ScriptedBackend([
        call("room_temperature", "{}"), call("open_window", "{}"),
        call("set_timer", '{"minutes": 5}'),
    ])  # fmt: skip
    own = [room_temperature, open_window]
    engine = Engine(lambda: Agent(own, backend=backend, max_steps=4), "m", own)
    engine.load()
    with TestClient(create_app(engine)) as http:
        r = http.post(
            "/v1/chat/completions",
            json={
                "messages": [{"role": "user", "content": "warm in here? timer 5"}],
                "tools": [TIMER],
            },
        )
        clash = http.post("/v1/chat/completions", json={
            "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "open_window"}}]})  # fmt: skip
    calls = r.json()["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["set_timer"]
    assert ran == ["room_temperature"]  # open_window has side effects and was not allowed
    prompt = "".join(map(chr, backend.prompts[-1]))
    assert "21 C" in prompt and "open_window was not run" in prompt.lower()
    assert clash.status_code == 400 and "runs itself" in clash.json()["error"]["message"]
