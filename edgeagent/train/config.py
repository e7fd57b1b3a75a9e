"""Training configs: a TOML or YAML file (top-level base, data, out, decoupled; a `lora` table of
LoraSettings) plus `--set section.key=value` overrides. Unknown keys are errors that name the
key."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from edgeagent.errors import EdgeAgentError
from edgeagent.train.trainer import LoraSettings

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass
class TrainConfig:
    base: str = "default"  # the embedded model's GGUF, a .gguf path or an HF directory
    data: str = "train.jsonl"
    out: str = "adapter"
    decoupled: bool = False  # DualTune: a selector adapter and one argument adapter per tool
    # train on from this adapter (PEFT folder or GGUF LoRA; "default": the shipped general one)
    init_adapter: str = ""
    lora: LoraSettings = field(default_factory=LoraSettings)

    def base_path(self) -> str:
        if self.base == "default":
            from edgeagent.models import default_model_path

            return str(default_model_path())
        return self.base

    def init_adapter_path(self) -> str | None:
        from edgeagent.models import resolve_adapter

        path = resolve_adapter(self.init_adapter)
        return str(path) if path else None


def load_config(path: str | Path | None, overrides: list[str] = ()) -> TrainConfig:  # type: ignore[assignment]
    raw: dict[str, Any] = {}
    if path is not None:
        raw = _read(Path(path))
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise EdgeAgentError(f"--set {item!r}: expected KEY=VALUE (e.g. lora.rank=16)")
        target = raw
        *parents, last = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        try:
            target[last] = json.loads(value)
        except json.JSONDecodeError:
            target[last] = value  # a bare string
    lora_raw = raw.pop("lora", {})
    _check_keys(raw, TrainConfig, "", skip={"lora"})
    _check_keys(lora_raw, LoraSettings, "lora.")
    try:
        lora = LoraSettings(**lora_raw)
    except ValueError as exc:
        raise EdgeAgentError(f"config: {exc}") from None
    return TrainConfig(**raw, lora=lora)


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(text) or {}
        else:
            raw = tomllib.loads(text)
    except ImportError:
        raise EdgeAgentError("YAML configs need PyYAML", hint="pip install pyyaml") from None
    except Exception as exc:  # OSError, TOML or YAML syntax: the parser's message has the line
        raise EdgeAgentError(f"cannot read config {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise EdgeAgentError(f"config {path} is not a table of keys")
    return raw


def _check_keys(values: dict[str, Any], cls: type, prefix: str, skip: set[str] = set()) -> None:  # noqa: B006
    known = {f.name for f in fields(cls)} - skip
    unknown = sorted(set(values) - known)
    if unknown:
        raise EdgeAgentError(
            f"unknown config key {prefix}{unknown[0]}",
            hint=f"known {prefix or 'top-level '}keys: {', '.join(sorted(known))}",
        )
