"""Fuzzing the parsers, the grammar builder and the importers: whatever comes in, the answer is
a result or our own clear error, never a stray exception. The number of inputs per property is
the hypothesis profile's: `ci` (the default, 300) or `fuzz` (EDGEAGENT_FUZZ=1, 5,000); the
counts of a fuzz run are in docs/security.md."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeagent.errors import EdgeAgentError, ModelFileError
from edgeagent.models import inspect_gguf
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
def gguf_head(tmp_path_factory) -> bytes:
    """The first 64 KiB of the embedded model: its whole header and a little tensor data."""
    from edgeagent.models import default_model_path

    with open(default_model_path(), "rb") as fh:
        return fh.read(65536)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.data())
def test_a_damaged_gguf_header_is_refused_before_llama_cpp(gguf_head, tmp_path, data):
    """Overwrite a few bytes of a real header (counts, lengths, types are where parsers die)."""
    blob = bytearray(gguf_head)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, 4096))
        value = data.draw(st.sampled_from([0, 1, 0xFF, 0x7FFFFFFF, 2**63 - 1, 2**64 - 1]))
        blob[at : at + 8] = struct.pack("<Q", value)
    path = tmp_path / "damaged.gguf"
    path.write_bytes(bytes(blob))
    with pytest.raises(ModelFileError):
        inspect_gguf(path)  # truncated (64 KiB of a 98 MB file) at best, so never accepted
