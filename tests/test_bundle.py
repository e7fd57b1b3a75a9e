"""Bundles: build, verify (hashes, paths, fit, one constrained call), run, and their faults."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from edgeagent.agent import Agent
from edgeagent.bundle.build import build_bundle
from edgeagent.bundle.verify import verify_bundle
from edgeagent.manifest import MANIFEST, BundleError, file_sha256, read_manifest
from edgeagent.models import ANSWER_ADAPTER, DEFAULT_ADAPTER, RECOVERY_ADAPTER, default_model_path
from tests.test_cli import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rpi5(tmp_path_factory):
    """`edgeagent build --target rpi5` on the embedded model, once for the module."""
    out = tmp_path_factory.mktemp("dist") / "rpi5"
    proc = cli("build", "--target", "rpi5", "--out", str(out), "--json")
    return out, json.loads(proc.stdout)


def copy_bundle(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_build_writes_the_model_adapter_tools_and_a_manifest_of_hashes(rpi5):
    out, result = rpi5
    assert result["target"] == "rpi5:4gb" and result["format"] == "gguf"
    assert result["quantization"] == "q4_1" and result["n_ctx"] == 4096
    manifest = read_manifest(out)
    assert manifest.model == f"model/{default_model_path().name}"
    assert manifest.adapter == f"adapters/{DEFAULT_ADAPTER.name}"
    assert manifest.adapter_kind == "general"
    assert manifest.answer_adapter == f"adapters/{ANSWER_ADAPTER.name}"  # goes with it
    assert manifest.recovery_adapter == f"adapters/{RECOVERY_ADAPTER.name}"  # and this one
    assert manifest.tools == "edgeagent.demo_tools"
    assert manifest.threads == 4 and manifest.estimate_bytes <= manifest.budget_bytes
    listed = {f.path: f for f in manifest.files}
    assert set(listed) == {
        manifest.model, manifest.adapter, manifest.answer_adapter, manifest.recovery_adapter,
        "tools.json", "grammars.json", "run.sh", "README.md",
    }  # fmt: skip
    assert listed[manifest.answer_adapter].sha256 == file_sha256(ANSWER_ADAPTER)
    assert listed[manifest.recovery_adapter].sha256 == file_sha256(RECOVERY_ADAPTER)
    agent = Agent.from_bundle(out)
    assert agent.answer_adapter == out / manifest.answer_adapter  # the bundle's own copy
    assert agent.recovery_adapter == out / manifest.recovery_adapter
    model = listed[manifest.model]
    assert model.sha256 == file_sha256(default_model_path())
    assert model.bytes == default_model_path().stat().st_size
    raw = tomllib.loads((out / MANIFEST).read_text())
    assert raw["bundle"]["edgeagent_version"] and raw["format_version"] == 1
    tools = json.loads((out / "tools.json").read_text())
    assert {"set_timer", "convert_units"} <= {t["name"] for t in tools}
    readme = (out / "README.md").read_text()
    assert "-DGGML_CPU_ARM_ARCH=armv8.2-a+dotprod" in readme and "edgeagent verify" in readme
    assert os.access(out / "run.sh", os.X_OK)
    assert not list(out.parent.glob(".rpi5*"))  # no work folder left beside it


@pytest.mark.model
def test_verify_checks_hashes_fit_and_one_constrained_call(rpi5):
    out, _ = rpi5
    report = json.loads(cli("verify", str(out), "--json").stdout)
    assert report["ok"], report
    names = [c["name"] for c in report["checks"]]
    assert names == ["manifest", "files", "compatible", "fits", "tool call"]
    assert "valid against its schema" in report["checks"][-1]["detail"]


@pytest.mark.model
def test_the_bundle_runs_from_the_cli_and_the_api(rpi5):
    out, _ = rpi5
    proc = cli("run", "--bundle", str(out), "Set a timer for 12 minutes", "--json")
    calls = json.loads(proc.stdout)["tool_calls"]
    assert calls and calls[0]["name"] == "set_timer" and calls[0]["arguments"]["minutes"] == 12
    agent = Agent.from_bundle(out)
    assert agent.n_ctx == 4096 and agent.adapter == out / read_manifest(out).adapter
    assert agent._base_answers  # the shipped adapter's behaviour comes with it
    assert Agent.from_bundle(out, n_ctx=1024).n_ctx == 1024


@pytest.mark.model
def test_the_planned_memory_is_within_5_percent_of_the_running_bundle(rpi5):
    """The bundle's agent in a fresh process, its 4,096-token context filled: peak resident
    memory against the estimate in bundle.toml (benchmarks/bench_plan.py --bundle). In-sample:
    the planner's constants were fitted on this model and machine (1-2 % off there); 5 % leaves
    room for the allocator's variation between runs, not for another model or device."""
    spec = importlib.util.spec_from_file_location("bench_plan", ROOT / "benchmarks/bench_plan.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out, _ = rpi5
    manifest = read_manifest(out)
    peak = bench.measure(str(out), manifest.n_ctx)["peak"]
    assert abs(manifest.estimate_bytes / peak - 1) < 0.05, (manifest.estimate_bytes, peak)


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda b: (b / "README.md").write_text("changed\n"), "README.md has"),
        (lambda b: (b / "tools.json").write_text((b / "tools.json").read_text().replace("timer", "tiMer")),
         "tools.json does not match its SHA-256"),
        (lambda b: os.truncate(next((b / "model").iterdir()), 1000), "(truncated or replaced)"),
        (lambda b: (b / "run.sh").unlink(), "run.sh is missing"),
        (lambda b: (b / "extra.py").write_text("import os\n"), "extra.py is not in the manifest"),
    ],
)  # fmt: skip
def test_verify_names_a_tampered_truncated_missing_or_added_file(rpi5, tmp_path, damage, named):
    bundle = copy_bundle(rpi5[0], tmp_path / "b")
    damage(bundle)
    report = verify_bundle(bundle, run=False)
    assert not report.ok
    assert named in report.checks[-1].detail
    proc = cli("verify", str(bundle), "--no-run", check=False)
    assert proc.returncode == 1 and named in proc.stdout


