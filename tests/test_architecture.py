"""The layers of docs/architecture.md hold: the import contracts pass, and running an agent
loads no training or conversion code."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("lint-imports") is None and not
                    (Path(sys.executable).parent / "lint-imports").exists(),
                    reason="import-linter is a dev dependency")  # fmt: skip
def test_the_import_contracts_hold():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    proc = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "0 broken" in proc.stdout


RUN_AN_AGENT = """
import json, sys
from edgeagent import Agent
from edgeagent.demo_tools import DEMO_TOOLS
result = Agent(list(DEMO_TOOLS), max_steps=2).run("Start a 12 minute timer for the pasta")
heavy = ("torch", "transformers", "peft", "bitsandbytes", "optimum", "onnxruntime")
build = ("edgeagent.train", "edgeagent.converters", "edgeagent.bundle", "edgeagent.targets",
         "edgeagent.evaluation", "edgeagent.basemodel", "edgeagent.cli", "edgeagent.apps")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy or m.startswith(build))
print(json.dumps({"calls": [c.name for c in result.tool_calls], "loaded": loaded}))
"""


@pytest.mark.model
def test_running_an_agent_loads_no_training_or_conversion_code(tmp_path):
    """The embedded model, the shipped adapter and the demo tools: the runtime path, in a
    fresh interpreter (this test process has torch loaded by other tests)."""
    proc = subprocess.run(
        [sys.executable, "-c", RUN_AN_AGENT], capture_output=True, text=True, timeout=600,
        env={**__import__("os").environ, "EDGEAGENT_HOME": str(tmp_path)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["calls"], "the agent ran no tool: the runtime path was not exercised"
    assert out["loaded"] == []
