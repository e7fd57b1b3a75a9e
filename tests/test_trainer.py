"""LoRA training on a tiny model built from a config (needs the train extra; skipped without)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

from edgeagent.demo_tools import DEMO_TOOLS  # noqa: E402
from edgeagent.models import DEFAULT_ADAPTER, default_model_path  # noqa: E402
from edgeagent.train.data import parse_example  # noqa: E402
from edgeagent.train.render import IGNORE, MaskKind, render_example  # noqa: E402
from edgeagent.train.synth import synthesize  # noqa: E402
from edgeagent.train.trainer import LoraSettings, encode, train_lora  # noqa: E402
from edgeagent.wireformat import ChatRenderer  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer(hf_tokenizer):
    return hf_tokenizer  # the embedded model's own tokenizer, read from its GGUF


@pytest.fixture()
def tiny(tokenizer):
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
    )  # fmt: skip
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config), tokenizer


def trainer_bf16():
    from edgeagent.train.trainer import use_bf16

    return use_bf16("auto")


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


def test_lora_training_lowers_the_loss_and_writes_a_peft_adapter(tiny, tmp_path, monkeypatch):
    from peft import PeftModel

    out = tmp_path / "adapter"
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    # fp32: the same figures on every CPU (bf16 runs where the CPU has it: see below)
    settings = LoraSettings(
        rank=16, alpha=32, lr=3e-2, max_steps=16, batch_size=1, eval_fraction=0,
        target_modules=targets, warmup_ratio=0, precision="fp32",
    )  # fmt: skip
    from edgeagent.train import trainer

    learned_only = []  # the head runs only where labels are learned (a model in train mode)
    loss_of = trainer.learned_positions_loss
    monkeypatch.setattr(trainer, "learned_positions_loss",
                        lambda *a: learned_only.append(1) or loss_of(*a))  # fmt: skip
    result = train_lora(examples(8), "tiny", out, settings, model_and_tokenizer=tiny)
    assert result.steps == 16 and len(result.train_loss) == 16 and result.tokens_per_s > 0
    assert result.precision == "fp32" and len(learned_only) >= 16
    # a random tiny model learns slowly through a frozen head: a clear, not a large, drop
    assert result.train_loss[-1] < result.train_loss[0] - 0.1
    assert (out / "adapter_config.json").exists() and (out / "adapter_model.safetensors").exists()
    card = json.loads((out / "run_card.json").read_text())
    assert card["settings"]["mask"] == "assistant" and len(card["data_sha256"]) == 64
    assert card["metrics"]["adapter"]["steps"] == 16
    assert json.loads((out / "result.json").read_text())["adapter"] == str(out)
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]  # no partial folders left
    model, _ = tiny  # the trainer unloaded its LoRA layers from this one
    assert not any("lora" in name for name, _ in model.named_parameters())
    loaded = PeftModel.from_pretrained(model, str(out))
    assert any("lora_A" in name for name, _ in loaded.named_parameters())


def test_bf16_autocast_trains_where_the_cpu_computes_bf16(tiny, tmp_path):
    if not trainer_bf16():
        pytest.skip("this machine has no native bf16 compute")
    # every projection adapted, as in the fp32 test (a larger drop than with the default two)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    settings = LoraSettings(rank=16, alpha=32, lr=3e-2, max_steps=16, batch_size=1,
                            eval_fraction=0, warmup_ratio=0, target_modules=targets)  # fmt: skip
    result = train_lora(examples(8), "tiny", tmp_path / "a", settings, model_and_tokenizer=tiny)
    assert result.precision == "bf16"
    # two passes over the same eight examples (one step is one example): the second pass's
    # mean loss against the first's, so that the examples' own spread cancels
    first, second = result.train_loss[:8], result.train_loss[8:]
    assert sum(second) / 8 < sum(first) / 8 - 0.05, result.train_loss
    card = json.loads((tmp_path / "a" / "run_card.json").read_text())
    assert card["metrics"]["adapter"]["precision"] == "bf16"


def test_each_run_computes_in_the_precision_it_was_set_to(tiny, tmp_path):
    """bf16 then fp32 in one process, as the benchmark runs them: transformers carries a bf16
    run's mixed precision into the next run's arguments (an environment variable), and the
    loss at the learned positions must autocast where the settings say (on a GPU, accelerate's
    autocast wraps only the model's forward, which that loss does not call)."""
    if not trainer_bf16():
        pytest.skip("this machine has no native bf16 compute")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, _ = tiny
    seen: list[bool] = []
    layer = model.model.layers[0].self_attn.q_proj  # LoRA wraps it and calls it

    def record(module, *_):  # returns None: the layer's output stays as it is
        if module.training:  # not the trainer's own checks, run in eval mode
            seen.append(torch.is_autocast_enabled(device))

    hook = layer.register_forward_hook(record)
    runs = {}
    try:
        for precision in ("bf16", "fp32"):
            settings = LoraSettings(precision=precision, max_steps=2, batch_size=1,
                                    eval_fraction=0)  # fmt: skip
            train_lora(examples(4), "tiny", tmp_path / precision, settings,
                       model_and_tokenizer=tiny)  # fmt: skip
            runs[precision] = set(seen)
            seen.clear()
    finally:
        hook.remove()
    assert runs == {"bf16": {True}, "fp32": {False}}


def test_training_goes_on_from_an_init_adapter_in_its_shape(tiny, tmp_path):
    from safetensors.numpy import load_file

    from edgeagent.errors import EdgeAgentError

    first = LoraSettings(rank=4, alpha=8, target_modules=["q_proj", "v_proj"], lr=3e-2,
                         max_steps=12, batch_size=1, eval_fraction=0, warmup_ratio=0)  # fmt: skip
    a = train_lora(examples(8), "tiny", tmp_path / "a", first, model_and_tokenizer=tiny)
    # lr 0: the adapter comes out as it went in, with the init's rank and targets (sorted:
    # PEFT saves them as a set), not these
    again = LoraSettings(lr=0.0, max_steps=2, batch_size=1, eval_fraction=0, warmup_ratio=0)
    b = train_lora(examples(8), "tiny", tmp_path / "b", again, model_and_tokenizer=tiny,
                   init_adapter=tmp_path / "a")  # fmt: skip
    before = load_file(str(tmp_path / "a" / "adapter_model.safetensors"))
    after = load_file(str(tmp_path / "b" / "adapter_model.safetensors"))
    assert before.keys() == after.keys()
    assert all((before[k] == after[k]).all() for k in before)
    card = json.loads((tmp_path / "b" / "run_card.json").read_text())
    assert card["settings"]["rank"] == 4 and card["settings"]["target_modules"] == [
        "q_proj",
        "v_proj",
    ]
    assert card["init_adapter"] == str(tmp_path / "a") and len(card["init_adapter_sha256"]) == 64
    assert b.train_loss[0] < a.train_loss[0] - 0.1  # the same first batch, from where a ended
    with pytest.raises(EdgeAgentError, match="not with decoupled"):
        train_lora(examples(4), "tiny", tmp_path / "c", again, model_and_tokenizer=tiny,
                   decoupled=True, init_adapter=tmp_path / "a")  # fmt: skip
    with pytest.raises(EdgeAgentError, match="does not exist"):
        train_lora(examples(4), "tiny", tmp_path / "c", again, model_and_tokenizer=tiny,
                   init_adapter=tmp_path / "nothing")  # fmt: skip


def test_packed_rows_give_each_example_its_own_attention(tiny):
    """Packed rows, padded into a batch, compute exactly what the examples compute alone: no
    attention across examples or into the padding."""
    from edgeagent.train.batches import pack_rows, packed_collator, real_tokens

    model, tok = tiny
    model.eval()
    rows = encode(examples(5), tok, "assistant", 4096)
    lengths = sorted(len(r["input_ids"]) for r in rows)
    packed = pack_rows(rows, lengths[-1] + lengths[0])  # the longest shares its row; rows differ
    assert 2 <= len(packed) < len(rows)
    batch = packed_collator(tok.pad_token_id or 0)(packed)
    assert real_tokens(batch) == sum(lengths)
    batch.pop("labels")
    with torch.no_grad():
        together = model(**batch).logits
        for b, row in enumerate(packed):
            starts = [k for k, p in enumerate(row["position_ids"]) if p == 0]
            ends = starts[1:] + [len(row["input_ids"])]
            for a, z in zip(starts, ends, strict=True):
                alone = model(input_ids=torch.tensor([row["input_ids"][a:z]])).logits[0]
                assert torch.allclose(together[b, a:z], alone, atol=1e-4)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 300), min_size=1, max_size=40), st.integers(50, 400))
