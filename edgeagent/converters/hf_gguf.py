"""Hugging Face checkpoint directory -> GGUF model file (F32, F16 or BF16), with gguf-py.

gguf-py gives the writer, the tensor name maps (HF name -> GGUF name per architecture) and the
special-vocabulary reader (special token ids, merges, chat template); the per-architecture
choices below are the few facts llama.cpp's loader expects that a checkpoint does not say:

- llama: q/k projection rows are permuted into llama.cpp's rotary layout (per head, the two
  halves interleaved); qwen2 uses the NEOX layout and keeps HF's order (and has q/k/v biases).
- 1-D tensors (norms, biases) stay F32; matrices take the requested type.
- byte-level BPE tokenizers only (llama 3, SmolLM, Qwen2); the pre-tokenizer name comes from
  the `edgeagent.json` that `merge` writes (copied from the GGUF the model came from), or from a
  short table of known families; an unknown one is refused rather than guessed.

The output is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeagent.errors import EdgeAgentError
from edgeagent.paths import publishing

#: HF architecture class -> GGUF architecture name
SUPPORTED = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2"}
OUTTYPES = ("f32", "f16", "bf16")
SIDECAR = "edgeagent.json"  # what merge records about the model's origin
# the pre-tokenizer llama.cpp must use, for tokenizer families recognised by their vocabulary size
_KNOWN_PRE = {49152: "smollm", 128256: "llama-bpe", 151936: "qwen2", 152064: "qwen2"}


class UnsupportedModelError(EdgeAgentError):
    """A checkpoint this writer cannot convert (architecture or tokenizer)."""


@dataclass
class GgufExport:
    path: str
    architecture: str
    outtype: str
    tensors: int
    bytes: int


def hf_to_gguf(hf_dir: str | Path, out: str | Path, outtype: str = "f16") -> GgufExport:
    import gguf
    from safetensors import safe_open

    hf_dir, out = Path(hf_dir), Path(out)
    if outtype not in OUTTYPES:
        raise EdgeAgentError(f"outtype must be one of {', '.join(OUTTYPES)}, not {outtype!r}")
    config = _read_json(hf_dir / "config.json")
    hf_arch = (config.get("architectures") or ["?"])[0]
    if hf_arch not in SUPPORTED:
        raise UnsupportedModelError(
            f"{hf_dir}: architecture {hf_arch} is not supported",
            hint=f"supported: {', '.join(f'{k} ({v})' for k, v in SUPPORTED.items())}",
        )
    if config.get("rope_scaling"):
        raise UnsupportedModelError(
            f"{hf_dir}: rope_scaling {config['rope_scaling']} is not supported"
        )
    arch = SUPPORTED[hf_arch]
    arch_id = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch)
    n_layers = int(config["num_hidden_layers"])
    n_head = int(config["num_attention_heads"])
    n_kv = int(config.get("num_key_value_heads", n_head))
    hidden = int(config["hidden_size"])
    head_dim = int(config.get("head_dim") or hidden // n_head)
    names = gguf.get_tensor_name_map(arch_id, n_layers)
    files = sorted(hf_dir.glob("*.safetensors"))
    if not files:
        raise EdgeAgentError(f"{hf_dir}: no .safetensors weights", hint="save with safetensors")
    for file in files:
        check_safetensors(file, hint="save or copy the model again")

    count = 0
    with publishing(out) as tmp:
        writer = gguf.GGUFWriter(str(tmp), arch)
        writer.add_type(gguf.GGUFType.MODEL)
        writer.add_name(str(config.get("_name_or_path") or hf_dir.name))
        writer.add_context_length(int(config.get("max_position_embeddings", 2048)))
        writer.add_embedding_length(hidden)
        writer.add_block_count(n_layers)
        writer.add_feed_forward_length(int(config["intermediate_size"]))
        writer.add_head_count(n_head)
        writer.add_head_count_kv(n_kv)
        writer.add_rope_dimension_count(head_dim)
        writer.add_rope_freq_base(float(config.get("rope_theta", 10000.0)))
        writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
        writer.add_vocab_size(int(config["vocab_size"]))
        ftype = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                 "bf16": gguf.LlamaFileType.MOSTLY_BF16}[outtype]  # fmt: skip
        writer.add_file_type(ftype)
        _add_tokenizer(writer, hf_dir, int(config["vocab_size"]))
        for file in files:
            with safe_open(str(file), framework="pt") as st:
                for key in st.keys():  # noqa: SIM118 (safe_open is not a dict)
                    if key.endswith("rotary_emb.inv_freq"):
                        continue
                    name = names.get_name(key, try_suffixes=(".weight", ".bias"))
                    if name is None:
                        raise UnsupportedModelError(f"{file.name}: tensor {key} has no GGUF name")
                    data = st.get_tensor(key).float().numpy()
                    if arch == "llama" and name.endswith(("attn_q.weight", "attn_k.weight")):
                        data = permute_rows(data, n_head if "attn_q" in name else n_kv)
                    _add(writer, name, data, outtype)
                    count += 1
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return GgufExport(str(out), arch, outtype, count, out.stat().st_size)


def permute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """HF's rotary layout -> llama.cpp's: per head, the two halves of the rows interleaved."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _add(writer: Any, name: str, data: np.ndarray, outtype: str) -> None:
    import gguf

    if data.ndim == 1 or outtype == "f32":
        writer.add_tensor(name, data.astype(np.float32))
    elif outtype == "f16":
        writer.add_tensor(name, data.astype(np.float16))
    else:
        raw = gguf.quants.quantize(data, gguf.GGMLQuantizationType.BF16)
        writer.add_tensor(name, raw, raw_shape=data.shape, raw_dtype=gguf.GGMLQuantizationType.BF16)


