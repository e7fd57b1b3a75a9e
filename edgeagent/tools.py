"""Typed tools (docs/runtime.md).

`@tool` turns a function's signature and docstring into a pydantic model and a JSON Schema.
Arguments coming from the model are validated by that pydantic model before the function runs;
a validation error or an exception inside the tool becomes the tool's result, never a crash.
"""

from __future__ import annotations

import inspect
import json
import threading
import time
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import docstring_parser
import pydantic
from pydantic import BaseModel, ConfigDict, Field

from edgeagent.errors import ToolDefinitionError

Effects = Literal["read", "write", "external"]

#: A tool result longer than this is cut (with a note) before it goes back to the model.
DEFAULT_MAX_RESULT_CHARS = 2000
#: A tool that has not returned after this many seconds is reported to the model as timed out.
DEFAULT_TIMEOUT_S = 30.0


class _Overran(Exception):
    """A tool ran past its timeout (its own TimeoutError, e.g. a socket's, is its failure)."""


@dataclass(frozen=True)
class ToolOutcome:
    """What running one tool call produced: the text the model sees, and whether it worked."""

    ok: bool
    content: str
    value: Any = None
    error: str | None = None
    duration_s: float = 0.0


@dataclass(frozen=True)
class Tool:
    """A function the model may call, with its argument model and JSON Schema."""

    name: str
    description: str
    fn: Callable[..., Any] = field(repr=False)
    args_model: type[BaseModel] = field(repr=False)
    parameters: dict[str, Any] = field(repr=False)
    #: What running it does to the world: "read" (nothing), "write" (changes local state) or
    #: "external" (acts outside the device or cannot be undone).
    effects: Effects = "read"
    #: Seconds the agent waits for it (None: forever). The function runs in a worker thread; a
    #: Python function cannot be stopped from outside, so one that overruns is left to finish
    #: in the background and its result is dropped.
    timeout_s: float | None = DEFAULT_TIMEOUT_S

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """A decorated function stays callable as before."""
        return self.fn(*args, **kwargs)

    def spec(self) -> dict[str, Any]:
        """The tool as the model sees it: name, description and the JSON Schema of its arguments."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    def validate(self, arguments: Any) -> BaseModel:
        """Check arguments against the tool's pydantic model (raises pydantic.ValidationError)."""
        return self.args_model.model_validate(arguments)

    @classmethod
    def from_schema(
        cls,
        name: str,
        description: str,
        parameters: dict[str, Any],
        fn: Callable[..., Any] | None = None,
        effects: Effects = "read",
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
    ) -> Tool:
        """A tool known only by its JSON Schema (a JSON tool list, a benchmark's functions).
        Arguments are validated with `jsonschema`; without `fn`, running it is an error."""
        import jsonschema

        _check_name(name)
        if not isinstance(parameters, dict) or parameters.get("type", "object") != "object":
            raise ToolDefinitionError(
                f"tool {name!r}: its parameters must be a JSON Schema of type object",
                hint='e.g. {"type": "object", "properties": {"city": {"type": "string"}}}',
            )
        try:
            jsonschema.Draft202012Validator.check_schema(parameters)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.path) or "parameters"
            raise ToolDefinitionError(
                f"tool {name!r}: its parameters are not a valid JSON Schema ({where}: "
                f"{exc.message})"
            ) from None
        checker = jsonschema.Draft202012Validator(parameters)

        class Arguments(BaseModel):
            model_config = ConfigDict(extra="allow")

            @pydantic.model_validator(mode="before")
            @classmethod
            def _check(cls, data: Any) -> Any:
                errors = sorted(checker.iter_errors(data), key=lambda e: list(e.path))
                if errors:
                    raise ValueError("; ".join(_schema_error(e) for e in errors[:3]))
                return data

        def unimplemented(**_: Any) -> Any:
            raise NotImplementedError(f"tool {name!r} has no implementation here")

        return cls(
            name, description, fn or unimplemented, Arguments, parameters, effects, timeout_s
        )

    def invoke(self, arguments: Any, max_chars: int = DEFAULT_MAX_RESULT_CHARS) -> ToolOutcome:
        """Validate, run, and turn whatever happens into a ToolOutcome the model can read."""
        start = time.perf_counter()
        try:
            parsed = self.validate(arguments)
        except pydantic.ValidationError as exc:
            error = f"invalid arguments for {self.name}: {_short_validation_error(exc)}"
            return ToolOutcome(False, error, error=error, duration_s=time.perf_counter() - start)
        kwargs = {name: getattr(parsed, name) for name in type(parsed).model_fields}
        kwargs.update(parsed.model_extra or {})  # schema-only tools keep their arguments here
        try:
            value = self._run(kwargs)
        except _Overran:
            error = f"{self.name} timed out after {self.timeout_s:g} s"
            return ToolOutcome(False, error, error=error, duration_s=time.perf_counter() - start)
        except Exception as exc:  # a tool's failure is a result for the model, not a crash
            error = failure(self.name, exc)
            return ToolOutcome(False, error, error=error, duration_s=time.perf_counter() - start)
        content = _cap(format_result(value), max_chars)
        return ToolOutcome(True, content, value=value, duration_s=time.perf_counter() - start)

    def _run(self, kwargs: dict[str, Any]) -> Any:
        """The function's value, or _Overran once timeout_s has passed. A daemon thread,
        so that a tool that never returns does not keep the process alive at exit."""
        if self.timeout_s is None:
            return self.fn(**kwargs)
        box: list[Any] = []

        def target() -> None:
            try:
                box.append((True, self.fn(**kwargs)))
            except BaseException as exc:  # handed to the caller's thread
                box.append((False, exc))

        worker = threading.Thread(target=target, name=f"tool {self.name}", daemon=True)
        worker.start()
        worker.join(self.timeout_s)
        if not box:
            raise _Overran
        ok, value = box[0]
        if not ok:
            raise value
        return value


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    effects: Effects = "read",
    timeout: float | None = DEFAULT_TIMEOUT_S,
) -> Any:
    """Decorate a function to make it a Tool. Usable bare (`@tool`) or with options
    (`@tool(name="timer", effects="write", timeout=5)`)."""

    def wrap(func: Callable[..., Any]) -> Tool:
        return make_tool(func, name=name, description=description, effects=effects, timeout=timeout)

    return wrap(fn) if fn is not None else wrap


