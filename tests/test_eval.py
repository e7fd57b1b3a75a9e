"""The evaluator: BFCL's AST check on hand-made predictions with known answers, BFCL's own
ground truth scored by it, case files with bad lines, and `edgeagent eval` end to end."""

from __future__ import annotations

import json
import random
from importlib.resources import files

import pytest

from edgeagent.evaluation.checker import check_case, standardize
from edgeagent.evaluation.runner import bfcl_cases, file_cases
from tests.test_cli import cli

WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city.",
    "parameters": {
        "type": "dict",
        "properties": {
            "city": {"type": "string", "description": "City name"},
            "days": {"type": "integer", "description": "Forecast days"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "threshold": {"type": "float", "description": "Alert above this"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["city"],
    },
}
PLAY = {
    "name": "spotify.play",
    "description": "Play an artist.",
    "parameters": {
        "type": "dict",
        "properties": {"artist": {"type": "string"}, "duration": {"type": "integer"}},
        "required": ["artist", "duration"],
    },
}
TRUTH = [
    {
        "get_weather": {
            "city": ["Paris", "Paris, France"],
            "days": [3],
            "unit": ["celsius", ""],
            "threshold": [30.0, ""],
            "tags": [["rain", "wind"], ""],
        }
    }
]
PARALLEL = [
    {"spotify.play": {"artist": ["Taylor Swift"], "duration": [20]}},
    {"spotify.play": {"artist": ["Maroon 5"], "duration": [15]}},
]


def weather(**args):
    return [("get_weather", {"city": "Paris", "days": 3, **args})]


@pytest.mark.parametrize(
    ("calls", "ok", "error_type"),
    [
        (weather(), True, ""),
        (weather(unit="celsius"), True, ""),
        ([("get_weather", {"city": "paris, FRANCE", "days": 3})], True, ""),  # BFCL's leniency
        (weather(threshold=30), True, ""),  # an int for a float parameter
        (weather(tags=["Rain", "wind"]), True, ""),
        ([("get_forecast", {"city": "Paris", "days": 3})], False, "wrong_func_name"),
        (weather(unit="kelvin"), False, "value_error"),
        ([("get_weather", {"city": "Lyon", "days": 3})], False, "value_error"),
        ([("get_weather", {"days": 3})], False, "missing_required"),
        ([("get_weather", {"city": "Paris"})], False, "missing_optional"),  # days not optional
        (weather(country="FR"), False, "unexpected_param"),
        ([("get_weather", {"city": "Paris", "days": "3"})], False, "type_error"),
        (weather(tags=["rain"]), False, "value_error"),
        ([], False, "wrong_count"),
        (weather() + weather(), False, "wrong_count"),
    ],
)
def test_single_calls_are_checked_as_bfcl_does(calls, ok, error_type):
    result = check_case([WEATHER], calls, TRUTH)
    assert (result.ok, result.error_type) == (ok, error_type), result.error


def test_parallel_calls_match_in_any_order_one_for_one():
    swift = ("spotify.play", {"artist": "Taylor Swift", "duration": 20})
    maroon = ("spotify.play", {"artist": "Maroon 5", "duration": 15})
    assert check_case([PLAY], [swift, maroon], PARALLEL).ok
    assert check_case([PLAY], [maroon, swift], PARALLEL).ok
    assert not check_case([PLAY], [swift, swift], PARALLEL).ok  # one call cannot match twice
    wrong = ("spotify.play", {"artist": "Maroon 5", "duration": 16})
    assert check_case([PLAY], [swift, wrong], PARALLEL).error_type == "value_error"


def test_irrelevance_passes_only_without_a_call():
    assert check_case([WEATHER], [], None).ok
    result = check_case([WEATHER], weather(), None)
    assert (result.ok, result.error_type) == (False, "irrelevance")


def test_strings_are_standardized_like_bfcl():
    assert standardize("April 1, 2024") == standardize("april 1 2024") == "april12024"


def test_a_case_file_with_bad_lines_names_them_and_runs_the_rest(tmp_path):
    good = {"id": "w1", "question": [[{"role": "user", "content": "Weather in Paris?"}]],
            "function": [WEATHER]}  # fmt: skip
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({"id": "w2", "question": [], "function": [WEATHER]}),
        json.dumps({"id": "w3", "question": [[{"role": "user", "content": "hi"}]]}),
        json.dumps({**good, "id": "w4"}),
    ]
    questions = tmp_path / "mine.json"
    questions.write_bytes(("\n".join(lines) + "\n").encode() + b"\xff\xfe\n")
    answers = tmp_path / "mine_answers.json"
    answers.write_text(json.dumps({"id": "w1", "ground_truth": TRUTH}) + "\n[1, 2]\n")
    cases, skipped = file_cases(questions, answers)
    assert [c.id for c in cases] == ["w1", "w4"]
    assert cases[0].expected == TRUTH and cases[1].expected is None  # no answer: irrelevance
    assert cases[0].question == "Weather in Paris?" and cases[0].category == "mine"
    assert any(s.startswith(f"{questions}:2: invalid JSON") for s in skipped)
    assert any(s.startswith(f"{questions}:3: field 'question'") for s in skipped)
    assert any(s.startswith(f"{questions}:4: field 'function'") for s in skipped)
    assert any(s.startswith(f"{questions}:6: not UTF-8") for s in skipped)
    assert any(s.startswith(f"{answers}:2: not a JSON object") for s in skipped)


def concrete(allowed):
    """The first allowed value of each parameter ("" = optional: left out); a dict's allowed
    values are themselves lists of allowed values per key."""
    if isinstance(allowed, dict):
        return {k: concrete(v[0]) for k, v in allowed.items() if v and v[0] != ""}
    if isinstance(allowed, list):
        return [concrete(v) for v in allowed]
    return allowed


@pytest.mark.parametrize("category", ["simple_python", "multiple", "parallel", "live_simple"])
def test_bfcl_ground_truth_passes_its_own_check(bfcl_cache, category):
    """Every case's first allowed answer, as calls, must pass: the checker agrees with BFCL's
    data on what is right."""
    cases = bfcl_cases([category], limit=60)
    assert len(cases) == 60
    for case in cases:
        calls = [
            (name, concrete(allowed)) for want in case.expected for name, allowed in want.items()
        ]
        result = check_case(case.functions, calls, case.expected)
        assert result.ok, (case.id, result)


@pytest.mark.model
def test_eval_cli_json_predictions_and_comparison_chart(bfcl_cache, tmp_path):
    preds = tmp_path / "preds.jsonl"
    proc = cli("eval", "--bfcl", "simple_python,irrelevance", "--limit", "3", "--json",
               "--predictions-out", str(preds))  # fmt: skip
    report = json.loads(proc.stdout)
    assert [c["category"] for c in report["categories"]] == ["simple_python", "irrelevance"]
    assert report["adapter"] and report["grammar"]
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert [r["id"] for r in rows][:1] == ["simple_python_0"] and len(rows) == 6
    # the report counts what the predictions say, and each verdict is the checker's
    overall = report["overall"]
    assert overall["cases"] == 6 and overall["correct"] == sum(r["ok"] for r in rows)
    assert overall["accuracy"] == round(overall["correct"] / 6, 3)
    cases = {c.id: c for c in bfcl_cases(["simple_python", "irrelevance"], limit=3)}
    for r in rows:
        calls = [(c["name"], c["arguments"]) for c in r["calls"]]
        case = cases[r["id"]]
        assert check_case(case.functions, calls, case.expected).ok == r["ok"], r
    assert any(r["calls"] for r in rows[:3])  # the shipped adapter calls on simple cases
    chart = tmp_path / "cmp.png"
    proc = cli("eval", "--bfcl", "simple_python", "--limit", "2", "--compare",
               "default,no-adapter", "--plot", str(chart))  # fmt: skip
    assert "default" in proc.stdout and "no-adapter" in proc.stdout
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_without_cases_says_what_to_pass():
    proc = cli("eval", check=False)
    assert proc.returncode == 2 and "--bfcl simple_python" in proc.stderr


@pytest.fixture(scope="module")
def evaluator():
    from edgeagent.evaluation.runner import Evaluator

    return Evaluator()  # the embedded model with the shipped adapter


@pytest.mark.model
def test_coherence_checks_the_answer_uses_the_scripted_result(evaluator):
    from edgeagent.evaluation import beyond

    cases = [c for c in beyond.shipped("coherence.jsonl") if c["id"] == "coherence_weather"]
    right = beyond.coherence(evaluator, adapter=True, grammar=True, cases=cases)
    assert right["cases"] == 1 and right["called"] == 1.0, right
    assert right["results"][0]["ok"] == ("23" in right["results"][0]["answer"])
    lie = [{**cases[0], "expect": ["a value no answer contains"]}]
    assert (
        beyond.coherence(evaluator, adapter=True, grammar=True, cases=lie)["answer_uses_result"]
        == 0
    )


@pytest.mark.model
def test_the_regression_check_sees_what_the_adapter_does_to_general_answers(evaluator):
    from edgeagent.evaluation import beyond

    bare = beyond.perplexity(evaluator.model, None)
    tuned = beyond.perplexity(evaluator.model, str(evaluator.adapter))
    assert tuned != bare  # the adapter changes the model's predictions
    # a measure of prediction: the same words shuffled are far less predictable
    words = (files("edgeagent") / "data/general.txt").read_text().split()
    random.Random(0).shuffle(words)
    assert beyond.perplexity(evaluator.model, None, text=" ".join(words)) > 4 * bare
    prompts = beyond.shipped("general_prompts.jsonl")[:2]  # capital of France, days in a week
    assert beyond.no_tool_answers(evaluator, adapter=False, prompts=prompts)["right"] > 0
    on = beyond.no_tool_answers(evaluator, adapter=True, prompts=prompts)
    assert on["prompts"] == 2 and all(a["answer"] for a in on["answers"])


def test_a_case_that_cannot_run_is_scored_as_not_run_and_the_evaluation_goes_on():
    """One schema no grammar can state used to end a whole `eval --bfcl` run, 14 minutes in."""
    from edgeagent.evaluation.runner import EvalCase, Evaluator
    from tests.test_agent_loop import ScriptedBackend

    def case(id_: str, schema: dict) -> EvalCase:
        functions = [{"name": "f", "description": "", "parameters": {
            "type": "dict", "properties": {"x": schema}, "required": ["x"]}}]  # fmt: skip
        return EvalCase(id_, "mine", "call f", functions, [{"f": {"x": ["a"]}}])

    evaluator = Evaluator(adapter=None)
    evaluator._backend = ScriptedBackend(['<tool_call>[{"name": "f", "arguments": {"x": "a"}}]'])
    cases = [case("bad", {"type": "string", "minLength": 500}), case("good", {"type": "string"})]
    report = evaluator.run(cases)
    bad, good = report.results
    assert (bad.ok, bad.error_type) == (False, "not_run") and "minLength 500" in bad.error
    assert good.ok and good.calls == [{"name": "f", "arguments": {"x": "a"}}]
    assert (report.overall.cases, report.overall.correct) == (2, 1)


@pytest.mark.model
def test_the_bfcl_case_with_an_untyped_parameter_runs(bfcl_cache):
    """parallel_multiple_57's flight.search has a `date` of BFCL type "any"."""
    from edgeagent.evaluation.runner import Evaluator

    case = next(c for c in bfcl_cases(["parallel_multiple"], 60) if c.id == "parallel_multiple_57")
    result = Evaluator().run([case]).results[0]
    assert result.error_type != "not_run", result.error
