"""Device profiles and the memory planner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeagent.models import default_model_path
from edgeagent.targets import TargetError, load_target, load_targets, target_names
from edgeagent.targets.planner import MIB, PlanError, estimate, model_shape, plan
from tests.test_cli import cli

SHIPPED = {
    "rpi5", "rpi4", "jetson-orin-nano", "android-arm64", "iphone", "apple-silicon",
    "x86-64-laptop", "x86-64-server",
}  # fmt: skip

PROFILE = """
description = "test board"
arch = "aarch64"
cpu = "Cortex-A53"
cores = 4
accelerator = "none"
format = "gguf"
quantizations = ["q4_k_m", "q4_0"]
onnx_quantization = "int8"
n_ctx = 4096
min_ctx = 512
threads = 4
os_reserve_mib = {reserve}
llama_cpp_cmake_args = ""

[variants]
small = {ram}
"""


def add_target(name: str, ram: int = 1024, reserve: int = 256, text: str | None = None) -> Path:
    from edgeagent.paths import home

    folder = home() / "targets"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text if text is not None else PROFILE.format(ram=ram, reserve=reserve))
    return path


def test_every_shipped_target_loads_with_its_fields():
    targets = {t.name: t for t in load_targets()}
    assert set(targets) >= SHIPPED
    rpi5 = targets["rpi5"]
    assert (rpi5.arch, rpi5.cpu, rpi5.cores) == ("aarch64", "Cortex-A76", 4)
    assert rpi5.variants == {"4gb": 4096, "8gb": 8192}
    assert rpi5.ram_mib == 4096  # the plain name is the smallest variant: fits every board
    assert load_target("rpi5:8gb").ram_mib == 8192
    assert targets["android-arm64"].format == "onnx"
    assert targets["jetson-orin-nano"].accelerator == "cuda"


def test_an_unknown_target_lists_the_known_ones():
    with pytest.raises(TargetError) as err:
        load_target("rpi9")
    assert (
        "rpi9" in str(err.value) and "rpi5" in err.value.hint and "x86-64-laptop" in err.value.hint
    )
    with pytest.raises(TargetError, match="no variant '3gb'"):
        load_target("rpi5:3gb")


def test_adding_a_target_is_adding_a_file():
    add_target("myboard")
    assert "myboard" in target_names()
    assert load_target("myboard").cpu == "Cortex-A53"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace("cores = 4\n", ""), "'cores' is missing"),
        (lambda t: t.replace("cores = 4", 'cores = "four"'), "'cores' must be a int"),
        (lambda t: t.replace('"q4_0"]', '"q3_xx"]'), "names 'q3_xx'"),
        (lambda t: t.replace('format = "gguf"', 'format = "tflite"'), "'format' must be one of"),
        (lambda t: 'colour = "red"\n' + t, "'colour' is not a target field"),
        (lambda t: t.replace("small = 1024", "small = 200"), "os_reserve_mib"),
        (lambda t: t.replace("[variants]", "[variants"), "cannot read"),
    ],
)
def test_a_bad_target_file_names_its_field(change, message):
    path = add_target("broken", text=change(PROFILE.format(ram=1024, reserve=256)))
    with pytest.raises(TargetError, match=message) as err:
        load_target("broken")
    assert str(path) in str(err.value)


def test_targets_and_plan_commands_json():
    listed = json.loads(cli("targets", "--json").stdout)
    assert {t["name"] for t in listed} >= SHIPPED
    result = json.loads(cli("plan", "--target", "rpi5", "--json").stdout)
    assert result["target"] == "rpi5:4gb"
    assert result["choice"]["quantization"] == "q4_1"  # the embedded file's own, kept
    assert result["choice"]["n_ctx"] == 4096
    assert result["choice"]["total"] <= result["budget_bytes"]


def test_the_planner_keeps_a_quantized_model_and_chooses_for_a_float_one():
    shape = model_shape(default_model_path())
    target = load_target("rpi5")
    assert [e.quantization for e, _ in plan(shape, target).rows] == ["q4_1"] * 3
    as_f16 = type(shape)(**{**shape.__dict__, "quantization": "f16"})
    rows = plan(as_f16, target).rows
    assert {e.quantization for e, _ in rows} == {"q4_k_m", "q4_0", "iq4_nl"}
    assert plan(as_f16, target).choice.quantization == "q4_k_m"  # the target's first choice
    assert not plan(as_f16, target).choice.exact_weights


def test_the_planner_shortens_the_context_to_fit_and_refuses_with_the_numbers():
    shape = model_shape(default_model_path())
    need_1k = estimate(shape, "gguf", "q4_1", 1024).total
    need_4k = estimate(shape, "gguf", "q4_1", 4096).total
    assert need_1k < need_4k
    add_target("tight", ram=(need_1k + need_4k) // 2 // MIB + 100, reserve=100)
    chosen = plan(shape, load_target("tight")).choice
    assert chosen is not None and chosen.n_ctx in (1024, 2048)
    add_target("tiny", ram=300, reserve=200)
    with pytest.raises(PlanError) as err:
        plan(shape, load_target("tiny"))
    text = str(err.value)
    assert "does not fit tiny:small" in text and "100M" in text and "q4_1" in text
    proc = cli("plan", "--target", "tiny", check=False)
    assert proc.returncode == 2 and "does not fit" in proc.stderr


def test_estimated_weights_are_near_the_real_file():
    """Weights the planner estimates for a quantization against the embedded file's own: the
    same model at q4_1 (5 bits per weight) estimated from its parameters."""
    shape = model_shape(default_model_path())
    as_f16 = type(shape)(**{**shape.__dict__, "quantization": "f16"})
    guess = estimate(as_f16, "gguf", "q4_1", 2048).weights
    assert abs(guess / shape.weights_bytes - 1) < 0.02  # in-sample: fitted on this model


def test_the_planner_counts_the_contexts_the_backend_keeps_for_adapter_settings():
    import inspect

    from edgeagent.backends.llamacpp import LlamaCppBackend
    from edgeagent.targets.planner import ADAPTER_CONTEXTS

    default = inspect.signature(LlamaCppBackend).parameters["max_contexts"].default
    assert default == ADAPTER_CONTEXTS
    shape = model_shape(default_model_path())
    one = estimate(shape, "gguf", "q4_1", 2048)
    two = estimate(shape, "gguf", "q4_1", 2048, contexts=2)
    assert (two.kv_cache, two.compute) == (2 * one.kv_cache, 2 * one.compute)
    assert two.weights == one.weights  # the contexts share the model's weights
