"""edgeagent.targets: device profiles, one TOML file each, and the memory planner (planner.py).

A profile names the device (arch, cores, memory variants, accelerator) and the defaults that follow
(format, quantizations in order of preference, context length, threads, memory left to the OS,
llama.cpp build flags). The shipped ones live beside this file; a user adds one by dropping
`NAME.toml` into `~/.edgeagent/targets/` (or $EDGEAGENT_HOME/targets/). `rpi5` means the
smallest listed variant, so the build fits every board; `rpi5:8gb` names one.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgeagent.errors import EdgeAgentError
from edgeagent.quantization import names, quantizer_types

SHIPPED = Path(__file__).parent
FORMATS = ("gguf", "onnx")
ACCELERATORS = ("none", "cuda", "metal", "vulkan", "npu")
_REQUIRED = {
    "description": str,
    "arch": str,
    "cpu": str,
    "cores": int,
    "accelerator": str,
    "format": str,
    "quantizations": list,
    "onnx_quantization": str,
    "n_ctx": int,
    "min_ctx": int,
    "threads": int,
    "os_reserve_mib": int,
    "llama_cpp_cmake_args": str,
    "variants": dict,
}


class TargetError(EdgeAgentError):
    """An unknown target or a profile file that does not hold a valid target."""


@dataclass(frozen=True)
class Target:
    name: str  # file name without .toml
    variant: str  # the memory variant in use, e.g. "4gb"
    ram_mib: int
    description: str
    arch: str
    cpu: str
    cores: int
    accelerator: str
    format: str
    quantizations: tuple[str, ...]
    onnx_quantization: str
    n_ctx: int
    min_ctx: int
    threads: int
    os_reserve_mib: int
    llama_cpp_cmake_args: str
    variants: dict[str, int]
    path: str

    @property
    def full_name(self) -> str:
        return f"{self.name}:{self.variant}"

    @property
    def budget_bytes(self) -> int:
        """Memory the agent may use: the variant's RAM less what the OS keeps."""
        return (self.ram_mib - self.os_reserve_mib) * 2**20

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["quantizations"] = list(self.quantizations)
        out["budget_mib"] = self.ram_mib - self.os_reserve_mib
        return out


def target_dirs() -> list[Path]:
    from edgeagent.paths import home

    return [SHIPPED, home() / "targets"]


def _files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in target_dirs():  # a user's file of the same name replaces a shipped one
        for path in sorted(folder.glob("*.toml")):
            found[path.stem] = path
    return found


def target_names() -> list[str]:
    return sorted(_files())


def load_target(spec: str) -> Target:
    """`rpi5` (its smallest variant) or `rpi5:8gb`."""
    name, _, variant = spec.partition(":")
    files = _files()
    if name not in files:
        raise TargetError(
            f"unknown target {name!r}",
            hint=f"known targets: {', '.join(sorted(files))} (edgeagent targets lists them; "
            "add one as a .toml file in ~/.edgeagent/targets/)",
        )
    target = parse_target(files[name])
    if not variant:
        return target
    if variant not in target.variants:
        raise TargetError(
            f"target {name} has no variant {variant!r}",
            hint=f"its variants: {', '.join(target.variants)}",
        )
    return _with_variant(target, variant)


def load_targets() -> list[Target]:
    return [parse_target(path) for path in _files().values()]


def parse_target(path: Path) -> Target:
    """Read and check one profile; a wrong field is named with the file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TargetError(f"{path}: cannot read the target file: {exc}") from None

    def bad(field: str, why: str) -> TargetError:
        return TargetError(f"{path}: field {field!r} {why}")

    for field, kind in _REQUIRED.items():
        if field not in data:
            raise bad(field, "is missing")
        if not isinstance(data[field], kind) or isinstance(data[field], bool):
            raise bad(field, f"must be a {kind.__name__}, not {type(data[field]).__name__}")
    unknown = sorted(set(data) - set(_REQUIRED))
    if unknown:
        raise bad(unknown[0], f"is not a target field (fields: {', '.join(_REQUIRED)})")
    if data["format"] not in FORMATS:
        raise bad("format", f"must be one of {', '.join(FORMATS)}")
    if data["accelerator"] not in ACCELERATORS:
        raise bad("accelerator", f"must be one of {', '.join(ACCELERATORS)}")
    _check_quants(data, bad)
    variants = data["variants"]
    if not variants or not all(isinstance(v, int) and v > 0 for v in variants.values()):
        raise bad("variants", "must map names to memory in MiB, e.g. 4gb = 4096")
    for field in ("cores", "threads", "n_ctx", "min_ctx"):
        if data[field] < 1:
            raise bad(field, "must be at least 1")
    if data["min_ctx"] > data["n_ctx"]:
        raise bad("min_ctx", "must not exceed n_ctx")
    smallest = min(variants, key=variants.__getitem__)
    fields = {k: v for k, v in data.items() if k != "variants"}
    fields["quantizations"] = tuple(data["quantizations"])
    if any(variants[v] <= data["os_reserve_mib"] for v in variants):
        raise bad("os_reserve_mib", "leaves nothing of the smallest variant's memory")
    return Target(
        name=path.stem,
        variant=smallest,
        ram_mib=variants[smallest],
        variants=dict(variants),
        path=str(path),
        **fields,
    )


def _check_quants(data: dict[str, Any], bad: Any) -> None:
    quants = quantizer_types()
    if not data["quantizations"]:
        raise bad("quantizations", "must name at least one")
    for quant in data["quantizations"]:
        if quant not in quants:
            raise bad("quantizations", f"names {quant!r}; GGUF types: {', '.join(quants)}")
    if data["onnx_quantization"] not in names("onnx"):
        raise bad("onnx_quantization", f"must be one of {', '.join(names('onnx'))}")


def _with_variant(target: Target, variant: str) -> Target:
    from dataclasses import replace

    return replace(target, variant=variant, ram_mib=target.variants[variant])