def _add_tokenizer(writer: Any, hf_dir: Path, n_vocab: int) -> None:
    """Tokens, types, merges, special ids and chat template of a byte-level BPE tokenizer."""
    import gguf

    tok = _read_json(hf_dir / "tokenizer.json")
    model = tok.get("model", {})
    byte_level = '"ByteLevel"' in json.dumps([tok.get("pre_tokenizer"), tok.get("decoder")])
    if model.get("type") != "BPE" or not byte_level:
        raise UnsupportedModelError(
            f"{hf_dir}: only byte-level BPE tokenizers convert (this one is {model.get('type')}"
            f"{'' if byte_level else ' without ByteLevel'})"
        )
    by_id = {i: t for t, i in model["vocab"].items()}
    types = dict.fromkeys(by_id, gguf.TokenType.NORMAL)
    for added in tok.get("added_tokens", []):
        by_id[added["id"]] = added["content"]
        types[added["id"]] = (
            gguf.TokenType.CONTROL if added.get("special") else gguf.TokenType.USER_DEFINED
        )
    tokens, toktypes = [], []
    for i in range(n_vocab):  # the embedding may be padded past the tokenizer
        tokens.append(by_id.get(i, f"[PAD{i}]"))
        toktypes.append(types.get(i, gguf.TokenType.UNUSED))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer(hf_dir, n_vocab))
    writer.add_token_list(tokens)
    writer.add_token_types(toktypes)
    special = gguf.SpecialVocab(hf_dir, load_merges=True, n_vocab=n_vocab)
    special.add_to_gguf(writer, quiet=True)


def _pre_tokenizer(hf_dir: Path, n_vocab: int) -> str:
    sidecar = hf_dir / SIDECAR
    if sidecar.exists():
        pre = _read_json(sidecar).get("tokenizer_pre")
        if pre:
            return str(pre)
    pre = _KNOWN_PRE.get(n_vocab)
    if pre is None:
        raise UnsupportedModelError(
            f"{hf_dir}: cannot tell which pre-tokenizer llama.cpp should use for this vocabulary",
            hint=f'write {{"tokenizer_pre": "NAME"}} (a llama.cpp pre-tokenizer) into {sidecar}',
        )
    return pre


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    except (OSError, json.JSONDecodeError) as exc:
        raise EdgeAgentError(f"cannot read {path}: {exc}") from None


def check_safetensors(path: Path, hint: str) -> None:
    """Refuse a .safetensors file whose header cannot be read or that does not hold every
    tensor its header lists (safetensors checks both on open)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np"):
            pass
    except (SafetensorError, OSError) as exc:
        raise EdgeAgentError(f"{path} is truncated or corrupt ({exc})", hint=hint) from None