def test_pack_rows_keeps_every_token_and_the_budget(lengths, budget):
    from edgeagent.train.batches import pack_rows

    rows = [{"input_ids": [i] * n, "labels": [i] * n} for i, n in enumerate(lengths)]
    packed = pack_rows(rows, budget)
    # a row longer than the budget stands alone, whole; the others share rows within it
    assert all(len(p["input_ids"]) <= budget or len(set(p["input_ids"])) == 1 for p in packed)
    assert sorted(t for p in packed for t in p["input_ids"]) == sorted(
        t for r in rows for t in r["input_ids"]
    )
    assert len(packed) <= len(rows)
    for p in packed:  # each example's first label is ignored; positions restart at 0
        starts = [k for k, pos in enumerate(p["position_ids"]) if pos == 0]
        assert all(p["labels"][k] == IGNORE for k in starts)


def test_early_stopping_stops_when_eval_loss_stops_improving(tiny, tmp_path):
    # lr = 0: the eval loss never improves, so patience 2 stops after the third evaluation
    settings = LoraSettings(lr=0.0, max_steps=20, eval_every=1, early_stopping=2, batch_size=1,
                            eval_fraction=0.3, warmup_ratio=0)  # fmt: skip
    result = train_lora(examples(12), "tiny", tmp_path / "a", settings, model_and_tokenizer=tiny)
    assert result.steps == 3 and result.eval_loss is not None


