"""Loading a base model with transformers (the `train` extra): a GGUF file, dequantized by
transformers' `gguf_file` loading so that training and merging see the very weights the device
runs, or a Hugging Face folder; NF4 for QLoRA on CUDA. Below both the trainer and the
converters, so that neither imports the other. torch and transformers load inside the functions:
importing this module costs nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeagent.errors import EdgeAgentError
from edgeagent.models import file_fingerprint
from edgeagent.paths import home, publishing


def load_base(base: str | Path, quantization: str = "none") -> tuple[Any, Any]:
    """(model, tokenizer) from a GGUF file or a Hugging Face directory; errors name the file."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(base)
    if not path.exists():
        raise EdgeAgentError(
            f"base model {path} does not exist",
            hint="base = 'default' is the embedded model; or give a .gguf file or an HF folder",
        )
    if quantization == "nf4":
        return _load_nf4(path)
    try:
        if path.suffix == ".gguf":
            from edgeagent.models import inspect_gguf

            inspect_gguf(path)  # a corrupt file is refused here, with the reason
            model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
            return model, load_gguf_tokenizer(path)
        return AutoModelForCausalLM.from_pretrained(str(path)), AutoTokenizer.from_pretrained(
            str(path)
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        if isinstance(exc, EdgeAgentError):
            raise
        raise EdgeAgentError(f"cannot load base model {path}: {exc}") from None


def load_gguf_tokenizer(path: str | Path) -> Any:
    """The HF tokenizer of a GGUF file, with the file's own special tokens: transformers'
    conversion takes SmolLM2's <|im_start|> for its end-of-sequence token and adds a BOS the
    file says not to add (seen with transformers 4.57)."""
    from transformers import AutoTokenizer

    from edgeagent.models import read_gguf_header

    path = Path(path)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    fields = read_gguf_header(path).fields
    for role in ("bos", "eos", "unk"):
        token_id = fields.get(f"tokenizer.ggml.{role}_token_id")
        if token_id is not None:
            setattr(tokenizer, f"{role}_token", tokenizer.convert_ids_to_tokens(int(token_id)))
    if "tokenizer.ggml.add_bos_token" in fields and hasattr(tokenizer, "add_bos_token"):
        tokenizer.add_bos_token = bool(fields["tokenizer.ggml.add_bos_token"])
    if fields.get("tokenizer.ggml.model") == "gpt2":
        # a byte-level BPE decodes with ByteLevel alone; the conversion's chain (ByteFallback,
        # Fuse, Replace, ByteLevel) decodes the same in transformers but makes llguidance read
        # "Ġ" as a literal character instead of a space
        from tokenizers import decoders

        tokenizer.backend_tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def _load_nf4(path: Path) -> tuple[Any, Any]:
    """QLoRA: the base in bitsandbytes NF4 with bf16 compute, on the first GPU."""
    import torch

    if not torch.cuda.is_available():
        raise EdgeAgentError(
            "QLoRA (NF4) needs a CUDA GPU and none is visible",
            hint='use LoRA on the CPU: --set lora.quantization="none"',
        )
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    folder = _hf_copy(path) if path.suffix == ".gguf" else path
    nf4 = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=torch.bfloat16,
        bnb_4bit_use_double_quant=True,
    )
    model = AutoModelForCausalLM.from_pretrained(
        str(folder), quantization_config=nf4, dtype=torch.bfloat16, device_map={"": 0}
    )
    return prepare_model_for_kbit_training(model), AutoTokenizer.from_pretrained(str(folder))


def _hf_copy(gguf: Path) -> Path:
    """bitsandbytes quantizes while loading HF weights: dequantize a GGUF once into the cache."""
    from transformers import AutoModelForCausalLM

    digest = (file_fingerprint(gguf) or "")[:16]
    folder = home() / "cache" / "hf" / f"{gguf.stem}-{digest}"
    if not folder.exists():
        with publishing(folder) as tmp:
            kw = {"gguf_file": gguf.name}
            AutoModelForCausalLM.from_pretrained(str(gguf.parent), **kw).save_pretrained(tmp)
            load_gguf_tokenizer(gguf).save_pretrained(tmp)
    return folder
