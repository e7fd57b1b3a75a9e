"""LoRA training on a tiny model built from a config (needs the train extra; skipped without)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

from edgeagent.demo_tools import DEMO_TOOLS  # noqa: E402
from edgeagent.models import default_model_path  # noqa: E402
from edgeagent.train.data import parse_example  # noqa: E402
from edgeagent.train.render import IGNORE, render_example  # noqa: E402
from edgeagent.train.synth import synthesize  # noqa: E402
from edgeagent.train.trainer import LoraSettings, encode, train_lora  # noqa: E402
from edgeagent.wireformat import ChatRenderer  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer():
    path = default_model_path()  # the embedded model's own tokenizer, read from its GGUF
    return transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


@pytest.fixture()
def tiny(tokenizer):
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
    )  # fmt: skip
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config), tokenizer


def examples(n=8):
    tools = [t for t in DEMO_TOOLS if t.name in ("set_timer", "convert_units")]
    return [parse_example(d) for d in synthesize(tools, n, seed=1)]


def test_hf_tokenizer_mask_is_exactly_the_assistant_parts(tokenizer):
    ex = examples(1)[0]
    rows = encode([ex], tokenizer, "assistant", 4096)
    learned = [
        t
        for t, label in zip(rows[0]["input_ids"], rows[0]["labels"], strict=True)
        if label != IGNORE
    ]
    rendered = render_example(ex, ChatRenderer(tokenizer.chat_template))
    assert tokenizer.decode(learned) == rendered.learned_text()
    assert rows[0]["input_ids"][0] != tokenizer.bos_token_id or rendered.text.startswith(
        "<|im_start|>"
    )


def test_lora_training_lowers_the_loss_and_writes_a_peft_adapter(tiny, tmp_path):
    from peft import PeftModel

    out = tmp_path / "adapter"
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    settings = LoraSettings(
        rank=16,
        alpha=32,
        lr=3e-2,
        max_steps=16,
        batch_size=4,
        eval_fraction=0,
        target_modules=targets,
    )
    result = train_lora(examples(8), "tiny", out, settings, model_and_tokenizer=tiny)
    assert result.steps == 16 and len(result.train_loss) == 16
    # a random tiny model learns slowly through a frozen head: a clear, not a large, drop
    assert result.train_loss[-1] < result.train_loss[0] - 0.15
    assert (out / "adapter_config.json").exists() and (out / "adapter_model.safetensors").exists()
    meta = json.loads((out / "edgeagent.json").read_text())
    assert meta["settings"]["mask"] == "assistant"
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]  # no partial folders left
    model, _ = tiny  # train_lora injected the adapter into this one: load into a fresh copy
    fresh = transformers.LlamaForCausalLM(model.config)
    loaded = PeftModel.from_pretrained(fresh, str(out))
    assert any("lora_A" in name for name, _ in loaded.named_parameters())


def test_shipped_configs_load_and_validate():
    from edgeagent.train.config import CONFIG_DIR, load_config

    configs = sorted(CONFIG_DIR.glob("*.toml"))
    assert configs
    for path in configs:
        cfg = load_config(path)
        assert cfg.lora.rank > 0 and cfg.lora.mask in ("assistant", "selector", "arguments")


def test_config_overrides_and_unknown_keys(tmp_path):
    from edgeagent.errors import EdgeAgentError
    from edgeagent.train.config import load_config

    cfg = load_config(None, ["lora.rank=32", 'lora.target_modules=["q_proj"]', "out=here"])
    assert cfg.lora.rank == 32 and cfg.lora.target_modules == ["q_proj"] and cfg.out == "here"
    with pytest.raises(EdgeAgentError, match="unknown config key lora.rnak"):
        load_config(None, ["lora.rnak=4"])


def test_train_cli_writes_adapter_log_and_plot(tiny, tmp_path):
    import subprocess
    import sys

    from edgeagent.train.data import write_jsonl

    model, tok = tiny
    base = tmp_path / "tiny-base"
    model.save_pretrained(base)
    tok.save_pretrained(base)
    tools = [t for t in DEMO_TOOLS if t.name in ("set_timer", "convert_units")]
    write_jsonl(synthesize(tools, 12, seed=2), tmp_path / "train.jsonl")
    out = tmp_path / "adapter"
    proc = subprocess.run(
        [sys.executable, "-m", "edgeagent", "train", "--base", str(base), "--data", str(tmp_path / "train.jsonl"),
         "--out", str(out), "--set", "lora.max_steps=4", "--set", "lora.eval_fraction=0.2", "--json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["steps"] == 4 and summary["examples"] == 12 and summary["eval_loss"] is not None
    assert (out / "adapter_model.safetensors").exists() and (out / "loss.png").stat().st_size > 5000
    log = (out / "train_log.csv").read_text().splitlines()
    assert log[0] == "step,loss,eval_loss,learning_rate" and len(log) >= 5
