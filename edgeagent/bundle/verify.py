"""`edgeagent verify`: the manifest, every path (inside the bundle, no `..`, no absolute path, no
symlink out), every size and hash, that the model fits the target, and one constrained tool
call with the tools' side effects switched off."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeagent.errors import EdgeAgentError
from edgeagent.manifest import (
    MANIFEST,
    BundleError,
    Manifest,
    check_signature,
    compatibility_problems,
    file_problems,
    read_manifest,
    read_signature,
)
from edgeagent.signing import SignatureError


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class VerifyReport:
    bundle: str
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bundle": self.bundle,
            "ok": self.ok,
            "checks": [dataclasses.asdict(c) for c in self.checks],
        }


def verify_bundle(
    root: str | Path, *, run: bool = True, trust: Sequence[str | Path] = ()
) -> VerifyReport:
    """Every check, each named with what it found; `run` adds one constrained tool call.
    With `trust` (public keys), the manifest must be signed by one of them."""
    root = Path(root)
    checks: list[Check] = []
    if trust:
        checks.append(_signature_check(root, trust))
    try:
        manifest = read_manifest(root)
    except BundleError as exc:
        return VerifyReport(str(root), [*checks, Check("manifest", False, str(exc))])
    if not trust and read_signature(root) is not None:
        checks.append(Check("signature", True, "signed; not checked (no --trust key given)"))
    checks.append(Check("manifest", True, f"{len(manifest.files)} files, {manifest.target}"))
    problems = file_problems(root, manifest)
    checks.append(Check("files", not problems, "; ".join(problems) or "sizes and SHA-256 match"))
    if problems or not all(c.ok for c in checks):
        return VerifyReport(str(root), checks)
    incompatible = compatibility_problems(manifest)
    checks.append(Check("compatible", not incompatible, "; ".join(incompatible) or
                        f"edgeagent {manifest.requires_edgeagent or 'any'}; adapter and model "
                        "from the same base"))  # fmt: skip
    checks.append(_fit_check(root, manifest))
    if run:
        checks.append(_call_check(root))
    return VerifyReport(str(root), checks)


def _signature_check(root: Path, trust: Sequence[str | Path]) -> Check:
    if not (root / MANIFEST).is_file():
        return Check("signature", False, f"no {MANIFEST} to check")
    try:
        signer = check_signature(root, list(trust))
    except SignatureError as exc:
        return Check("signature", False, str(exc.args[0]))
    return Check("signature", True, f"signed by trusted key {signer}")


def planned_bytes(root: Path, manifest: Manifest) -> int:
    """The planner's memory for a bundle's model as written, with its contexts full (one per
    adapter setting), plus its adapters as loaded (what the build records and verify checks)."""
    from edgeagent.targets.planner import ADAPTER_RESIDENT, contexts_for, estimate, model_shape

    shape = model_shape(root / manifest.model)
    contexts = contexts_for(manifest.format, bool(manifest.adapter or manifest.decoupled))
    e = estimate(shape, manifest.format, manifest.quantization, manifest.n_ctx, contexts)
    return e.total + int(ADAPTER_RESIDENT * _tree_bytes(root / "adapters"))


def _tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def _fit_check(root: Path, manifest: Manifest) -> Check:
    from edgeagent.targets import TargetError, load_target

    try:
        target = load_target(manifest.target)
    except TargetError as exc:
        return Check("fits", True, f"target not known here, not checked ({exc})")
    try:
        need, budget = planned_bytes(root, manifest), target.budget_bytes
    except EdgeAgentError as exc:  # a model file the planner cannot read
        return Check("fits", False, str(exc))
    return Check(
        "fits",
        need <= budget,
        f"{need / 2**20:.0f} MiB planned of {budget / 2**20:.0f} MiB on {target.full_name}",
    )


def _call_check(root: Path) -> Check:
    """One tool call under the grammar, with every tool's function replaced by a stub (verify
    must not set timers or write files on the user's behalf)."""
    from edgeagent.agent import Agent

    try:
        agent = Agent.from_bundle(root, tool_choice="required", max_steps=1, dry_run=True)
        first = agent.tools[0]
        result = agent.run(f"Use the tool {first.name}: {first.description}")
    except EdgeAgentError as exc:
        return Check("tool call", False, str(exc))
    if not result.tool_calls:
        return Check("tool call", False, "the model made no tool call under tool_choice=required")
    call = result.tool_calls[0]
    args = json.dumps(call.arguments, ensure_ascii=False)
    if not call.ok:
        return Check("tool call", False, f"{call.name}({args}) was refused: {call.result}")
    return Check("tool call", True, f"{call.name}({args}) valid against its schema")
