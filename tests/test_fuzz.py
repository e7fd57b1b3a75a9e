"""Fuzzing the parsers, the grammar builder and the importers: whatever comes in, the answer is
a result or our own clear error, never a stray exception. The number of inputs per property is
the hypothesis profile's: `ci` (the default, 300) or `fuzz` (EDGEAGENT_FUZZ=1, 5,000); the
counts of a fuzz run are in docs/security.md."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeagent.errors import EdgeAgentError, ModelFileError
from edgeagent.models import inspect_gguf, read_gguf_header
from edgeagent.tools import Tool
from edgeagent.train.data import _Invalid, parse_example, read_jsonl
from edgeagent.train.importers import from_xlam
from edgeagent.wireformat import CALL_OPEN, build_grammar, parse_reply

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip

# Schemas the converter must handle: valid JSON Schema built from the constructs tools use
# (bounds, enums, patterns, formats, nesting, unions), and, one time in four, any dictionary of
# JSON Schema's words (mostly invalid: refused before the converter).
SCALAR = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=6)
BOUND = st.integers(-(10**6), 10**6)
LEAF = st.one_of(
    st.fixed_dictionaries({"type": st.just("string")}, optional={
        "minLength": st.integers(0, 5), "maxLength": st.integers(0, 300),
        "pattern": st.sampled_from(["^[a-z]+$", r"^\d{3}-\d{4}$", "^(a|b)*$", "^.$",
                                    r"^\w+\s?[\d_]*$", r"^\D\S\W$", r"^[^\s]{2}\.txt$"]),
        "format": st.sampled_from(["date", "time", "date-time", "email", "uuid", "uri"])}),
    st.fixed_dictionaries({"type": st.sampled_from(["integer", "number"])}, optional={
        "minimum": BOUND, "maximum": BOUND, "exclusiveMinimum": BOUND,
        "exclusiveMaximum": BOUND}),
    st.fixed_dictionaries({"type": st.sampled_from(["boolean", "null"])}),
    st.fixed_dictionaries({"enum": st.lists(SCALAR, min_size=1, max_size=4)}),
    st.fixed_dictionaries({"const": SCALAR}),
)  # fmt: skip
NAMES = st.sampled_from(["a", "b", "city", "n", "when", "tags"])


def _compound(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.fixed_dictionaries({"type": st.just("array"), "items": inner}, optional={
            "minItems": st.integers(0, 3), "maxItems": st.integers(0, 5)}),
        _object(inner),
        st.fixed_dictionaries({"anyOf": st.lists(inner, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"oneOf": st.lists(inner, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"allOf": st.lists(inner, min_size=1, max_size=2)}),
    )  # fmt: skip


def _object(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.dictionaries(NAMES, inner, max_size=4).flatmap(
        lambda props: st.fixed_dictionaries(
            {"type": st.just("object"), "properties": st.just(props)},
            optional={"required": st.lists(st.sampled_from(sorted(props) or ["a"]), unique=True),
                      "additionalProperties": st.booleans()},
        )
    )  # fmt: skip


WORDS = ["type", "properties", "items", "enum", "const", "anyOf", "oneOf", "allOf", "not",
         "required", "minimum", "maximum", "minLength", "maxLength", "pattern", "format",
         "additionalProperties", "$ref", "$defs", "prefixItems", "patternProperties", "if"]  # fmt: skip
ANY_WORDS = st.recursive(
    st.fixed_dictionaries({"type": st.sampled_from(["string", "object", "array", "integer"])}),
    lambda inner: st.dictionaries(st.sampled_from(WORDS), inner | JSON | st.lists(inner, max_size=3),
                                  max_size=4),
    max_leaves=10,
)  # fmt: skip
VALID = st.recursive(LEAF, _compound, max_leaves=10)
SCHEMA = st.one_of(_object(VALID), _object(VALID), _object(VALID), ANY_WORDS)


@given(JSON)
def test_an_example_of_any_shape_parses_or_names_its_field(data):
    try:
        parse_example(data)
    except _Invalid as exc:
        assert exc.field and exc.reason


@given(st.dictionaries(st.sampled_from(["query", "tools", "answers", "id"]), JSON | st.text()))
def test_an_xlam_record_of_any_shape_imports_or_names_its_field(record):
    try:
        from_xlam(record)
    except _Invalid as exc:
        assert exc.field and exc.reason


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(JSON.map(json.dumps) | st.binary(max_size=40).map(repr), max_size=5))
def test_an_xlam_file_of_any_lines_is_read_with_a_report(tmp_path, lines):
    path = tmp_path / "xlam.jsonl"
    path.write_text("\n".join(lines))
    examples, report = read_jsonl(path, parse=from_xlam)
    assert report.valid == len(examples) and report.valid + len(report.problems) <= len(lines)


@given(st.text(max_size=200), st.booleans())
def test_any_reply_text_parses(text, with_tag):
    reply = parse_reply(CALL_OPEN + text if with_tag else text)
    assert isinstance(reply.text, str) and all(isinstance(c.arguments, dict) for c in reply.calls)


@settings(deadline=None)
@given(SCHEMA)
def test_a_schema_of_any_shape_gives_a_grammar_llama_cpp_accepts_or_a_clear_error(
    llama_backend, schema
):
    try:
        tool = Tool.from_schema("t", "", schema)
        grammar = build_grammar([tool])
    except EdgeAgentError:
        return
    llama_backend.check_grammar(grammar)  # raises GrammarError if llama.cpp refuses it


@pytest.fixture(scope="module")
def small_gguf(tmp_path_factory) -> tuple[bytes, int]:
    """A complete GGUF file written with gguf-py (a model's keys, a short vocabulary, three
    tensors, one quantized) and the length of its header: small enough that a damaged copy can
    pass the early checks and reach the tensor table and the size check."""
    import gguf
    import numpy as np

    path = tmp_path_factory.mktemp("gguf") / "small.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("small")
    writer.add_context_length(256)
    writer.add_embedding_length(32)
    writer.add_block_count(1)
    writer.add_head_count(4)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([f"t{i}" for i in range(40)])
    writer.add_tensor("token_embd.weight", np.ones((40, 32), dtype=np.float32))
    writer.add_tensor("output_norm.weight", np.ones(32, dtype=np.float16))
    q8 = gguf.quantize(np.ones((4, 32), dtype=np.float32), gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("blk.0.attn_q.weight", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    blob = path.read_bytes()
    header_end = read_gguf_header(path).data_offset
    return blob, header_end


def test_the_undamaged_small_gguf_is_accepted(small_gguf, tmp_path):
    """The fuzz below damages this file: it must be accepted whole, or the fuzz would test
    only the first refusal."""
    blob, header_end = small_gguf
    path = tmp_path / "whole.gguf"
    path.write_bytes(blob)
    info = inspect_gguf(path)
    assert info.architecture == "llama" and info.n_params == 40 * 32 + 32 + 4 * 32
    assert header_end < len(blob)
    path.write_bytes(blob[: read_gguf_header(path).data_end - 1])  # a byte of the data missing
    with pytest.raises(ModelFileError, match="truncated"):
        inspect_gguf(path)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.data())
def test_a_damaged_gguf_header_is_refused_or_read_consistently(small_gguf, tmp_path, data):
    """Overwrite a few bytes of a complete file's header (counts, lengths, types, shapes and
    offsets are where parsers die). Damage can leave a valid file (a changed letter of a name):
    then it is accepted and every tensor lies inside the file; otherwise it is refused with
    ModelFileError, never another exception."""
    blob, header_end = small_gguf
    damaged = bytearray(blob)
    table = blob.index(b"token_embd.weight") - 8  # the tensor table: names, shapes, offsets
    where = st.one_of(st.integers(0, header_end - 1), st.integers(table, header_end - 1))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(where)
        value = data.draw(st.sampled_from([0, 1, 3, 0xFF, 0x7FFFFFFF, 2**63 - 1, 2**64 - 1]))
        width = data.draw(st.sampled_from([1, 4, 8]))
        damaged[at : at + width] = (value % 256**width).to_bytes(width, "little")
    # a name per content: inspect_gguf caches by path, size and mtime, and the examples of one
    # run come faster than the file system's clock ticks
    path = tmp_path / f"damaged-{hashlib.sha1(damaged).hexdigest()}.gguf"
    path.write_bytes(bytes(damaged[: len(blob)]))
    try:
        info = inspect_gguf(path)
    except ModelFileError:
        return
    header = read_gguf_header(path)
    assert header.data_end <= len(blob) and info.n_params > 0
    assert all(
        t.offset % int(header.fields.get("general.alignment", 32)) == 0 for t in header.tensors
    )