def make_tool(
    func: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    effects: Effects = "read",
    timeout: float | None = DEFAULT_TIMEOUT_S,
) -> Tool:
    """Build a Tool from a function: signature -> pydantic model -> JSON Schema."""
    tool_name = name or func.__name__
    _check_name(tool_name)
    doc = docstring_parser.parse(inspect.getdoc(func) or "")
    summary = " ".join(p for p in (doc.short_description, doc.long_description) if p)
    param_docs = {p.arg_name: p.description or "" for p in doc.params}
    args_model = _args_model(func, tool_name, param_docs)
    try:
        raw_schema = args_model.model_json_schema()
    except Exception as exc:
        raise ToolDefinitionError(
            f"tool {tool_name!r}: cannot describe its arguments as JSON Schema: {exc}"
        ) from exc
    parameters = clean_schema(raw_schema, tool_name)
    return Tool(
        name=tool_name,
        description=(description or summary or tool_name).strip(),
        fn=func,
        args_model=args_model,
        parameters=parameters,
        effects=effects,
        timeout_s=timeout,
    )


def _check_name(name: str) -> None:
    if not name or not name.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise ToolDefinitionError(
            f"tool name {name!r} must use letters, digits, '_', '-' or '.'",
            hint="pass name=... to @tool",
        )


def _schema_error(error: Any) -> str:
    where = ".".join(str(p) for p in error.path) or "arguments"
    return f"{where}: {error.message}"


