"""BFCL's AST check of function calls, on the calls our parser returns.

The rules follow BFCL's own checker (bfcl_eval/eval_checker/ast_eval/ast_checker.py, Python
language), so figures compare with the leaderboard's; tests/test_checker_vs_bfcl.py runs both on
the same right and wrong predictions and requires them to agree case by case:
- the function name matches;
- every parameter the function requires is present; none it does not define, and none the
  ground truth does not list;
- each value has the parameter's type (an int is accepted for a float, as Python converts it, at
  the top level only: a list's items must have their type exactly; a value of the type the ground
  truth uses for a variable is accepted too) and is among the allowed
  values. Strings compare after removing spaces and `,./-_*^` and lower-casing ("April 1, 2024" =
  "april 1 2024"); lists compare element by element with the same rule; dicts key by key;
- a parameter the ground truth lists but the call omits is allowed only when "" is among its
  allowed values (BFCL's mark for "optional"; for a list, BFCL also accepts [] there);
- parallel calls match in any order, one call per expected call;
- an irrelevance case passes when the model makes no call.

A result names the first failure the way BFCL's error types do (`wrong_func_name`,
`missing_required`, `unexpected_param`, `type_error`, `value_error`, `missing_optional`,
`wrong_count`, `irrelevance`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

# BFCL's python type names -> Python types ("any" is checked as a string, as BFCL does)
_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "float": float,
    "number": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "object": dict,
    "any": str,
}
_PUNCTUATION = re.compile(r"[ ,./\-_*^]")

Call = tuple[str, dict[str, Any]]
Expected = dict[str, dict[str, list[Any]]]  # {function name: {param: allowed values}}


@dataclass(frozen=True)
class Check:
    ok: bool
    error_type: str = ""
    error: str = ""


PASS = Check(True)


def standardize(text: str) -> str:
    return _PUNCTUATION.sub("", text).lower().replace("'", '"')


def check_case(
    functions: list[dict[str, Any]], calls: list[Call], expected: list[Expected] | None
) -> Check:
    """A whole case: `expected` None or empty means irrelevance (no call is right)."""
    if not expected:
        if calls:
            return Check(False, "irrelevance", f"called {calls[0][0]} where no function fits")
        return PASS
    if len(calls) != len(expected):
        return Check(False, "wrong_count", f"{len(calls)} call(s), expected {len(expected)}")
    used: set[int] = set()
    for want in expected:
        name = next(iter(want))
        spec = next((f for f in functions if f["name"] == name), None)
        if spec is None:
            return Check(False, "bad_case", f"the answer names {name}, which no function defines")
        first_error: Check | None = None
        for i, call in enumerate(calls):
            if i in used:
                continue
            result = check_call(spec, call, want[name])
            if result.ok:
                used.add(i)
                break
            first_error = first_error or result
        else:
            return first_error or Check(False, "wrong_count", f"no call left for {name}")
    return PASS


def check_call(spec: dict[str, Any], call: Call, allowed: dict[str, list[Any]]) -> Check:
    """One call against one function's description and the ground truth's allowed values."""
    name, args = call
    if name != spec["name"]:
        return Check(False, "wrong_func_name", f"called {name}, expected {spec['name']}")
    params = spec.get("parameters", {})
    properties = params.get("properties", {})
    for required in params.get("required", []):
        if required not in args:
            return Check(False, "missing_required", f"{name}: {required!r} is missing")
    for param, value in args.items():
        if param not in properties or param not in allowed:
            return Check(False, "unexpected_param", f"{name}: unexpected parameter {param!r}")
        result = _check_value(param, value, properties[param], allowed[param])
        if not result.ok:
            return result
    for param, values in allowed.items():
        if param not in args and "" not in values:
            return Check(False, "missing_optional", f"{name}: {param!r} omitted, not optional")
    return PASS


def _check_value(param: str, value: Any, schema: dict[str, Any], allowed: list[Any]) -> Check:
    kind = str(schema.get("type", "any"))
    want = _TYPES.get(kind, str)
    if want is float and type(value) is int:
        value = float(value)
    # BFCL marks a value the model may pass as a variable by giving it as a string: a value of
    # the ground truth's type then counts as that variable, and is compared as it is
    variable_type = next((type(v) for v in allowed if v != ""), None)
    is_variable = variable_type is not None and variable_type is not want
    if type(value) is not want:
        if is_variable and type(value) is variable_type:
            want = variable_type
        else:
            got = type(value).__name__
            return Check(False, "type_error", f"{param!r}: expected {kind}, got {got} {value!r}")
    elif want is list:
        item_kind = _TYPES.get(str(schema.get("items", {}).get("type", "any")), str)
        if not _items_typed(cast(list[Any], value), item_kind, allowed):
            return Check(False, "type_error", f"{param!r}: {value!r} has items not {item_kind}")
    if not is_variable:
        if want is dict:
            return _check_dict(param, value, allowed)
        if want is list and any(isinstance(v, dict) for v in value):
            return _check_list_of_dicts(param, value, allowed)
    if want is list:  # BFCL compares lists with the optional mark "" read as []
        allowed = [[] if a == "" else a for a in allowed]
    if _among(value, allowed):
        return PASS
    return Check(False, "value_error", f"{param!r}: {value!r} is not one of {allowed!r}")


def _items_typed(value: list[Any], kind: type, allowed: list[Any]) -> bool:
    """BFCL's one-level check of a list's items: every item has the items' type exactly (no
    int for a float, unlike the top level) or the type the ground truth's list uses; an allowed
    value that is not a list (the optional mark "", a variable) lets any items pass."""
    for option in allowed:
        if not isinstance(option, list):
            return True
        variable = next((type(v) for v in option if v != ""), None)
        if all(type(v) is kind or type(v) is variable for v in value):
            return True
    return False


def _norm(value: Any) -> Any:
    if isinstance(value, str):
        return standardize(value)
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    return value


def _among(value: Any, allowed: list[Any]) -> bool:
    target = _norm(value)
    return any(_norm(a) == target for a in allowed if a != "" or value == "")


def _check_dict(param: str, value: dict[str, Any], allowed: list[Any]) -> Check:
    for option in allowed:
        if not isinstance(option, dict):
            continue
        if all(k in option and _among(v, option[k]) for k, v in value.items()) and all(
            k in value or "" in vs for k, vs in option.items()
        ):
            return PASS
    return Check(False, "value_error", f"{param!r}: {value!r} matches no allowed dict")


def _check_list_of_dicts(param: str, value: list[Any], allowed: list[Any]) -> Check:
    for option in allowed:
        if isinstance(option, list) and len(option) == len(value):
            pairs = zip(value, option, strict=True)
            if all(isinstance(v, dict) and _check_dict(param, v, [o]).ok for v, o in pairs):
                return PASS
    return Check(False, "value_error", f"{param!r}: {value!r} matches no allowed list")
