"""Our AST checker against BFCL's own `ast_checker`, case by case.

edgeagent scores BFCL with `edgeagent.evaluation.checker`, a reimplementation that needs nothing
but the cases. Its figures are published as BFCL's, so it must agree with BFCL's code: here the
same predictions (the ground truth, and wrong ones made from it) go through both, loaded from the
bfcl-eval wheel the evaluator reads its data from. BFCL's checker imports its model-handler
table (every vendor's SDK) for one lookup, whether to write a dotted name with underscores; a
stub with `underscore_to_dot = False` stands in for it, which is what the table says for a model
that writes the names as given, as ours does.
"""

from __future__ import annotations

import copy
import importlib
import sys
import types
from typing import Any

import pytest

from edgeagent.evaluation.checker import check_case
from edgeagent.evaluation.runner import bfcl_cases
from tests.test_eval import concrete

CATEGORIES = ["simple_python", "multiple", "parallel", "parallel_multiple", "live_simple"]
CASES_PER_CATEGORY = 200


@pytest.fixture(scope="module")
def bfcl_ast_checker(bfcl_wheel):
    """BFCL's `ast_checker` function and its Language enum, imported from the wheel (a zip on
    sys.path), with the model table stubbed; the modules are removed again afterwards."""
    stub = types.ModuleType("bfcl_eval.constants.model_config")
    stub.MODEL_CONFIG_MAPPING = _AnyModel()  # type: ignore[attr-defined]
    before = set(sys.modules)
    sys.path.insert(0, str(bfcl_wheel))
    sys.modules["bfcl_eval.constants.model_config"] = stub
    try:
        module = importlib.import_module("bfcl_eval.eval_checker.ast_eval.ast_checker")
        language = importlib.import_module("bfcl_eval.constants.enums").Language.PYTHON

        def valid(functions, output, expected, category):
            return module.ast_checker(functions, output, expected, language, category, "ours")

        yield lambda *args: valid(*args)["valid"]
    finally:
        sys.path.remove(str(bfcl_wheel))
        for name in set(sys.modules) - before:
            del sys.modules[name]


class _AnyModel(dict):
    def __getitem__(self, _name: str) -> Any:
        return types.SimpleNamespace(underscore_to_dot=False)


def predictions(expected: list[dict[str, dict[str, list[Any]]]]) -> list[tuple[str, list]]:
    """(what was done, calls) pairs: the ground truth's first allowed answer, and mutations of
    it that are wrong in the ways models are wrong (and one that is right: reordered)."""
    right = [(name, concrete(allowed)) for want in expected for name, allowed in want.items()]
    out: list[tuple[str, list]] = [("right", right)]
    if len(right) > 1:
        out.append(("reordered", list(reversed(right))))
        out.append(("one call missing", right[:-1]))
    out.append(("a call twice", right + right[:1]))
    out.append(("wrong name", [(right[0][0] + "_x", right[0][1])] + right[1:]))
    name, args = right[0]
    out.append(("extra parameter", [(name, {**args, "zz_extra": 1})] + right[1:]))
    required = list(args)
    if required:
        out.append(("parameter dropped", [(name, dict(list(args.items())[1:]))] + right[1:]))
    for key, value in args.items():
        for what, wrong in _wrong_values(value):
            out.append((f"{key}: {what}", [(name, {**args, key: wrong})] + right[1:]))
    out.append(("no call", []))
    return out


def _wrong_values(value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, bool):
        return [("flipped", not value), ("as string", str(value).lower())]
    if isinstance(value, int):
        return [("other value", value + 7), ("as float", float(value)), ("as string", str(value))]
    if isinstance(value, float):
        return [("other value", value + 7.5), ("as int", int(value)), ("as string", str(value))]
    if isinstance(value, str):
        return [
            ("other text", value + " extra words"),
            ("case and punctuation", value.upper() + "."),
        ]
    if isinstance(value, list):
        wrong = [("one element fewer", value[:-1]), ("as string", str(value))]
        if value and all(isinstance(v, float) for v in value):
            wrong.append(("ints for floats", [int(v) for v in value]))
        if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            wrong.append(("floats for ints", [float(v) for v in value]))
        return wrong
    if isinstance(value, dict) and value:
        first = next(iter(value))
        return [("key dropped", {k: v for k, v in value.items() if k != first})]
    return []


@pytest.mark.parametrize("category", CATEGORIES)
def test_our_checker_agrees_with_bfcls_on_right_and_wrong_predictions(
    bfcl_cache, bfcl_ast_checker, category
):
    cases = bfcl_cases([category], limit=CASES_PER_CATEGORY)
    compared, disagreements = 0, []
    for case in cases:
        for what, calls in predictions(case.expected):
            ours = check_case(case.functions, calls, case.expected).ok
            output = [{name: copy.deepcopy(args)} for name, args in calls]
            theirs = bfcl_ast_checker(
                case.functions, output, copy.deepcopy(case.expected), category
            )
            compared += 1
            if ours != theirs:
                disagreements.append((case.id, what, "ours" if ours else "BFCL's", "passes"))
    assert compared > 8 * len(cases)
    assert disagreements == [], disagreements[:10]
