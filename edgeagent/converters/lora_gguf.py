"""PEFT LoRA adapter -> GGUF LoRA adapter that llama.cpp applies on a (quantized) GGUF base.

The file holds `general.type = adapter`, `adapter.type = lora`, `adapter.lora.alpha` and, for
each adapted weight, `<gguf name>.lora_a` (r x in) and `<gguf name>.lora_b` (out x r). Names come
from gguf-py's tensor name map for the base's architecture; the writer is gguf-py's GGUFWriter.

llama.cpp's converter stores a llama model's q and k projections with their rows permuted for
its rotary layout (transformers undoes that when it loads a GGUF). An adapter trained on the
unpermuted weights gets the same row permutation on B, so that B @ A lands on the rows llama.cpp
multiplies. The base's own header decides everything else: an adapter whose layers, sizes or
architecture do not match it is refused with the mismatch named, before anything is written.

`read_lora_gguf` goes the other way, so that training can start from a GGUF adapter (the
shipped general one included) where it left off.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeagent.converters.hf_gguf import check_safetensors, permute_rows
from edgeagent.errors import EdgeAgentError
from edgeagent.models import ADAPTER_BASE_KEY, file_fingerprint, inspect_gguf, read_gguf_header
from edgeagent.paths import publishing

_PEFT_KEY = re.compile(
    r"^base_model\.model\.(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.[^.]+)?\.weight$"
)
# architectures whose q/k rows llama.cpp permutes at conversion (convert_hf_to_gguf's LlamaModel)
_PERMUTED_QK = {"llama"}


class AdapterMismatchError(EdgeAgentError):
    """The adapter was not trained on this base (architecture, sizes or layer count differ)."""


@dataclass
class LoraExport:
    path: str
    tensors: int  # adapted weights
    rank: int
    alpha: float
    bytes: int


def export_lora_gguf(
    adapter_dir: str | Path, base_gguf: str | Path, out: str | Path, dtype: str = "f32"
) -> LoraExport:
    """Write the GGUF adapter to `out` (atomically: a temporary name, renamed when complete)."""
    import gguf
    from safetensors.numpy import load_file

    adapter_dir, out = Path(adapter_dir), Path(out)
    config = read_adapter_config(adapter_dir)
    info = inspect_gguf(base_gguf)
    header = read_gguf_header(Path(base_gguf))
    arch = info.architecture
    base_tensors = {t.name: t.shape for t in header.tensors}
    n_layers = int(header.fields.get(f"{arch}.block_count", 0))
    try:
        arch_id = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch)
    except StopIteration:
        raise AdapterMismatchError(f"gguf-py does not know the architecture {arch!r}") from None
    names = gguf.get_tensor_name_map(arch_id, n_layers)
    weights = load_file(str(adapter_dir / "adapter_model.safetensors"))
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in weights.items():
        m = _PEFT_KEY.match(key)
        if not m:
            raise AdapterMismatchError(
                f"{key}: not a LoRA weight this exporter knows",
                hint="only LoRA adapters (not DoRA, IA3...) export",
            )
        pairs.setdefault(m["module"], {})[m["ab"]] = value
    rank = int(config["r"])
    alpha = float(config["lora_alpha"])
    if config.get("use_rslora"):
        alpha *= math.sqrt(rank)  # llama.cpp scales by alpha / r; rsLoRA by alpha / sqrt(r)
    n_head = int(header.fields.get(f"{arch}.attention.head_count", 0))
    n_kv = int(header.fields.get(f"{arch}.attention.head_count_kv", n_head))
    tensors: list[tuple[str, np.ndarray]] = []
    for module, ab in sorted(pairs.items()):
        if set(ab) != {"A", "B"}:
            raise AdapterMismatchError(f"{module}: has lora_{next(iter(ab))} but not its pair")
        name = names.get_name(module + ".weight", try_suffixes=(".weight",))
        if name is None or name not in base_tensors:
            layer = re.search(r"layers\.(\d+)\.", module)
            if layer and int(layer[1]) >= n_layers:
                raise AdapterMismatchError(
                    f"the adapter adapts layer {layer[1]} but the base has {n_layers} layers"
                )
            raise AdapterMismatchError(f"{module}: no matching tensor in the {arch} base")
        a, b = ab["A"].astype(np.float32), ab["B"].astype(np.float32)
        n_in, n_out = base_tensors[name][0], base_tensors[name][1]
        if a.shape[1] != n_in or b.shape[0] != n_out:
            raise AdapterMismatchError(
                f"{module}: the adapter maps {a.shape[1]} -> {b.shape[0]} but the base's {name} "
                f"is {n_in} -> {n_out} (hidden size differs: another model?)"
            )
        if arch in _PERMUTED_QK and name.endswith(("attn_q.weight", "attn_k.weight")):
            b = permute_rows(b, n_head if name.endswith("attn_q.weight") else n_kv)
        cast = np.float16 if dtype == "f16" else np.float32
        tensors += [(name + ".lora_a", a.astype(cast)), (name + ".lora_b", b.astype(cast))]
    if not tensors:
        raise AdapterMismatchError(f"{adapter_dir} holds no LoRA weights")

    with publishing(out) as tmp:
        writer = gguf.GGUFWriter(str(tmp), arch)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_string(gguf.Keys.General.NAME, adapter_dir.name)
        # the base it was made for: a bundle records it, and refuses a model it was not made for
        writer.add_string(ADAPTER_BASE_KEY, file_fingerprint(base_gguf) or "")
        for name, array in tensors:
            writer.add_tensor(name, array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return LoraExport(str(out), len(tensors) // 2, rank, alpha, out.stat().st_size)


def read_lora_gguf(
    path: str | Path, module_names: Iterable[str], n_head: int, n_kv: int
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A GGUF LoRA adapter in PEFT's terms: its config (r, lora_alpha, target_modules) and its
    weights under the names PEFT saves them with. `module_names` are the HF model's modules
    (the reverse of the export's name map); q/k rows are permuted back to the HF layout."""
    import gguf

    from edgeagent.backends.llamacpp import check_adapter

    path = Path(path)
    check_adapter(path, None)  # whole, and an adapter: else refused with the reason
    reader = gguf.GGUFReader(str(path))

    def field(key: str) -> Any:
        found = reader.fields.get(key)
        return found.contents() if found is not None else None

    arch = field("general.architecture")
    arch_id = next((k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch), None)
    if arch_id is None:
        raise AdapterMismatchError(f"gguf-py does not know the architecture {arch!r}")
    modules = list(module_names)
    layers = [int(m[1]) for name in modules if (m := re.search(r"layers\.(\d+)\.", name))]
    names = gguf.get_tensor_name_map(arch_id, max(layers, default=0) + 1)
    by_gguf = {}
    for module in modules:
        name = names.get_name(module + ".weight", try_suffixes=(".weight",))
        if name is not None:
            by_gguf[name] = module
    weights: dict[str, np.ndarray] = {}
    for tensor in reader.tensors:
        name, _, part = tensor.name.rpartition(".lora_")
        if part not in ("a", "b") or name not in by_gguf:
            raise AdapterMismatchError(f"{tensor.name}: no matching layer in the base model")
        w = np.array(tensor.data, dtype=np.float32)
        if (
            part == "b"
            and arch in _PERMUTED_QK
            and name.endswith(("attn_q.weight", "attn_k.weight"))
        ):
            heads = n_head if name.endswith("attn_q.weight") else n_kv
            w = w.reshape(heads, w.shape[0] // heads // 2, 2, -1).swapaxes(1, 2).reshape(w.shape)
        weights[f"base_model.model.{by_gguf[name]}.lora_{part.upper()}.weight"] = w
    if not weights:
        raise EdgeAgentError(f"{path} holds no LoRA weights")
    rank = next(w.shape[0] for k, w in weights.items() if k.endswith("lora_A.weight"))
    targets = sorted({k.split(".lora_")[0].rsplit(".", 1)[-1] for k in weights})
    config = {
        "r": rank,
        # none written: llama.cpp scales by 1, as alpha = r does
        "lora_alpha": float(field("adapter.lora.alpha") or rank),
        "target_modules": targets,
    }
    return config, weights


def read_adapter_config(adapter_dir: Path) -> dict[str, Any]:
    """A PEFT LoRA folder's config, after checking that its weights file is whole."""
    path = adapter_dir / "adapter_config.json"
    if not path.exists():
        raise EdgeAgentError(
            f"{adapter_dir} is not a PEFT adapter folder (no adapter_config.json)",
            hint="give the folder `edgeagent train` wrote",
        )
    try:
        config: dict[str, Any] = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EdgeAgentError(f"{path}: not a readable PEFT adapter config ({exc})") from None
    if not isinstance(config, dict):
        raise EdgeAgentError(f"{path}: not a PEFT adapter config (not a JSON object)")
    if config.get("peft_type", "LORA") != "LORA":
        raise EdgeAgentError(f"{adapter_dir}: a {config['peft_type']} adapter, not LoRA")
    weights = adapter_dir / "adapter_model.safetensors"
    if not weights.exists():
        raise EdgeAgentError(f"{adapter_dir}: adapter_model.safetensors is missing")
    check_safetensors(weights, hint="train the adapter again, or copy it again")
    return config


def export_decoupled(
    adapter_dir: str | Path, base_gguf: str | Path, out: str | Path, dtype: str = "f32"
) -> list[LoraExport]:
    """`train --decoupled` output -> a folder of GGUF adapters with its decoupled.json, which
    `Agent(decoupled=...)` loads. Built under a temporary name, renamed when complete."""

    adapter_dir, out = Path(adapter_dir), Path(out)
    try:
        index = json.loads((adapter_dir / "decoupled.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise EdgeAgentError(f"{adapter_dir}: no readable decoupled.json ({exc})") from None
    with publishing(out) as tmp:
        done = [export_lora_gguf(adapter_dir / index["selector"], base_gguf,
                                 tmp / "selector.gguf", dtype)]  # fmt: skip
        files = {}
        for tool, sub in sorted(index["arguments"].items()):
            files[tool] = f"arguments/{tool}.gguf"
            done.append(export_lora_gguf(adapter_dir / sub, base_gguf, tmp / files[tool], dtype))
        manifest = {"selector": "selector.gguf", "arguments": files}
        (tmp / "decoupled.json").write_text(json.dumps(manifest, indent=2))
    return [LoraExport(str(out / Path(r.path).relative_to(tmp)), r.tensors, r.rank, r.alpha,
                       r.bytes) for r in done]  # fmt: skip
