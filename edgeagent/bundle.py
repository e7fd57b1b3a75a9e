"""Bundles: one directory that runs an agent on one target, with a manifest that proves it whole.

    dist/rpi5/
      bundle.toml      what, for which target, runtime settings, SHA-256 and size of every file
      model/           the GGUF file (or the ONNX folder's files)
      adapters/        GGUF LoRA adapters (a single one, or a decoupled selector + arguments set)
      tools/           the user's tools module, when it is a file of their own
      tools.json       the tools' names, descriptions, effects and JSON Schemas
      grammars.json    their tool-call grammars, precompiled (no JSON-Schema converter needed)
      run.sh           the launcher
      README.md        how to install the runtime on the device, run and verify

`build_bundle` writes into a hidden folder beside the output and renames it into place at the
end (edgeagent.paths.swap_in): a killed build leaves no directory that looks complete.
`verify_bundle` checks the manifest, every path (inside the bundle, no `..`, no absolute path, no
symlink out), every size and hash, that the model fits the target, and runs one constrained tool
call with the tools' side effects switched off.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import shutil
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeagent._version import __version__
from edgeagent.errors import EdgeAgentError
from edgeagent.paths import swap_in
from edgeagent.tools import Tool

MANIFEST = "bundle.toml"
GRAMMARS = "grammars.json"
FORMAT_VERSION = 1
DEMO_TOOLS = "edgeagent.demo_tools"
Progress = Callable[[str], None]


class BundleError(EdgeAgentError):
    """A bundle that cannot be built, read or trusted."""


@dataclass(frozen=True)
class BundleFile:
    path: str  # relative to the bundle, with forward slashes
    sha256: str
    bytes: int


@dataclass
class Manifest:
    target: str  # "rpi5:4gb"
    model: str  # a file (GGUF) or folder (ONNX), relative
    format: str
    quantization: str
    n_ctx: int
    threads: int
    tools: str  # a module name, or a relative .py path inside the bundle
    adapter: str | None = None
    adapter_kind: str = ""  # "general": the shipped adapter (answers are the base model's)
    decoupled: str | None = None
    source: str = ""
    estimate_bytes: int = 0
    budget_bytes: int = 0
    edgeagent_version: str = __version__
    created: str = ""
    files: list[BundleFile] = field(default_factory=list)

    def paths(self) -> list[str]:
        named = [self.model, self.tools, self.adapter, self.decoupled]
        return [p for p in named if p and not _is_module(p)]


def _is_module(ref: str) -> bool:
    return not ref.endswith(".py") and "/" not in ref


# ---------------------------------------------------------------------------- manifest I/O


def write_manifest(root: Path, manifest: Manifest) -> None:
    """bundle.toml, written by hand (the stdlib reads TOML but does not write it)."""
    m = dataclasses.asdict(manifest)
    files = m.pop("files")
    lines = ["# edgeagent bundle: `edgeagent verify .` checks it, `./run.sh PROMPT` runs it"]
    lines.append(f"format_version = {FORMAT_VERSION}")
    lines.append("")
    lines.append("[bundle]")
    for key, value in m.items():
        if value is None:
            continue
        lines.append(f"{key} = {_toml(value)}")
    for f in files:
        lines += ["", "[[files]]"] + [f"{k} = {_toml(v)}" for k, v in f.items()]
    _write_synced(root / MANIFEST, "\n".join(lines) + "\n")


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    # a JSON string is a TOML basic string for every character but the non-BMP escapes,
    # which ensure_ascii=False does not produce
    return json.dumps(str(value), ensure_ascii=False)


def read_manifest(root: str | Path) -> Manifest:
    """The manifest, with every path checked to stay inside the bundle."""
    root = Path(root)
    path = root / MANIFEST
    if not root.is_dir():
        raise BundleError(f"no bundle at {root}", hint="edgeagent build --target NAME --out DIR")
    if not path.is_file():
        raise BundleError(
            f"{root} has no {MANIFEST}: not a bundle, or its build did not finish",
            hint="build it again with edgeagent build",
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BundleError(f"{path}: unreadable manifest: {exc}") from None
    if data.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{path}: bundle format {data.get('format_version')!r}; this edgeagent reads "
            f"{FORMAT_VERSION}",
            hint="rebuild the bundle with this edgeagent",
        )
    try:
        fields = dict(data["bundle"])
        files = [
            BundleFile(str(f["path"]), str(f["sha256"]), int(f["bytes"])) for f in data["files"]
        ]
        manifest = Manifest(**fields, files=files)
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{path}: malformed manifest ({type(exc).__name__}: {exc})") from None
    for rel in [*manifest.paths(), *(f.path for f in manifest.files)]:
        inside(root, rel)
    return manifest


def inside(root: Path, rel: str) -> Path:
    """`root / rel`, refused when rel is absolute, climbs with `..`, or resolves (through a
    symlink) outside the bundle."""
    if not rel or rel.startswith(("/", "\\")) or Path(rel).is_absolute() or ":" in rel:
        raise BundleError(f"the manifest names a path outside the bundle: {rel!r}")
    if ".." in Path(rel).parts:
        raise BundleError(f"the manifest names a path outside the bundle: {rel!r}")
    path = root / rel
    if not path.resolve().is_relative_to(root.resolve()):
        raise BundleError(f"{rel} leads outside the bundle (a symlink?)")
    return path


# ---------------------------------------------------------------------------- building


@dataclass
class BuildResult:
    out: str
    target: str
    format: str
    quantization: str
    n_ctx: int
    estimate_bytes: int
    budget_bytes: int
    bytes: int
    files: int
    seconds: float
    plan_table: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def build_bundle(
    target_spec: str,
    out: str | Path,
    *,
    model: str | Path | None = None,
    adapter: str | Path | None = "default",
    decoupled: str | Path | None = None,
    tools: str | None = None,
    fmt: str | None = None,
    quant: str | None = None,
    n_ctx: int | None = None,
    force: bool = False,
    progress: Progress = lambda _: None,
) -> BuildResult:
    """Plan, convert as needed, and write a verified-by-construction bundle at `out`."""
    from edgeagent.models import DEFAULT_MODEL_PIN, default_adapter_path, default_model_path
    from edgeagent.targets import load_target
    from edgeagent.targets.planner import model_shape, plan
    from edgeagent.toolsource import load_tools

    start = time.perf_counter()
    out = Path(out)
    target = load_target(target_spec)
    if out.exists() and not force:
        raise BundleError(f"{out} exists", hint="pass --force to replace it, or another --out")
    source = Path(model) if model else default_model_path()
    fmt = (fmt or target.format).lower()
    if adapter == "default":  # the shipped general adapter fits the embedded model only
        adapter = default_adapter_path(model) if fmt == "gguf" and not decoupled else None
    shape = model_shape(source)
    loaded = load_tools(tools)  # refuses a source that defines no tools before anything is written
    chosen = plan(shape, target, fmt=fmt, quant=quant, n_ctx=n_ctx,
                  adapters=bool(adapter or decoupled))  # fmt: skip
    assert chosen.choice is not None
    choice = chosen.choice
    budget_mib = target.budget_bytes / 2**20
    progress(f"plan: {fmt} {choice.quantization}, n_ctx {choice.n_ctx}, "
             f"~{choice.total / 2**20:.0f} MiB of {budget_mib:.0f} MiB")  # fmt: skip

    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        manifest = Manifest(
            target=target.full_name, model="", format=fmt, quantization=choice.quantization,
            n_ctx=choice.n_ctx, threads=target.threads, tools="",
            source="embedded default model (" + DEFAULT_MODEL_PIN + ")" if not model
            else source.name,
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )  # fmt: skip
        manifest.model = _place_model(
            source, shape, work, fmt, choice.quantization, adapter, progress
        )
        if fmt == "gguf":
            _place_adapters(manifest, work, adapter, decoupled, source, progress)
        manifest.tools = _place_tools(tools, loaded, work)
        _write_grammars(work, loaded)
        # the plan again, on the files actually written: refuse what does not fit after all
        manifest.estimate_bytes = planned_bytes(work, manifest)
        manifest.budget_bytes = target.budget_bytes
        if manifest.estimate_bytes > target.budget_bytes:
            raise BundleError(
                f"the built model needs {manifest.estimate_bytes / 2**20:.0f} MiB, over "
                f"{target.full_name}'s budget of {target.budget_bytes / 2**20:.0f} MiB",
                hint="pass a smaller --quant or --n-ctx",
            )
        _write_launcher(work)
        _write_readme(work, manifest, target)
        progress("hashing files")
        manifest.files = hash_files(work)
        write_manifest(work, manifest)
        swap_in(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return BuildResult(
        out=str(out), target=target.full_name, format=fmt, quantization=choice.quantization,
        n_ctx=choice.n_ctx, estimate_bytes=manifest.estimate_bytes,
        budget_bytes=target.budget_bytes, bytes=sum(f.bytes for f in manifest.files),
        files=len(manifest.files) + 1, seconds=round(time.perf_counter() - start, 1),
        plan_table=chosen.table(),
    )  # fmt: skip


def _place_model(
    source: Path, shape: Any, work: Path, fmt: str, quant: str,
    adapter: str | Path | None, progress: Progress,
) -> str:  # fmt: skip
    """The model in the bundle's format and quantization: copied when it is already so,
    converted (edgeagent export) otherwise. Returns its path relative to the bundle."""
    (work / "model").mkdir()
    if fmt == "onnx":
        peft = adapter if adapter and Path(adapter).is_dir() else None
        if shape.format == "onnx" and shape.quantization == quant and not peft:
            progress(f"copying {source.name}")
            shutil.copytree(source, work / "model", dirs_exist_ok=True)
        else:
            from edgeagent.converters.onnx_export import export_onnx

            progress(f"exporting ONNX {quant} (merge, optimum, quantize, self-check)")
            export_onnx(source, work / "model", adapter=peft, quant=quant)
        return "model"
    name = f"{source.stem}.gguf" if source.is_file() else f"{source.name}.{quant}.gguf"
    if shape.format == "gguf" and shape.quantization == quant:
        progress(f"copying {source.name}")
        shutil.copyfile(source, work / "model" / name)
    else:
        from edgeagent.converters.pipeline import export_gguf

        name = f"{source.stem}.{quant}.gguf"
        progress(f"exporting GGUF {quant} (merge, convert, quantize, self-check)")
        export_gguf(source, work / "model" / name, quant=quant)
    return f"model/{name}"


def _place_adapters(
    manifest: Manifest, work: Path, adapter: str | Path | None, decoupled: str | Path | None,
    source: Path, progress: Progress,
) -> None:  # fmt: skip
    from edgeagent.models import is_default_adapter

    if adapter:
        adapter = Path(adapter)
        (work / "adapters").mkdir()
        if adapter.is_dir():  # a PEFT adapter: to a GGUF LoRA file for this base
            from edgeagent.converters.lora_gguf import export_lora_gguf

            progress(f"exporting adapter {adapter.name} to GGUF")
            dest = work / "adapters" / f"{adapter.name}.gguf"
            export_lora_gguf(adapter, source, dest)
        else:
            dest = work / "adapters" / adapter.name
            shutil.copyfile(adapter, dest)
        manifest.adapter = f"adapters/{dest.name}"
        if is_default_adapter(adapter):
            manifest.adapter_kind = "general"
    if decoupled:
        from edgeagent.decoupled import DecoupledAdapters

        DecoupledAdapters.load(decoupled)  # refuses a folder that is not a decoupled set
        shutil.copytree(decoupled, work / "adapters" / "decoupled")
        manifest.decoupled = "adapters/decoupled"


def _place_tools(tools: str | None, loaded: list[Tool], work: Path) -> str:
    """The tools' manifest (tools.json) and a reference the device can load: a module that
    ships with edgeagent by name, a user's module as a file copied into the bundle."""
    specs = [{**t.spec(), "effects": t.effects} for t in loaded]
    _write_synced(work / "tools.json", json.dumps(specs, indent=2, ensure_ascii=False) + "\n")
    if tools is None:
        return DEMO_TOOLS
    if tools.endswith(".py") or Path(tools).is_file():
        origin = Path(tools)
    else:
        spec = importlib.util.find_spec(tools)
        if tools.startswith("edgeagent."):
            return tools
        if spec is None or not spec.origin or spec.submodule_search_locations:
            raise BundleError(
                f"cannot bundle the tools module {tools!r}: only a single .py file can be copied",
                hint="pass the path of a .py file that defines the tools",
            )
        origin = Path(spec.origin)
    (work / "tools").mkdir()
    shutil.copyfile(origin, work / "tools" / origin.name)
    return f"tools/{origin.name}"


