"""Signed bundles and safe updates: keys, signatures, compatibility, install / switch / health
check / roll back, SIGKILL at every step, canary trials. The real embedded model runs the
health checks (one grammar-constrained call each)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edgeagent import deploy as ops
from edgeagent.agent import Agent
from edgeagent.bundle.build import build_bundle
from edgeagent.bundle.verify import verify_bundle
from edgeagent.errors import EdgeAgentError
from edgeagent.manifest import (
    MANIFEST,
    SIGNATURE,
    hash_files,
    read_manifest,
    write_manifest,
)
from edgeagent.memory import MemoryIndex
from edgeagent.signing import key_id, new_keys, sign
from edgeagent.slots import DeployError, read_state, running_slot, slot_dir
from tests.test_cli import cli

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    base = tmp_path_factory.mktemp("keys")
    return new_keys(base / "ours"), new_keys(base / "theirs")


@pytest.fixture(scope="module")
def signed(tmp_path_factory, keys):
    """A bundle of the embedded model for rpi5, signed with our key."""
    out = tmp_path_factory.mktemp("dist") / "rpi5"
    build_bundle("rpi5", out, sign=keys[0].private)
    return out


@pytest.fixture(scope="module")
def deployed_once(tmp_path_factory, signed):
    root = tmp_path_factory.mktemp("deployed") / "root"
    assert ops.deploy(signed, root).ok
    return root


@pytest.fixture
def deployed(deployed_once, tmp_path):
    """A device root on which `signed` is deployed and confirmed in slot a: a copy of one made
    once for the module (each first deployment runs a health check on the model)."""
    return copy(deployed_once, tmp_path / "root")


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)  # a device root's `current` stays a link
    return dst


def resign(bundle: Path, key: Path, **fields) -> Path:
    """Change manifest fields (or, with none, only the hashes) and sign it again: what a
    careless build pipeline holding the key could produce."""
    m = read_manifest(bundle)
    for name, value in fields.items():
        setattr(m, name, value)
    m.files = hash_files(bundle)
    write_manifest(bundle, m)
    (bundle / SIGNATURE).write_text(json.dumps(sign(key, (bundle / MANIFEST).read_bytes())))
    return bundle


# ---------------------------------------------------------------------------- keys, signatures


def test_new_keys_are_private_and_never_overwritten(tmp_path):
    pair = new_keys(tmp_path / "k")
    assert stat.S_IMODE(pair.private.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in pair.private.read_bytes() and len(pair.key_id) == 16
    with pytest.raises(EdgeAgentError, match="never overwritten"):
        new_keys(tmp_path / "k")
    proc = cli("keys", "new", "--out", str(tmp_path / "cli"), "--json")
    assert json.loads(proc.stdout)["key_id"] == key_id(tmp_path / "cli" / "signing.pub")


def test_a_signed_bundle_verifies_with_its_public_key(signed, keys):
    report = verify_bundle(signed, run=False, trust=[keys[0].public])
    assert report.ok, report.to_dict()
    assert f"signed by trusted key {keys[0].key_id}" in report.checks[0].detail
    proc = cli("verify", str(signed), "--no-run", "--trust", str(keys[0].public))
    assert "signed by trusted key" in proc.stdout


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        ("unsigned", "not signed"),
        ("other key", "not among the trusted keys"),
        ("changed file", "does not match its SHA-256"),
        ("changed manifest", "does not match the manifest"),
    ],
)
def test_a_bundle_that_cannot_be_trusted_is_refused_saying_why(signed, keys, tmp_path, damage,
                                                                says):  # fmt: skip
    bundle = copy(signed, tmp_path / "b")
    if damage == "unsigned":
        (bundle / SIGNATURE).unlink()
    elif damage == "other key":
        resign(bundle, keys[1].private)
    elif damage == "changed file":
        readme = bundle / "README.md"
        readme.write_bytes(readme.read_bytes().replace(b"edgeagent", b"edgeAgent", 1))
    else:
        text = (bundle / MANIFEST).read_text().replace("threads = 4", "threads = 3")
        assert text != (bundle / MANIFEST).read_text()
        (bundle / MANIFEST).write_text(text)
    report = verify_bundle(bundle, run=False, trust=[keys[0].public])
    assert not report.ok
    assert says in json.dumps(report.to_dict())
    proc = cli("verify", str(bundle), "--no-run", "--trust", str(keys[0].public), check=False)
    assert proc.returncode == 1 and says in proc.stdout
    with pytest.raises(DeployError, match="refused") as caught:
        ops.deploy(bundle, tmp_path / "root", trust=[keys[0].public])
    assert says in str(caught.value)
    assert read_state(tmp_path / "root").active is None  # nothing was switched


# ---------------------------------------------------------------------------- compatibility


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"requires_edgeagent": ">=99"}, "needs edgeagent >=99"),
        ({"adapter_base_sha256": "0" * 64}, "adapter was made for base model 000000000000"),
    ],
)
def test_an_incompatible_bundle_is_refused_before_anything_switches(
    signed, deployed, keys, tmp_path, fields, says
):
    root = deployed
    bundle = resign(copy(signed, tmp_path / "b"), keys[0].private, **fields)
    with pytest.raises(DeployError, match=says):
        ops.deploy(bundle, root, trust=[keys[0].public])
    assert read_state(root).active == "a" and not (slot_dir(root, "b")).exists()
    assert ops.read_log(root)[-1]["ok"] is False and says in ops.read_log(root)[-1]["detail"]


def test_the_manifest_records_base_version_range_and_grammar(signed):
    from edgeagent.grammarset import fingerprint
    from edgeagent.models import default_model_path, file_fingerprint

    m = read_manifest(signed)
    assert m.base_sha256 == file_fingerprint(default_model_path())
    assert m.adapter_base_sha256 == m.base_sha256  # the shipped adapter, for the embedded model
    assert m.requires_edgeagent.startswith(">=0.") and m.grammar_digest == fingerprint()


# ---------------------------------------------------------------------------- deploy, roll back


def test_deploy_switches_and_the_run_uses_the_current_slot(signed, keys, tmp_path):
    root = tmp_path / "root"
    out = cli("deploy", str(signed), "--root", str(root), "--trust", str(keys[0].public),
              "--json")  # fmt: skip
    outcome = json.loads(out.stdout)
    assert outcome["ok"] and outcome["slot"] == "a" and outcome["signer"] == keys[0].key_id
    assert os.readlink(root / "current") == "slots/a"
    status = json.loads(cli("deploy", "--status", "--root", str(root), "--json").stdout)
    assert status["active"] == "a" and status["history"][-1]["action"] == "deploy"
    run = cli("run", "--deployment", str(root), "Set a timer for 12 minutes", "--yes", "--json")
    result = json.loads(run.stdout)
    assert [c["name"] for c in result["tool_calls"]] == ["set_timer"]
    assert (root / "data" / "memory.db").exists()  # the memory file lives outside the slots


def broken_model(signed: Path, key: Path, dst: Path) -> Path:
    """A signed bundle whose files match its manifest but whose model does not load."""
    bundle = copy(signed, dst)
    model = bundle / read_manifest(bundle).model
    data = bytearray(model.read_bytes())
    model.write_bytes(bytes(data[: len(data) // 2]))  # truncated after the build
    return resign(bundle, key)


def test_a_bundle_whose_model_does_not_load_rolls_back_by_itself(signed, deployed, keys, tmp_path):
    root = deployed
    bad = broken_model(signed, keys[0].private, tmp_path / "bad")
    proc = cli("deploy", str(bad), "--root", str(root), "--trust", str(keys[0].public),
               check=False)  # fmt: skip
    assert proc.returncode == 1 and "rolled back to slot a" in proc.stdout
    state = read_state(root)
    assert state.active == "a" and state.pending is None
    assert os.readlink(root / "current") == "slots/a"
    status = cli("deploy", "--status", "--root", str(root)).stdout
    assert "rolled back to slot a" in status and "truncated" in status
    assert Agent.from_deployment(root).backend.n_ctx > 0  # and slot a still loads


def test_rollback_goes_back_to_the_previous_bundle(signed, deployed, keys, tmp_path):
    root = deployed
    second = resign(copy(signed, tmp_path / "two"), keys[0].private, created="second")
    assert ops.deploy(second, root).slot == "b"
    out = json.loads(cli("rollback", "--root", str(root), "--json").stdout)
    assert out["ok"] and out["slot"] == "a" and read_state(root).active == "a"
    assert read_manifest(running_slot(root)).created != "second"


# ---------------------------------------------------------------------------- crash safety

KILL_AT = textwrap.dedent(
    """
    import os, signal, sys, threading
    from edgeagent import deploy as ops
    step = sys.argv[3]

    def die(name):
        if name == step == "health":  # during the check: while the child process runs
            threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGKILL)).start()
        elif name == step:
            os.kill(os.getpid(), signal.SIGKILL)

    ops._step = die
    ops.deploy(sys.argv[1], sys.argv[2])
    """
)


def health_checks(root: Path) -> list[int]:
    """Processes running a health check on `root` (from /proc: Linux, where CI runs)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        pid = int(cmdline.parent.name)
        if b"edgeagent.deploy" in args and str(root).encode() in args and running(pid):
            found.append(pid)
    return found


