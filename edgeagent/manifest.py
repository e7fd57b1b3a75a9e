"""A bundle's manifest (bundle.toml): read, write, paths that stay inside, file hashes, and the
precompiled grammars. What a device needs to load a bundle, and nothing that builds one."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeagent._version import __version__
from edgeagent.errors import EdgeAgentError
from edgeagent.grammarset import GrammarKey, read_precompiled

MANIFEST = "bundle.toml"
SIGNATURE = "bundle.toml.sig"  # edgeagent.signing: the manifest's signature, beside it
GRAMMARS = "grammars.json"
FORMAT_VERSION = 1
#: files of a bundle that its manifest does not list (the manifest itself, its signature)
UNLISTED = (MANIFEST, SIGNATURE)


def edgeagent_range(version: str = __version__) -> str:
    """The edgeagent versions a bundle built by `version` runs on: the same minor release
    while the major version is 0, the same major release after."""
    from packaging.version import Version

    v = Version(version)
    upper = f"{v.major}.{v.minor + 1}" if v.major == 0 else f"{v.major + 1}"
    return f">={v.major}.{v.minor},<{upper}"


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
    adapter_kind: str = ""  # "general": the shipped adapter (answers written with it off)
    #: beside the shipped adapter: the answer adapter (answers after tool results)
    answer_adapter: str | None = None
    #: beside the shipped adapter: the recovery adapter (the step after a tool error)
    recovery_adapter: str | None = None
    decoupled: str | None = None
    source: str = ""
    estimate_bytes: int = 0
    budget_bytes: int = 0
    edgeagent_version: str = __version__
    #: the edgeagent versions that may run this bundle (a PEP 440 specifier)
    requires_edgeagent: str = ""
    #: SHA-256 of the model the bundle's model and adapters were made from
    base_sha256: str = ""
    #: SHA-256 of the model its adapter was trained for ("": not recorded)
    adapter_base_sha256: str = ""
    #: edgeagent.grammarset.fingerprint() of the code that wrote grammars.json
    grammar_digest: str = ""
    created: str = ""
    files: list[BundleFile] = field(default_factory=list)

    def paths(self) -> list[str]:
        named = [self.model, self.tools, self.adapter, self.answer_adapter,
                 self.recovery_adapter, self.decoupled]  # fmt: skip
        return [p for p in named if p and not is_module(p)]


def is_module(ref: str) -> bool:
    return not ref.endswith(".py") and "/" not in ref


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
    write_synced(root / MANIFEST, "\n".join(lines) + "\n")


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
    requires = str(data.get("bundle", {}).get("requires_edgeagent", ""))
    if requires and not runs_here(requires):  # before its fields: a newer one may have more
        raise BundleError(
            f"{path}: the bundle needs edgeagent {requires}; this is {__version__}",
            hint="install an edgeagent the bundle accepts, or rebuild it with this one",
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


def runs_here(requires: str) -> bool:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        return __version__ in SpecifierSet(requires)
    except InvalidSpecifier:
        return False


def compatibility_problems(manifest: Manifest) -> list[str]:
    """Why this edgeagent must not switch to the bundle: it needs another edgeagent, or its
    adapter was made for another base model than its model's."""
    problems = []
    if manifest.requires_edgeagent and not runs_here(manifest.requires_edgeagent):
        problems.append(f"it needs edgeagent {manifest.requires_edgeagent}; this is "
                        f"{__version__}")  # fmt: skip
    base, wanted = manifest.base_sha256, manifest.adapter_base_sha256
    if base and wanted and base != wanted:
        problems.append(f"its adapter was made for base model {wanted[:12]}…, its model is "
                        f"{base[:12]}…")  # fmt: skip
    return problems


def read_signature(root: Path) -> str | None:
    path = root / SIGNATURE
    return path.read_text(encoding="utf-8") if path.is_file() else None


def check_signature(root: Path, trusted: list[str | Path]) -> str:
    """The id of the trusted key that signed the bundle's manifest (SignatureError if none)."""
    from edgeagent.signing import check

    return check((root / MANIFEST).read_bytes(), read_signature(root), trusted)


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


def load_grammars(root: Path) -> dict[GrammarKey, str]:
    """The precompiled grammars of a bundle. Empty for a bundle without them, and for one built
    by an edgeagent whose grammar code differs from this one's when this machine can build them
    itself (a device without llama-cpp-python uses what the bundle brings)."""
    path = root / GRAMMARS
    if not path.exists():
        return {}
    try:
        return read_precompiled(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{path}: unreadable grammars ({type(exc).__name__}: {exc})") from None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def hash_files(root: Path) -> list[BundleFile]:
    files = []
    for path in _listed(root):
        rel = path.relative_to(root).as_posix()
        files.append(BundleFile(rel, file_sha256(path), path.stat().st_size))
    return files


def file_problems(root: Path, manifest: Manifest) -> list[str]:
    """Every file that is missing, of another size or hash, or not in the manifest."""
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
    for path in _listed(root):
        rel = path.relative_to(root).as_posix()
        if rel not in listed:
            problems.append(f"{rel} is not in the manifest (added after the build)")
    for rel in manifest.paths():
        if not (root / rel).exists():
            problems.append(f"the manifest's {rel} does not exist")
    return problems


def _listed(root: Path) -> list[Path]:
    """Every file of a bundle that its manifest lists: all but the manifest and signature."""
    top = {root / name for name in UNLISTED}
    return sorted(p for p in root.rglob("*") if p.is_file() and p not in top)


def write_synced(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