def test_unknown_target_module_is_refused_before_training(tiny, tmp_path):
    from edgeagent.errors import EdgeAgentError

    settings = LoraSettings(target_modules=["q_proj", "qkv"])
    with pytest.raises(EdgeAgentError, match="'qkv' matches no layer") as info:
        train_lora(examples(4), "tiny", tmp_path / "a", settings, model_and_tokenizer=tiny)
    assert "down_proj" in info.value.hint
    assert not (tmp_path / "a").exists()


def test_a_cut_off_checkpoint_is_discarded_and_a_different_run_is_not_resumed(tmp_path):
    from edgeagent.errors import EdgeAgentError
    from edgeagent.train.trainer import COMMIT, _last_checkpoint, _prepare_work

    ckpts = tmp_path / "ckpts"
    for step, whole in ((2, True), (4, True), (6, False)):
        (ckpts / f"checkpoint-{step}").mkdir(parents=True)
        if whole:
            (ckpts / f"checkpoint-{step}" / COMMIT).write_text(str(step))
    assert _last_checkpoint(ckpts).name == "checkpoint-4"
    assert not (ckpts / "checkpoint-6").exists()
    work = tmp_path / ".out.partial"
    _prepare_work(work, {"data": "a"}, resume=True)
    _prepare_work(work, {"data": "a"}, resume=True)  # the same run: kept
    with pytest.raises(EdgeAgentError, match="different run"):
        _prepare_work(work, {"data": "b"}, resume=True)
    _prepare_work(work, {"data": "b"}, resume=False)  # --fresh


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal")
def test_qlora_without_cuda_is_refused_with_a_hint(tmp_path):
    from edgeagent.basemodel import load_base
    from edgeagent.errors import EdgeAgentError

    with pytest.raises(EdgeAgentError, match="needs a CUDA GPU") as info:
        load_base(default_model_path(), quantization="nf4")
    assert "quantization" in info.value.hint


@pytest.mark.skipif(not torch.cuda.is_available(), reason="QLoRA (bitsandbytes NF4) needs CUDA")
def test_qlora_nf4_trains_on_cuda(tmp_path):
    settings = LoraSettings(quantization="nf4", max_steps=4, eval_fraction=0)
    result = train_lora(examples(8), default_model_path(), tmp_path / "q", settings)
    assert result.steps == 4 and (tmp_path / "q" / "adapter_model.safetensors").exists()


def test_shipped_configs_load_and_validate():
    from edgeagent.train.config import CONFIG_DIR, load_config

    configs = sorted(CONFIG_DIR.glob("*.toml")) + sorted(CONFIG_DIR.glob("*.yaml"))
    assert {p.suffix for p in configs} == {".toml", ".yaml"}
    for path in configs:
        cfg = load_config(path)
        assert cfg.lora.rank > 0 and cfg.lora.mask in get_args(MaskKind)


def test_config_overrides_and_unknown_keys(tmp_path):
    from edgeagent.errors import EdgeAgentError
    from edgeagent.train.config import load_config

    cfg = load_config(None, ["lora.rank=32", 'lora.target_modules=["q_proj"]', "out=here"])
    assert cfg.lora.rank == 32 and cfg.lora.target_modules == ["q_proj"] and cfg.out == "here"
    assert cfg.init_adapter_path() is None
    assert load_config(None, ["init_adapter=default"]).init_adapter_path() == str(DEFAULT_ADAPTER)
    with pytest.raises(EdgeAgentError, match="unknown config key lora.rnak"):
        load_config(None, ["lora.rnak=4"])


