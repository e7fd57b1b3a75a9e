"""Every command, every option, a wrong value: exit code 2, `error: ...` and at most a hint line,
never a traceback (README: "Errors print one line and a hint"). The options are walked from the
commands themselves, so a new option is covered as soon as it exists: a type's wrong value is
derived from its click type, and options whose wrong values only the library can see (a tool
name, a target, a quantization) have theirs in BAD_VALUES."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from edgeagent.cli import main

MISSING = "no/such/file"
#: option -> a value that is wrong for it, where its click type cannot say (free text)
BAD_VALUES = {
    "--allow": "no_such_tool",
    "--tools": "no_such_module_xyz",
    "--target": "no-such-device",
    "--quant": "q3_z",
    "--bfcl": "no_such_category",
    "--compare": "default,no-such-config",
    "--set": "lora.rank",
    "--meta": "no-equals-sign",
    "--base": MISSING,
    "--data": MISSING,
    "--init-adapter": MISSING,
    "--model": MISSING,
    "--memory": "{data}",  # a file that is not a memory file
    "--db": "{data}",
    "--root": "{data}",  # a file where a folder belongs
    "--trace": "{data}",  # a file that is not a trace
    "--fallback": "gpu-box:8080",
    "--since": "yesterday-ish",
}
#: options that take any text, so no value is wrong (free words, names of files to write)
ANY_TEXT = {"--out", "--kind", "--prompt", "--seed", "--plot", "--predictions-out", "--host",
            "--api-key", "--fallback-model"}  # fmt: skip
#: what a command needs besides the option under test, so that the option is what fails
ARGUMENTS = {
    "run": ["hi"],
    "memory add": ["a note"],
    "memory search": ["note"],
    "data validate": ["{data}"],
    "data import": ["{data}", "--from", "xlam"],
    "verify": ["{data}"],
    "models": [],
    "eval": ["--questions", "{questions}"],
    "data synth": ["--out", "{tmp}/out.jsonl"],
    "export lora": ["{tmp}", "--out", "{tmp}/out.gguf"],
    "export merge": ["{tmp}", "--out", "{tmp}/out"],
    "export gguf": ["--out", "{tmp}/out.gguf"],
    "export onnx": ["--out", "{tmp}/out"],
    "plan": ["--target", "rpi5"],
    "build": ["--target", "rpi5", "--out", "{tmp}/bundle"],
    "train": ["--data", "{data}"],
    "deploy": ["--status", "--root", "{tmp}/root"],
    "rollback": ["--root", "{tmp}/root"],
}
QUESTION = (
    '{"id": "q1", "question": [[{"role": "user", "content": "Weather in Paris?"}]], '
    '"function": [{"name": "weather", "description": "", "parameters": {"type": "dict", '
    '"properties": {"city": {"type": "string"}}, "required": ["city"]}}]}\n'
)


def _commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*path, name))
        else:
            yield " ".join((*path, name)), cmd


def _bad_value(option: click.Option) -> str | None:
    name = option.opts[0]
    kind = option.type
    if isinstance(kind, click.Choice):
        return "no-such-choice"
    if isinstance(kind, click.IntRange | click.FloatRange):
        return "-1000"
    if isinstance(kind, click.types.IntParamType | click.types.FloatParamType):
        return "not-a-number"
    if isinstance(kind, click.Path) and kind.exists:
        return MISSING
    if name in ANY_TEXT:
        return None
    return BAD_VALUES.get(name)


CASES = [
    pytest.param(path, option.opts[0], bad, id=f"{path} {option.opts[0]}")
    for path, cmd in _commands(main)
    for option in cmd.params
    if isinstance(option, click.Option) and not option.is_flag
    if (bad := _bad_value(option)) is not None
]


def test_the_walk_covers_the_options_that_take_values():
    covered = {(p, o) for p, o, _ in (c.values for c in CASES)}
    taking = {
        (path, option.opts[0])
        for path, cmd in _commands(main)
        for option in cmd.params
        if isinstance(option, click.Option) and not option.is_flag
    }
    uncovered = {(p, o) for p, o in taking - covered if o not in ANY_TEXT}
    assert uncovered == set(), "give these a wrong value in BAD_VALUES"
    assert len(CASES) > 40


@pytest.mark.parametrize("path,option,bad", CASES)
def test_a_wrong_option_value_is_one_error_line_and_exit_code_2(
    request, tmp_path, path, option, bad
):
    if option == "--bfcl":
        request.getfixturevalue("bfcl_cache")  # the wheel is at hand, nothing is fetched
    data, questions = tmp_path / "data.jsonl", tmp_path / "questions.jsonl"
    data.write_text('{"messages": []}\n')
    questions.write_text(QUESTION)
    args = ARGUMENTS.get(path, []) if option != "--questions" else []
    args = [a.format(data=data, questions=questions, tmp=tmp_path) for a in args]
    bad = bad.format(data=data)
    argv = [*path.split(), *args, option, bad]
    result = CliRunner().invoke(main, argv, prog_name="edgeagent", catch_exceptions=True)
    shown = result.stderr or result.output
    assert result.exit_code == 2, (result.exit_code, shown, result.exception)
    assert "Traceback" not in shown and isinstance(result.exception, SystemExit)
    # progress lines may come first; the error is one line, then at most a hint, then nothing
    lines = [line for line in shown.splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    assert len(errors) == 1 and len(lines) - errors[0] <= 2, shown
    assert lines[-1] == lines[errors[0]] or lines[-1].startswith("  hint: "), shown
    # the error is about this option, not something else the command tripped on
    words = {option, bad, *bad.split(","), *bad.split(".")} - {""}
    assert any(w in shown for w in words), shown


def test_the_same_in_a_real_process():
    from tests.test_cli import cli

    proc = cli("run", "--allow", "nope", "hi", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: allow names tools the agent does not have: ['nope']")
