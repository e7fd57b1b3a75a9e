"""The CLI as a user runs it: a real process, real model, JSON out."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edgeagent import __version__
from edgeagent.demo_tools import DEMO_TOOLS


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "edgeagent", *args],
        capture_output=True,
        text=True,
        timeout=1800,  # a hang guard: these take seconds, 300 s on a loaded machine
        stdin=subprocess.DEVNULL,  # no terminal: tools with side effects are not asked for
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_version():
    assert __version__ in cli("--version").stdout


def test_models_json_reads_the_file():
    rows = json.loads(cli("models", "--json").stdout)
    default = rows[0]
    assert default["default"] and default["architecture"] == "llama"
    assert default["quantization"] == "Q4_1" and default["context_length"] == 8192


def test_models_names_a_bad_file(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model")
    out = cli("models", str(bad)).stdout
    assert "not a GGUF file" in out


def test_tools_json_lists_demo_tools():
    tools = json.loads(cli("tools", "--json").stdout)
    assert [t["name"] for t in tools] == [t.name for t in DEMO_TOOLS]
    timer = tools[0]
    assert timer["effects"] == "write"
    assert timer["parameters"]["properties"]["minutes"]["minimum"] == 1


def test_tools_from_a_file(tmp_path):
    src = tmp_path / "mytools.py"
    src.write_text(
        "from edgeagent import tool\n\n@tool\ndef greet(name: str) -> str:\n"
        "    '''Greet someone.'''\n    return 'hi ' + name\n"
    )
    tools = json.loads(cli("tools", "--tools", str(src), "--json").stdout)
    assert tools[0]["name"] == "greet" and tools[0]["description"] == "Greet someone."


def test_bad_tools_module_is_a_clear_error():
    proc = cli("tools", "--tools", "no_such_module_xyz", check=False)
    assert proc.returncode == 2 and "cannot load tools" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.model
def test_run_json_gives_schema_valid_calls():
    data = json.loads(cli("run", "Start a 12 minute timer for the pasta", "--yes", "--json").stdout)
    assert set(data) >= {"answer", "tool_calls", "usage", "timings"}
    by_name = {t.name: t for t in DEMO_TOOLS}
    for call in data["tool_calls"]:
        assert set(call) >= {"name", "arguments", "result"}
        by_name[call["name"]].validate(call["arguments"])
    assert data["usage"]["completion_tokens"] > 0
    assert data["tool_calls"][0]["ok"]  # --yes: set_timer ran


@pytest.mark.model
def test_without_a_terminal_a_tool_with_side_effects_is_not_run_unless_yes():
    proc = cli("run", "Start a 12 minute timer for the pasta", "--json")
    call = json.loads(proc.stdout)["tool_calls"][0]
    assert call["name"] == "set_timer" and not call["ok"]
    assert call["error"] == "the user declined to run set_timer"
    assert "pass --allow set_timer (or --yes) to allow it" in proc.stderr
    from edgeagent.demo_tools import list_timers

    assert list_timers() == []  # the timer was never set (the same $EDGEAGENT_HOME)


@pytest.mark.model
def test_run_prints_answer_and_summary():
    proc = cli("run", "What is 12 times 7?")
    assert proc.stdout.strip()
    assert "step(s)" in proc.stderr and "tok/s" in proc.stderr


@pytest.mark.model
def test_the_shipped_adapter_makes_the_demo_prompt_call_the_timer():
    """Issue 4's acceptance: with the general adapter (the default), tool_choice auto."""
    from edgeagent.models import DEFAULT_ADAPTER

    assert DEFAULT_ADAPTER.exists(), "the shipped adapter is missing: make adapter"
    out = json.loads(cli("run", "Start a 12 minute timer for the pasta", "--json").stdout)
    call = out["tool_calls"][0]
    assert call["name"] == "set_timer" and call["arguments"]["minutes"] == 12
    bare = json.loads(
        cli("run", "--no-adapter", "Start a 12 minute timer for the pasta", "--json").stdout
    )
    assert not bare["tool_calls"]  # the bare 135M model answers in prose instead