def _write_grammars(work: Path, tools: list[Tool]) -> None:
    """grammars.json: the tool-call grammars the agent uses with all the bundle's tools offered
    (and each tool alone, which Agent checks at start), so a device without llama-cpp-python's
    JSON-Schema converter (an ONNX-only phone) runs the same constrained calls."""
    from edgeagent.agent import Agent

    agent = Agent(tools, adapter=None)
    combos = [
        (agent.tools, (True, True)),
        (agent.tools, (False, True)),
        (agent.tools, (True, False)),
    ]
    combos += [([t], (True, True)) for t in agent.tools]
    entries = []
    for offered, (answer, calls) in combos:
        gbnf = agent.grammar(answer, calls, offered)
        entries.append({"answer": answer, "calls": calls, "tools": [t.name for t in offered],
                        "gbnf": gbnf})  # fmt: skip
    data = {
        "max_calls": agent.max_calls,
        "max_string_chars": agent.max_string_chars,
        "fingerprint": grammar_fingerprint(),
    }
    _write_synced(work / GRAMMARS, json.dumps({**data, "grammars": entries}, indent=1) + "\n")


def grammar_fingerprint() -> str:
    """A digest of the code that writes grammars (the wire format and the schema converter's
    fixes): bundles record it, so grammars from other code are not taken for this code's."""
    digest = hashlib.sha256()
    for module in ("wireformat.py", "grammar.py"):
        digest.update((Path(__file__).parent / module).read_bytes())
    return digest.hexdigest()[:16]