@pytest.mark.parametrize("path", ["../outside.gguf", "/etc/passwd", "model/../../x", "C:/x"])
def test_a_manifest_that_points_outside_the_bundle_is_refused(rpi5, tmp_path, path):
    bundle = copy_bundle(rpi5[0], tmp_path / "b")
    text = (bundle / MANIFEST).read_text()
    model = read_manifest(bundle).model
    (bundle / MANIFEST).write_text(text.replace(f'model = "{model}"', f'model = "{path}"'))
    with pytest.raises(BundleError, match="outside the bundle"):
        read_manifest(bundle)
    with pytest.raises(BundleError, match="outside the bundle"):
        Agent.from_bundle(bundle)
    assert not verify_bundle(bundle, run=False).ok


def test_a_symlink_out_of_the_bundle_is_refused(rpi5, tmp_path):
    bundle = copy_bundle(rpi5[0], tmp_path / "b")
    model = bundle / read_manifest(bundle).model
    model.unlink()
    model.symlink_to(default_model_path())
    with pytest.raises(BundleError, match="leads outside the bundle"):
        read_manifest(bundle)


def test_an_existing_bundle_needs_force(rpi5, tmp_path):
    out = copy_bundle(rpi5[0], tmp_path / "b")
    proc = cli("build", "--target", "rpi5", "--out", str(out), check=False)
    assert proc.returncode == 2 and "--force" in proc.stderr
    (out / "mine.txt").write_text("old\n")
    build_bundle("rpi5:8gb", out, force=True)
    assert not (out / "mine.txt").exists() and read_manifest(out).target == "rpi5:8gb"


def test_an_unknown_target_lists_the_known_ones(tmp_path):
    proc = cli("build", "--target", "rpi9", "--out", str(tmp_path / "x"), check=False)
    assert proc.returncode == 2 and "rpi5" in proc.stderr and "android-arm64" in proc.stderr
    assert not (tmp_path / "x").exists()


def test_a_failed_build_leaves_nothing(tmp_path, monkeypatch):
    import edgeagent.bundle.build as bundle

    def fail(*_):
        raise OSError("disk full")

    monkeypatch.setattr(bundle, "_write_readme", fail)
    (tmp_path / "dist").mkdir()
    with pytest.raises(OSError, match="disk full"):
        build_bundle("rpi5", tmp_path / "dist" / "out")
    assert list((tmp_path / "dist").iterdir()) == []


