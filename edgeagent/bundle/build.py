"""`edgeagent build`: plan, convert as needed, and write a bundle (edgeagent.bundle).

`build_bundle` writes into a hidden folder beside the output and renames it into place at the
end (edgeagent.paths.publishing): a killed build leaves no directory that looks complete.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeagent import signing
from edgeagent.bundle.verify import planned_bytes
from edgeagent.grammarset import GrammarSet, fingerprint
from edgeagent.manifest import (
    GRAMMARS,
    MANIFEST,
    SIGNATURE,
    BundleError,
    Manifest,
    compatibility_problems,
    edgeagent_range,
    hash_files,
    write_manifest,
    write_synced,
)
from edgeagent.paths import publishing
from edgeagent.signing import load_private
from edgeagent.tools import Tool

DEMO_TOOLS = "edgeagent.demo_tools"
Progress = Callable[[str], None]


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
    sign: str | Path | None = None,
    progress: Progress = lambda _: None,
) -> BuildResult:
    """Plan, convert as needed, and write a verified-by-construction bundle at `out`; `sign`
    (a private key from `edgeagent keys new`) signs its manifest."""
    from edgeagent.models import (
        DEFAULT,
        DEFAULT_MODEL_PIN,
        default_model_path,
        file_fingerprint,
        resolve_adapter,
    )
    from edgeagent.targets import load_target
    from edgeagent.targets.planner import model_shape, plan
    from edgeagent.toolsource import load_tools

    start = time.perf_counter()
    out = Path(out)
    target = load_target(target_spec)
    if out.exists() and not force:
        raise BundleError(f"{out} exists", hint="pass --force to replace it, or another --out")
    source = Path(model) if model else default_model_path()
    if sign is not None:
        load_private(sign)  # a key that cannot sign is refused before anything is built
    fmt = (fmt or target.format).lower()
    if adapter == DEFAULT:  # the shipped general adapter fits the embedded model's GGUF only
        adapter = resolve_adapter(adapter, model) if fmt == "gguf" and not decoupled else None
    shape = model_shape(source)
    loaded = load_tools(tools)  # refuses a source that defines no tools before anything is written
    chosen = plan(shape, target, fmt=fmt, quant=quant, n_ctx=n_ctx,
                  adapters=bool(adapter or decoupled))  # fmt: skip
    assert chosen.choice is not None
    choice = chosen.choice
    budget_mib = target.budget_bytes / 2**20
    progress(f"plan: {fmt} {choice.quantization}, n_ctx {choice.n_ctx}, "
             f"~{choice.total / 2**20:.0f} MiB of {budget_mib:.0f} MiB")  # fmt: skip

    with publishing(out) as work:
        work.mkdir()
        manifest = Manifest(
            target=target.full_name, model="", format=fmt, quantization=choice.quantization,
            n_ctx=choice.n_ctx, threads=target.threads, tools="",
            source="embedded default model (" + DEFAULT_MODEL_PIN + ")" if not model
            else source.name,
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            requires_edgeagent=edgeagent_range(), base_sha256=file_fingerprint(source) or "",
            grammar_digest=fingerprint(),
        )  # fmt: skip
        manifest.model = _place_model(
            source, shape, work, fmt, choice.quantization, adapter, progress
        )
        if fmt == "gguf":
            _place_adapters(manifest, work, adapter, decoupled, source, progress)
        problems = compatibility_problems(manifest)
        if problems:
            raise BundleError(f"cannot bundle: {'; '.join(problems)}",
                              hint="pass the adapter trained for this model")  # fmt: skip
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
        if sign is not None:
            record = json.dumps(signing.sign(sign, (work / MANIFEST).read_bytes()))
            write_synced(work / SIGNATURE, record + "\n")
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
    from edgeagent.models import (
        ANSWER_ADAPTER,
        RECOVERY_ADAPTER,
        adapter_base_sha256,
        is_default_adapter,
    )

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
        manifest.adapter_base_sha256 = adapter_base_sha256(dest)
        if is_default_adapter(adapter):
            manifest.adapter_kind = "general"
            # the shipped answer and recovery adapters go with it
            manifest.answer_adapter = _copy_shipped(ANSWER_ADAPTER, work)
            manifest.recovery_adapter = _copy_shipped(RECOVERY_ADAPTER, work)
    if decoupled:
        from edgeagent.decoupled import DecoupledAdapters

        DecoupledAdapters.load(decoupled)  # refuses a folder that is not a decoupled set
        shutil.copytree(decoupled, work / "adapters" / "decoupled")
        manifest.decoupled = "adapters/decoupled"


def _place_tools(tools: str | None, loaded: list[Tool], work: Path) -> str:
    """The tools' manifest (tools.json) and a reference the device can load: a module that
    ships with edgeagent by name, a user's module as a file copied into the bundle."""
    specs = [{**t.spec(), "effects": t.effects} for t in loaded]
    write_synced(work / "tools.json", json.dumps(specs, indent=2, ensure_ascii=False) + "\n")
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
    """grammars.json: the tool-call grammars the agent uses with the bundle's tools, so a device
    without llama-cpp-python's JSON-Schema converter (an ONNX-only phone) runs the same calls."""
    data = GrammarSet().precompile(tools)
    write_synced(work / GRAMMARS, json.dumps(data, indent=1) + "\n")


_LAUNCHER = """#!/bin/sh
# Runs this bundle's agent: ./run.sh "Set a timer for 5 minutes"   (./run.sh --help for options)
here="$(cd "$(dirname "$0")" && pwd)"
exec "${PYTHON:-python3}" -m edgeagent run --bundle "$here" "$@"
"""


def _write_launcher(work: Path) -> None:
    write_synced(work / "run.sh", _LAUNCHER)
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
    write_synced(work / "README.md", text)


def _copy_shipped(shipped: Path, work: Path) -> str | None:
    """A shipped companion adapter copied into the bundle: its path there, None if absent."""
    if not shipped.exists():
        return None
    shutil.copyfile(shipped, work / "adapters" / shipped.name)
    return f"adapters/{shipped.name}"


def _adapter_line(m: Manifest) -> str:
    if m.adapter:
        line = f"`{m.adapter}`" + (" (the shipped general adapter)" if m.adapter_kind else "")
        line += f", answers `{m.answer_adapter}`" if m.answer_adapter else ""
        return line + (f", recovery `{m.recovery_adapter}`" if m.recovery_adapter else "")
    return f"`{m.decoupled}` (decoupled)" if m.decoupled else "none"