@pytest.mark.model
def test_the_shipped_adapter_answers_every_demo_prompt_with_the_right_tool():
    """The rest of issue 4's acceptance: the docs' demo prompts, every demo tool offered (as
    `edgeagent run` offers them), the first reply greedy with the grammar on."""
    from edgeagent.backends.llamacpp import LlamaCppBackend
    from edgeagent.demo_tools import DEMO_PROMPTS, demo_reply_is_right
    from edgeagent.evaluation.runner import first_reply
    from edgeagent.models import DEFAULT_ADAPTER, default_model_path
    from edgeagent.tools import collect_tools
    from edgeagent.wireformat import parse_reply

    tools = collect_tools(DEMO_TOOLS)
    backend = LlamaCppBackend(default_model_path(), n_ctx=4096, adapters={"a": DEFAULT_ADAPTER})
    wrong = []
    for prompt, name, args in DEMO_PROMPTS:
        text, _ = first_reply(backend, tools, prompt, max_tokens=160)
        calls = [(c.name, c.arguments) for c in parse_reply(text, tools).calls]
        if not demo_reply_is_right(name, args, calls):
            wrong.append((prompt, calls))
    assert not wrong


#: What each prompt the terminal assistant suggests must do: the tool, arguments the call must
#: have (a unit said in words counts as its abbreviation), and a value the answer must state.
SUGGESTED = {
    "Start a 12 minute timer for the pasta": ("set_timer", {"minutes": 12}, "12"),
    "What is 18% of 240?": ("calculate", {}, "43.2"),
    "Convert 5 miles to km": ("convert_units", {"value": 5, "from_unit": "mi", "to_unit": "km"},
                              "8.0"),
}  # fmt: skip


@pytest.mark.model
@pytest.mark.parametrize("prompt", list(SUGGESTED))
def test_every_prompt_the_chat_suggests_works_end_to_end(prompt):
    """`edgeagent run` as the chat runs a turn (the shipped adapters, every demo tool): the right
    call, run, and an answer in prose that states the result."""
    from edgeagent.demo_tools import SUGGESTED_PROMPTS, demo_reply_is_right

    assert set(SUGGESTED) == set(SUGGESTED_PROMPTS)  # a new suggestion is checked here too
    tool, args, value = SUGGESTED[prompt]
    out = json.loads(cli("run", prompt, "--yes", "--json").stdout)
    calls = [(c["name"], c["arguments"]) for c in out["tool_calls"]]
    assert demo_reply_is_right(tool, args, calls), calls
    assert all(c["ok"] for c in out["tool_calls"]), out["tool_calls"]
    assert value in out["answer"] and "<tool_call>" not in out["answer"], out["answer"]
    assert "```" not in out["answer"] and len(out["answer"]) < 300, out["answer"]


def test_the_default_adapter_applies_to_the_embedded_model_only(tmp_path):
    from edgeagent import Agent
    from edgeagent.models import DEFAULT_ADAPTER

    assert Agent(DEMO_TOOLS).adapter == DEFAULT_ADAPTER
    assert Agent(DEMO_TOOLS, adapter=None).adapter is None
    assert Agent(DEMO_TOOLS, model=tmp_path / "other.gguf").adapter is None
    assert Agent(DEMO_TOOLS, adapter=tmp_path / "mine.gguf").adapter == tmp_path / "mine.gguf"


@pytest.mark.model
def test_with_the_shipped_adapters_the_answer_after_a_result_states_it(monkeypatch):
    """The call adapter decides the call; the answer after the result is the answer adapter's,
    and it uses the result (the call adapter alone answered "OK, done."). The clock is fixed:
    the result is part of the prompt, and the base model's answer changed with it (at 19:13 one
    run said "a custom-built time-based system" and no number)."""
    import re

    monkeypatch.setenv("EDGEAGENT_NOW", "2026-11-30T19:24:00+00:00")

    out = json.loads(cli("run", "What time is it?", "--json").stdout)
    assert out["tool_calls"][0]["name"] == "current_time"
    result = out["tool_calls"][0]["result"]
    numbers = set(re.findall(r"\d{2,}", result))
    assert numbers & set(re.findall(r"\d{2,}", out["answer"])), (result, out["answer"])