def _cli_train(base, data, out, *extra, launcher=()):
    cmd = [*launcher] or [sys.executable, "-m"]
    return [*cmd, "edgeagent", "train", "--base", str(base), "--data", str(data), "--out", str(out),
            "--json", *extra]  # fmt: skip


@pytest.fixture()
def tiny_on_disk(tiny, tmp_path):
    from edgeagent.train.data import write_jsonl

    model, tok = tiny
    base = tmp_path / "tiny-base"
    model.save_pretrained(base)
    tok.save_pretrained(base)
    tools = [t for t in DEMO_TOOLS if t.name in ("set_timer", "convert_units")]
    write_jsonl(synthesize(tools, 12, seed=2), tmp_path / "train.jsonl")
    return base, tmp_path / "train.jsonl"


def test_a_killed_run_leaves_no_adapter_and_resumes_from_its_last_checkpoint(
    tiny_on_disk, tmp_path
):
    import signal
    import subprocess
    import time

    base, data = tiny_on_disk
    out = tmp_path / "adapter"
    cmd = _cli_train(base, data, out, "--set", "lora.max_steps=60", "--set", "lora.eval_every=3",
                     "--set", "lora.batch_size=1", "--set", "lora.eval_fraction=0")  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    committed = tmp_path / ".adapter.partial" / "checkpoints" / "adapter"
    deadline = time.monotonic() + 1800
    while not list(committed.glob("checkpoint-*/edgeagent-commit")):
        assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # as a power cut would
    proc.wait()
    assert not out.exists()  # nothing that looks like an adapter
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert again.returncode == 0, again.stderr[-2000:]
    summary = json.loads(again.stdout)
    assert summary["steps"] == 60 and summary["resumed_from"] >= 3
    assert (out / "adapter_model.safetensors").exists()
    assert not (tmp_path / ".adapter.partial").exists()


def test_train_cli_with_accelerate_launch_writes_adapter_log_plot_and_tensorboard(
    tiny_on_disk, tmp_path
):
    import shutil
    import subprocess
    import sys

    base, data = tiny_on_disk
    out = tmp_path / "adapter"
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    launcher = (accelerate, "launch", "--num_processes", "1", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no", "--cpu", "-m")  # fmt: skip
    cmd = _cli_train(base, data, out, "--set", "lora.max_steps=4", "--set",
                     "lora.eval_fraction=0.2", launcher=launcher)  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["steps"] == 4 and summary["examples"] == 12 and summary["eval_loss"] is not None
    assert (out / "adapter_model.safetensors").exists() and (out / "loss.png").stat().st_size > 5000
    log = (out / "train_log.csv").read_text().splitlines()
    assert log[0] == "step,loss,eval_loss,learning_rate" and len(log) >= 5
    assert list((out / "tensorboard").rglob("events.out.tfevents.*"))


def test_decoupled_training_and_two_phase_inference(tiny, tmp_path):
    """The adapters and the two-phase path; what they are worth is measured on the real model
    (benchmarks/bench_train_quality.py), not on a random tiny one."""
    from edgeagent.train.dualtune import DecoupledCall, load_decoupled, two_phase_call
    from edgeagent.wireformat import CALL_OPEN

    data = examples(16)
    settings = LoraSettings(rank=8, lr=2e-2, max_steps=4, eval_fraction=0)
    result = train_lora(data, "tiny", tmp_path / "dual", settings, model_and_tokenizer=tiny,
                        decoupled=True)  # fmt: skip
    index = json.loads((tmp_path / "dual" / "decoupled.json").read_text())
    assert index == {"selector": "selector", "arguments": {
        "convert_units": "arguments/convert_units", "set_timer": "arguments/set_timer"}}  # fmt: skip
    assert sorted(result.adapters) == ["arguments/convert_units", "arguments/set_timer", "selector"]
    assert all(r["steps"] == 4 for r in result.adapters.values())
    card = json.loads((tmp_path / "dual" / "run_card.json").read_text())
    assert card["decoupled"] and set(card["metrics"]) == set(result.adapters)
    model, tok = tiny
    dual = load_decoupled(model, tmp_path / "dual")
    assert set(dual.peft_config) == {"selector", "arguments_set_timer", "arguments_convert_units"}
    ex = next(e for e in data if e.messages[1].calls)
    answered = two_phase_call(dual, tok, ex.messages[:1], ex.tools, max_new_tokens=8)
    # four steps do not teach a random model to call: the selector answers, phase 2 never runs
    assert answered == DecoupledCall(None, None, None)

    class Calling:
        """The trained model, but its first decision is a call: phase 2 must then run the
        chosen tool's argument adapter."""

        def __init__(self, model):
            self.model, self.adapters, self.decided = model, [], False

        def __getattr__(self, name):
            return getattr(self.model, name)

        def set_adapter(self, name):
            self.adapters.append(name)
            self.model.set_adapter(name)

        def __call__(self, ids):
            out = self.model(ids)
            if not self.decided:
                self.decided = True
                out.logits[0, -1, tok(CALL_OPEN, add_special_tokens=False)["input_ids"][0]] = 1e9
            return out

    calling = Calling(dual)
    call = two_phase_call(calling, tok, ex.messages[:1], ex.tools, max_new_tokens=8)
    assert call.name in ("set_timer", "convert_units")
    assert calling.adapters == ["selector", f"arguments_{call.name}"]
    # a random model's 8 tokens are rarely a valid object: the reason is said either way
    assert call.valid or call.error.startswith(("arguments are not", "1 validation error"))


def test_a_base_that_cannot_load_is_refused_before_training(tmp_path):
    from edgeagent.basemodel import load_base
    from edgeagent.errors import EdgeAgentError

    with pytest.raises(EdgeAgentError, match="does not exist"):
        load_base(tmp_path / "missing.gguf")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 10)  # a header cut short
    with pytest.raises(EdgeAgentError, match="bad.gguf"):
        load_base(bad)
    (tmp_path / "folder").mkdir()
    with pytest.raises(EdgeAgentError, match="cannot load base model"):
        load_base(tmp_path / "folder")  # no config.json