def load_grammars(root: Path) -> dict[tuple[bool, bool, tuple[str, ...]], str]:
    """The precompiled grammars of a bundle. Empty for a bundle without them, and for one built
    by an edgeagent whose grammar code differs from this one's when this machine can build them
    itself (a device without llama-cpp-python uses what the bundle brings)."""
    from edgeagent.grammar import converter_available

    path = root / GRAMMARS
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("fingerprint") != grammar_fingerprint() and converter_available():
            return {}
        return {
            (bool(g["answer"]), bool(g["calls"]), tuple(g["tools"])): str(g["gbnf"])
            for g in data["grammars"]
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{path}: unreadable grammars ({type(exc).__name__}: {exc})") from None


_LAUNCHER = """#!/bin/sh
# Runs this bundle's agent: ./run.sh "Set a timer for 5 minutes"   (./run.sh --help for options)
here="$(cd "$(dirname "$0")" && pwd)"
exec "${PYTHON:-python3}" -m edgeagent run --bundle "$here" "$@"
"""


def _write_launcher(work: Path) -> None:
    _write_synced(work / "run.sh", _LAUNCHER)
    (work / "run.sh").chmod(0o755)


def _write_readme(work: Path, m: Manifest, target: Any) -> None:
    runtime = (
        f'CMAKE_ARGS="{target.llama_cpp_cmake_args}" pip install llama-cpp-python'
        if m.format == "gguf"
        else "pip install onnxruntime tokenizers llguidance"
    )
    text = f"""# edgeagent bundle for {target.full_name}

{target.description}. Built by edgeagent {m.edgeagent_version} on {m.created}.

- model: `{m.model}` ({m.format}, {m.quantization}), from {m.source}
- adapter: {_adapter_line(m)}
- tools: `{m.tools}` (schemas in `tools.json`)
- runtime: n_ctx {m.n_ctx}, {m.threads} threads; planned memory {m.estimate_bytes / 2**20:.0f} MiB
  of the {m.budget_bytes / 2**20:.0f} MiB this target leaves to apps

## Install on the device

```sh
python3 -m venv ~/edgeagent && . ~/edgeagent/bin/activate
# the runtime, built for this CPU ({target.cpu}, {target.arch}):
{runtime}
# edgeagent itself, without the training and export extras:
pip install edgeagent=={m.edgeagent_version}   # or the wheel / source tree it was built from
```

## Check and run

```sh
edgeagent verify .            # manifest, every SHA-256, fits {target.full_name}, one tool call
./run.sh "Set a timer for 5 minutes"
```

In Python: `Agent.from_bundle("path/to/this/folder").run("...")`.
"""
    _write_synced(work / "README.md", text)


def _adapter_line(m: Manifest) -> str:
    if m.adapter:
        return f"`{m.adapter}`" + (" (the shipped general adapter)" if m.adapter_kind else "")
    return f"`{m.decoupled}` (decoupled)" if m.decoupled else "none"


# ---------------------------------------------------------------------------- hashing


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def hash_files(root: Path) -> list[BundleFile]:
    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST):
        rel = path.relative_to(root).as_posix()
        files.append(BundleFile(rel, file_sha256(path), path.stat().st_size))
    return files