ORPHAN = textwrap.dedent(
    """
    import os, subprocess, sys
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; from edgeagent.deploy "
                              "import _exit_with; _exit_with(int(sys.argv[1])); time.sleep(600)",
                              str(os.getpid())])  # as the deployer passes it
    print(child.pid, flush=True)
    child.wait()
    """
)


def test_a_health_check_ends_when_its_deployer_dies():
    parent = subprocess.Popen([sys.executable, "-c", ORPHAN], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 60  # a hang guard: it ends within a fraction of a second
    while running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(child)


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's exit is reaped by whoever adopted it, maybe late)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@pytest.mark.parametrize("step", ["copy", "verify", "switch", "health", "confirm"])
def test_a_deployer_killed_at_any_step_leaves_a_slot_that_verifies_and_loads(
    signed, deployed, keys, tmp_path, step
):
    root = deployed
    with MemoryIndex(root / "data" / "memory.db") as memory:
        memory.add("the wifi password is on the fridge", kind="note")
    second = resign(copy(signed, tmp_path / "two"), keys[0].private, created="second")
    proc = subprocess.run([sys.executable, "-c", KILL_AT, str(second), str(root), step],
                          cwd=ROOT, timeout=600)  # fmt: skip
    assert proc.returncode == -signal.SIGKILL
    # a check cut off with its deployer stops too, leaving the cores to what runs next
    deadline = time.monotonic() + 30  # a hang guard: it normally ends within a second
    while health_checks(root) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not health_checks(root)
    # the device starts again: whatever runs now verifies and loads
    running = running_slot(root)
    assert verify_bundle(running, run=False).ok
    agent = Agent.from_deployment(root)
    assert agent.backend.n_ctx > 0
    assert agent.memory.search("wifi password")[0].text.startswith("the wifi password")
    ops.recover(root)
    state = read_state(root)
    assert (
        state.pending is None
        and (root / "current").resolve() == slot_dir(root, state.active).resolve()
    )
    assert not list((root / "slots").glob(".*"))  # no half copy left behind
    assert ops.deploy(second, root).ok  # and the next deployment goes through


# ---------------------------------------------------------------------------- canary


def test_a_canary_runs_beside_the_current_bundle_until_promoted(signed, deployed, keys, tmp_path):
    root = deployed
    second = resign(copy(signed, tmp_path / "two"), keys[0].private, created="second")
    out = json.loads(cli("deploy", str(second), "--root", str(root), "--canary", "0.5",
                         "--json").stdout)  # fmt: skip
    assert out["action"] == "canary" and out["ok"] and read_state(root).active == "a"
    slots = {running_slot(root, f"session-{i}").name for i in range(200)}
    assert slots == {"a", "b"}  # some sessions on each
    assert running_slot(root, "session-7") == running_slot(root, "session-7")
    with pytest.raises(DeployError, match="canary trial runs"):
        ops.deploy(second, root)
    # traced, the two sides of the trial compare in edgeagent stats
    trace = tmp_path / "trace.db"
    keys = {running_slot(root, f"session-{i}").name: f"session-{i}" for i in range(50)}
    for key in keys.values():
        Agent.from_deployment(root, session_key=key, trace=trace).run("What time is it?")
    stats = json.loads(cli("stats", str(trace), "--json").stdout)
    assert set(stats["per_source"]) == {"slot a", "slot b"}
    assert json.loads(cli("deploy", "--promote", "--root", str(root), "--json").stdout)["ok"]
    state = read_state(root)
    assert state.active == "b" and state.canary is None and state.previous == "a"
    assert {running_slot(root, f"session-{i}").name for i in range(50)} == {"b"}