def test_a_killed_build_leaves_no_bundle_that_looks_whole(tmp_path):
    """SIGKILL in the middle of a build (after the model is copied): no `out`, and a second
    build over the same name works."""
    script = textwrap.dedent(
        """
        import os, signal, sys
        import edgeagent.bundle.build as bundle
        bundle._write_readme = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
        bundle.build_bundle("rpi5", sys.argv[1])
        """
    )
    out = tmp_path / "rpi5"
    proc = subprocess.run([sys.executable, "-c", script, str(out)], cwd=ROOT)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    build_bundle("rpi5", out)
    assert verify_bundle(out, run=False).ok


def test_a_users_tools_file_travels_in_the_bundle(tmp_path):
    tools = tmp_path / "mytools.py"
    tools.write_text(
        textwrap.dedent(
            '''
            from edgeagent import tool

            @tool
            def water_plants(zone: str, litres: float) -> str:
                """Water one garden zone.

                Args:
                    zone: Which zone, e.g. "front" or "back".
                    litres: How much water.
                """
                return f"watered {zone} with {litres} l"
            '''
        )
    )
    out = tmp_path / "garden"
    build_bundle("x86-64-laptop", out, tools=str(tools), adapter=None)
    tools.unlink()  # the bundle holds its own copy
    manifest = read_manifest(out)
    assert manifest.tools == "tools/mytools.py" and manifest.adapter is None
    agent = Agent.from_bundle(out)
    assert [t.name for t in agent.tools] == ["water_plants"]
    dry = Agent.from_bundle(out, dry_run=True)
    assert "not executed" in dry.tools[0].invoke({"zone": "front", "litres": 2}).content


def test_a_bundle_brings_its_grammars_for_a_device_without_llama_cpp(rpi5, monkeypatch):
    """An ONNX-only device has no llama-cpp-python, whose JSON-Schema converter builds the
    tool-call grammars: the bundle carries them, the same text the converter writes."""
    import edgeagent.grammar as grammar
    from edgeagent.demo_tools import DEMO_TOOLS
    from edgeagent.errors import GrammarError

    out, _ = rpi5
    built = Agent(list(DEMO_TOOLS), adapter=None)
    expected = {k: built.grammar(*k[:2], [built._tool_map[n] for n in k[2]]) for k in (
        (True, True, tuple(t.name for t in DEMO_TOOLS)), (True, True, ("set_timer",)))}  # fmt: skip

    def missing():
        raise GrammarError("no converter here")

    monkeypatch.setattr(grammar, "_converter_module", missing)
    agent = Agent.from_bundle(out)  # checks every tool's grammar at start: all precompiled
    for key, text in expected.items():
        assert agent.grammar(*key[:2], [agent._tool_map[n] for n in key[2]]) == text
    with pytest.raises(GrammarError, match="no converter"):
        Agent(list(DEMO_TOOLS))


def test_grammars_from_other_grammar_code_are_rebuilt_where_possible(rpi5, tmp_path):
    """grammars.json records a digest of the code that wrote it: grammars from another
    edgeagent's wire format are rebuilt here, not trusted."""
    from edgeagent.grammarset import fingerprint as grammar_fingerprint
    from edgeagent.manifest import GRAMMARS

    bundle = copy_bundle(rpi5[0], tmp_path / "b")
    data = json.loads((bundle / GRAMMARS).read_text())
    assert data["fingerprint"] == grammar_fingerprint()
    everything = next(
        g for g in data["grammars"] if g["answer"] and g["calls"] and len(g["tools"]) > 1
    )
    everything["gbnf"] = 'root ::= "sentinel"'
    (bundle / GRAMMARS).write_text(json.dumps(data))
    agent = Agent.from_bundle(bundle)
    assert agent.grammar(True, True) == 'root ::= "sentinel"'  # same code: the bundle's own
    data["fingerprint"] = "another-edgeagent"
    (bundle / GRAMMARS).write_text(json.dumps(data))
    rebuilt = Agent.from_bundle(bundle).grammar(True, True)
    assert rebuilt != 'root ::= "sentinel"' and "tool_call" in rebuilt


@pytest.mark.model
def test_an_onnx_bundle_for_a_phone_verifies_and_runs(onnx_backend, tmp_path):
    out = tmp_path / "phone"
    result = build_bundle("android-arm64", out, model=onnx_backend.model_path)
    assert (result.format, result.quantization) == ("onnx", "int4")
    manifest = read_manifest(out)
    assert manifest.model == "model" and manifest.adapter is None
    report = verify_bundle(out)
    assert report.ok, report.to_dict()
    assert Agent.from_bundle(out).backend.name == "onnxruntime"