def planned_bytes(root: Path, manifest: Manifest) -> int:
    """The planner's memory for a bundle's model as written, with its contexts full (one per
    adapter setting), plus its adapters (what the build records and verify checks)."""
    from edgeagent.targets.planner import contexts_for, estimate, model_shape

    shape = model_shape(root / manifest.model)
    contexts = contexts_for(manifest.format, bool(manifest.adapter or manifest.decoupled))
    e = estimate(shape, manifest.format, manifest.quantization, manifest.n_ctx, contexts)
    return e.total + _tree_bytes(root / "adapters")


def _tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def _write_synced(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


# ---------------------------------------------------------------------------- verifying


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


def verify_bundle(root: str | Path, *, run: bool = True) -> VerifyReport:
    """Every check, each named with what it found; `run` adds one constrained tool call."""
    root = Path(root)
    checks: list[Check] = []
    try:
        manifest = read_manifest(root)
    except BundleError as exc:
        return VerifyReport(str(root), [Check("manifest", False, str(exc))])
    checks.append(Check("manifest", True, f"{len(manifest.files)} files, {manifest.target}"))
    problems = _file_problems(root, manifest)
    checks.append(Check("files", not problems, "; ".join(problems) or "sizes and SHA-256 match"))
    if problems:
        return VerifyReport(str(root), checks)
    checks.append(_fit_check(root, manifest))
    if run:
        checks.append(_call_check(root))
    return VerifyReport(str(root), checks)


def _file_problems(root: Path, manifest: Manifest) -> list[str]:
    problems = []
    listed = {f.path for f in manifest.files}
    for f in manifest.files:
        path = root / f.path
        if not path.is_file():
            problems.append(f"{f.path} is missing")
        elif path.stat().st_size != f.bytes:
            problems.append(f"{f.path} has {path.stat().st_size:,} bytes, the manifest {f.bytes:,}"
                            " (truncated or replaced)")  # fmt: skip
        elif file_sha256(path) != f.sha256:
            problems.append(f"{f.path} does not match its SHA-256 (modified)")
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST):
        rel = path.relative_to(root).as_posix()
        if rel not in listed:
            problems.append(f"{rel} is not in the manifest (added after the build)")
    for rel in manifest.paths():
        if not (root / rel).exists():
            problems.append(f"the manifest's {rel} does not exist")
    return problems


def _fit_check(root: Path, manifest: Manifest) -> Check:
    from edgeagent.targets import TargetError, load_target

    try:
        target = load_target(manifest.target)
    except TargetError as exc:
        return Check("fits", True, f"target not known here, not checked ({exc})")
    need, budget = planned_bytes(root, manifest), target.budget_bytes
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
