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
        [sys.executable, "-m", "edgeagent", *args], capture_output=True, text=True, timeout=300
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
    data = json.loads(cli("run", "Start a 12 minute timer for the pasta", "--json").stdout)
    assert set(data) >= {"answer", "tool_calls", "usage", "timings"}
    by_name = {t.name: t for t in DEMO_TOOLS}
    for call in data["tool_calls"]:
        assert set(call) >= {"name", "arguments", "result"}
        by_name[call["name"]].validate(call["arguments"])
    assert data["usage"]["completion_tokens"] > 0


@pytest.mark.model
def test_run_prints_answer_and_summary():
    proc = cli("run", "What is 12 times 7?")
    assert proc.stdout.strip()
    assert "step(s)" in proc.stderr and "tok/s" in proc.stderr