def _args_model(
    func: Callable[..., Any], tool_name: str, param_docs: dict[str, str]
) -> type[BaseModel]:
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:
        raise ToolDefinitionError(f"tool {tool_name!r}: cannot resolve annotations: {exc}") from exc
    fields: dict[str, Any] = {}
    for param in inspect.signature(func).parameters.values():
        where = f"parameter {param.name!r} of tool {tool_name!r}"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolDefinitionError(
                f"{where}: *args and **kwargs cannot be described to a model",
                hint="list each argument with a type annotation",
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise ToolDefinitionError(f"{where}: positional-only parameters are not supported")
        if param.name not in hints:
            raise ToolDefinitionError(
                f"{where} has no type annotation", hint=f"annotate it, e.g. `{param.name}: str`"
            )
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (
            hints[param.name],
            Field(default, description=param_docs.get(param.name) or None),
        )
    try:
        return pydantic.create_model(  # type: ignore[call-overload,no-any-return]
            tool_name, __config__=ConfigDict(extra="forbid"), **fields
        )
    except Exception as exc:  # pydantic's schema errors name the offending type
        raise ToolDefinitionError(
            f"tool {tool_name!r}: unsupported argument type: {exc}",
            hint="use str, int, float, bool, Literal, Enum, list, or pydantic models",
        ) from exc


def clean_schema(schema: dict[str, Any], tool_name: str = "tool") -> dict[str, Any]:
    """Inline `$ref`s, drop pydantic's titles and forbid extra keys: the schema a small model
    reads in its prompt and the grammar is built from."""
    defs = schema.get("$defs", {})

    def walk(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [walk(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            ref = node["$ref"].rsplit("/", 1)[-1]
            if ref in seen:
                raise ToolDefinitionError(
                    f"tool {tool_name!r}: recursive type {ref!r} cannot be constrained by a grammar"
                )
            merged = {**defs[ref], **{k: v for k, v in node.items() if k != "$ref"}}
            return walk(merged, (*seen, ref))
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("title", "$defs"):
                continue
            if key == "properties":
                out[key] = {prop: walk(sub, seen) for prop, sub in value.items()}
            else:
                out[key] = walk(value, seen)
        if out.get("type") == "object" and "properties" in out:
            out.setdefault("additionalProperties", False)
        return out

    cleaned = walk(schema, ())
    cleaned.setdefault("type", "object")
    cleaned.setdefault("properties", {})
    return dict(cleaned)


def failure(tool_name: str, exc: BaseException) -> str:
    """What the model reads when a tool raises (training data writes its errors the same way)."""
    return f"{tool_name} failed: {type(exc).__name__}: {exc}"


def is_failure(tool_name: str, content: str) -> bool:
    """Whether a tool result is one of `Tool.invoke`'s errors (raised, refused, timed out)."""
    return content.startswith(
        (f"{tool_name} failed: ", f"invalid arguments for {tool_name}: ", f"{tool_name} timed out")
    )


def format_result(value: Any) -> str:
    """A tool's return value as text for the model: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _cap(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[:max_chars] + f" …[cut: {len(text) - max_chars} more characters]"


def _short_validation_error(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "arguments"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def path_within(root: str | Path, relative: str) -> Path:
    """`relative` resolved under `root`, for tools that take file paths from the model: an
    absolute path, `..` or a symlink that leads out of `root` raises ValueError (which the
    model reads as the tool's error)."""
    base = Path(root).resolve()
    if Path(relative).is_absolute():
        raise ValueError(f"{relative!r} is an absolute path; give a path inside the folder")
    target = (base / relative).resolve()
    if not target.is_relative_to(base):
        raise ValueError(f"{relative!r} leads outside the folder this tool may use")
    return target


def collect_tools(objects: Iterable[Any]) -> list[Tool]:
    """Tools from a mix of Tool objects and plain functions (which are wrapped with @tool)."""
    tools = [obj if isinstance(obj, Tool) else make_tool(obj) for obj in objects]
    names = [t.name for t in tools]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ToolDefinitionError(f"two tools share a name: {', '.join(dupes)}")
    return tools