def test_the_loss_at_learned_positions_is_the_models_own_loss(tiny):
    """The head applied only where labels are learned gives the same loss and the same LoRA
    gradients as the model's full forward, on packed rows with padding."""
    from peft import LoraConfig, get_peft_model

    from edgeagent.train.batches import pack_rows, packed_collator
    from edgeagent.train.trainer import head_only_logits, learned_positions_loss

    model, tok = tiny
    rows = encode(examples(5), tok, "assistant", 4096)
    batch = packed_collator(tok.pad_token_id or 0)(pack_rows(rows, 700))
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                  lora_dropout=0.0))  # fmt: skip
    causal = peft_model.get_base_model()
    assert head_only_logits(causal, rows[0]["input_ids"])
    grads = []
    for loss_of in (
        lambda: peft_model(**batch).loss,
        lambda: learned_positions_loss(causal, batch),
    ):
        peft_model.zero_grad()
        loss = loss_of()
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in peft_model.parameters()
                                      if p.requires_grad]))  # fmt: skip
    (theirs, g1), (ours, g2) = grads
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(g1, g2, strict=True))
    n = int((batch["labels"][:, 1:] != IGNORE).sum())  # divided by the step's learned tokens
    assert torch.allclose(learned_positions_loss(causal, batch, n * 2), ours / 2, atol=1e-6)


def test_logits_changed_after_the_head_keep_the_full_loss(tokenizer):
    """A model that soft-caps its logits (Gemma 2) is not one where the head alone gives them."""
    from edgeagent.train.trainer import head_only_logits

    config = transformers.Gemma2Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, final_logit_softcapping=0.5,
    )  # fmt: skip
    torch.manual_seed(0)
    assert not head_only_logits(transformers.Gemma2ForCausalLM(config), [1, 2, 3, 4])


def test_bf16_is_refused_where_the_machine_cannot_compute_it(tiny, tmp_path, monkeypatch):
    from edgeagent.errors import EdgeAgentError
    from edgeagent.train import trainer

    monkeypatch.setattr(trainer, "cpu_has_bf16", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert trainer.use_bf16("auto") is False and trainer.use_bf16("fp32") is False
    settings = LoraSettings(precision="bf16", max_steps=1, batch_size=1, eval_fraction=0)
    with pytest.raises(EdgeAgentError, match="no native bf16"):
        train_lora(examples(2), "tiny", tmp_path / "a", settings, model_and_tokenizer=tiny)
    monkeypatch.setattr(trainer, "cpu_has_bf16", lambda: True)
    assert trainer.use_bf16("auto") is True and trainer.use_bf16("fp32") is False
