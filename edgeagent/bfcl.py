"""BFCL (Berkeley Function Calling Leaderboard) cases, read from the `bfcl-eval` wheel.

`bfcl-eval` pins numpy and pulls a dozen heavy packages, so it is never installed: its wheel is
fetched alone (`pip download --no-deps`) into edgeagent's cache and its JSON-lines files are read
straight from the zip. BFCL's schemas use a dialect (`"type": "dict"`, `float`, `tuple`, `any`)
that `to_json_schema` translates for the grammar and the validator.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeagent.errors import EdgeAgentError
from edgeagent.paths import home
from edgeagent.tools import Tool

BFCL_PACKAGE = "bfcl-eval"
BFCL_VERSION = "2026.3.23"

# BFCL type names -> JSON Schema type names; None drops the type (anything goes).
_TYPES: dict[str, str | None] = {
    "dict": "object",
    "float": "number",
    "double": "number",
    "long": "integer",
    "tuple": "array",
    "char": "string",
    "any": None,
    "": None,
}
_JSON_TYPES = {"object", "number", "integer", "string", "boolean", "array", "null"}


@dataclass(frozen=True)
class Case:
    id: str
    messages: list[dict[str, str]]  # the first turn's messages
    functions: list[dict[str, Any]]
    answer: list[dict[str, dict[str, list[Any]]]] | None  # BFCL "ground_truth", if any


def wheel_path(cache: Path | None = None) -> Path:
    """The bfcl-eval wheel in the cache, fetched from the package index on first use."""
    folder = cache or home() / "cache" / "bfcl"
    found = sorted(folder.glob(f"bfcl_eval-{BFCL_VERSION}-*.whl"))
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(folder),
           f"{BFCL_PACKAGE}=={BFCL_VERSION}"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(folder.glob(f"bfcl_eval-{BFCL_VERSION}-*.whl"))
    if proc.returncode != 0 or not found:
        raise EdgeAgentError(
            f"could not fetch {BFCL_PACKAGE}=={BFCL_VERSION}: {proc.stderr.strip()[-300:]}",
            hint=f"pip download --no-deps {BFCL_PACKAGE}=={BFCL_VERSION} -d {folder}",
        )
    return found[0]


def load_cases(category: str, limit: int | None = None, cache: Path | None = None) -> list[Case]:
    """Cases of one BFCL category (e.g. simple_python, parallel, multiple, irrelevance)."""
    with zipfile.ZipFile(wheel_path(cache)) as whl:
        names = set(whl.namelist())
        data_name = f"bfcl_eval/data/BFCL_v4_{category}.json"
        if data_name not in names:
            known = sorted(n.split("BFCL_v4_")[1][:-5] for n in names if "/data/BFCL_v4_" in n)
            raise EdgeAgentError(f"no BFCL category {category!r}; known: {', '.join(known)}")
        questions = _lines(whl.read(data_name))
        answer_name = f"bfcl_eval/data/possible_answer/BFCL_v4_{category}.json"
        answers = (
            {a["id"]: a["ground_truth"] for a in _lines(whl.read(answer_name))}
            if answer_name in names
            else {}
        )
    cases = [
        Case(q["id"], q["question"][0], q["function"], answers.get(q["id"]))
        for q in questions[:limit]
    ]
    return cases


def _lines(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]


def to_json_schema(schema: Any) -> Any:
    """Translate BFCL's schema dialect to JSON Schema (recursively)."""
    if isinstance(schema, list):
        return [to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: to_json_schema(v) for k, v in schema.items() if k not in ("type", "properties")}
    kind = schema.get("type")
    if isinstance(kind, str) and _TYPES.get(kind, kind) in _JSON_TYPES:
        out["type"] = _TYPES.get(kind, kind)
    if isinstance(schema.get("properties"), dict):  # a mapping of names, not a schema
        out["properties"] = {k: to_json_schema(v) for k, v in schema["properties"].items()}
    if out.get("type") == "object" and "properties" in out:
        out.setdefault("additionalProperties", False)
        # BFCL lists optional parameters' defaults; keep `required` to the listed names that exist.
        out["required"] = [r for r in out.get("required", []) if r in out["properties"]]
    return out


def case_tools(case: Case) -> list[Tool]:
    """The case's functions as schema-only tools."""
    return function_tools(case.functions)


def function_tools(functions: list[dict[str, Any]]) -> list[Tool]:
    """BFCL function descriptions as schema-only tools."""
    return [
        Tool.from_schema(f["name"], f.get("description", ""), to_json_schema(f["parameters"]))
        for f in functions
    ]
