"""Demo tools that really work offline: timers and notes in SQLite, unit conversion, arithmetic,
file search in a sandbox directory, device status and the time. `edgeagent run` and the docs use
them; `DEMO_TOOLS` lists them. Their data lives under $EDGEAGENT_HOME (see edgeagent.paths)."""

from __future__ import annotations

import ast
import datetime as dt
import fnmatch
import operator
import os
import re
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from edgeagent.paths import home
from edgeagent.tools import tool


def _db() -> sqlite3.Connection:
    conn = sqlite3.connect(home() / "demo.db", timeout=10)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(
        """
        CREATE TABLE IF NOT EXISTS timers (
            id INTEGER PRIMARY KEY, label TEXT NOT NULL, ends_at TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS notes (
            id INTEGER PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL,
            created_at TEXT NOT NULL);
        """
    )
    return conn


def _now() -> dt.datetime:
    """The local time; EDGEAGENT_NOW (ISO 8601) fixes it, for tests and repeatable demos."""
    fixed = os.environ.get("EDGEAGENT_NOW")
    now = dt.datetime.fromisoformat(fixed) if fixed else dt.datetime.now()
    return now.astimezone().replace(microsecond=0)


@tool(effects="write")
def set_timer(minutes: Annotated[int, Field(ge=1, le=1440)], label: str = "") -> str:
    """Start a countdown timer.

    Args:
        minutes: how long the timer runs, in minutes
        label: what the timer is for, e.g. "pasta"
    """
    ends = _now() + dt.timedelta(minutes=minutes)
    with _db() as conn:
        conn.execute("INSERT INTO timers (label, ends_at) VALUES (?, ?)", (label, ends.isoformat()))
    name = f"'{label}' " if label else ""
    return f"Timer {name}set for {minutes} minutes; it ends at {ends:%H:%M}."


@tool
def list_timers() -> list[dict[str, object]]:
    """List the timers that are still running, with the minutes left on each."""
    now = _now()
    with _db() as conn:
        rows = conn.execute("SELECT label, ends_at FROM timers ORDER BY ends_at").fetchall()
    running = []
    for label, ends_at in rows:
        left = (dt.datetime.fromisoformat(ends_at) - now).total_seconds() / 60
        if left > 0:
            running.append({"label": label, "minutes_left": round(left, 1)})
    return running


@tool(effects="write")
def add_note(text: str, title: str = "") -> str:
    """Save a note on this device.

    Args:
        text: the note itself
        title: a short title
    """
    with _db() as conn:
        cur = conn.execute(
            "INSERT INTO notes (title, text, created_at) VALUES (?, ?, ?)",
            (title, text, _now().isoformat()),
        )
    return f"Saved note {cur.lastrowid}."


@tool
def search_notes(query: str) -> list[dict[str, object]]:
    """Find saved notes that contain the given words.

    Args:
        query: words to look for in the notes
    """
    words = [w for w in query.lower().split() if w]
    with _db() as conn:
        rows = conn.execute("SELECT id, title, text, created_at FROM notes").fetchall()
    hits = [
        {"id": i, "title": title, "text": text, "created_at": created}
        for i, title, text, created in rows
        if all(w in f"{title} {text}".lower() for w in words)
    ]
    return hits[-10:]


#: unit: (dimension, scale, offset): in the dimension's base unit (m, kg, l, kelvin) a value is
#: value * scale + offset; only temperatures have an offset.
_UNITS: dict[str, tuple[str, float, float]] = {
    "mm": ("length", 0.001, 0), "cm": ("length", 0.01, 0), "m": ("length", 1.0, 0),
    "km": ("length", 1000.0, 0), "in": ("length", 0.0254, 0), "ft": ("length", 0.3048, 0),
    "yd": ("length", 0.9144, 0), "mi": ("length", 1609.344, 0),
    "g": ("mass", 0.001, 0), "kg": ("mass", 1.0, 0), "oz": ("mass", 0.028349523125, 0),
    "lb": ("mass", 0.45359237, 0),
    "ml": ("volume", 0.001, 0), "l": ("volume", 1.0, 0), "cup": ("volume", 0.2365882365, 0),
    "tbsp": ("volume", 0.01478676478125, 0), "tsp": ("volume", 0.00492892159375, 0),
    "gal": ("volume", 3.785411784, 0),
    "celsius": ("temperature", 1.0, 273.15), "kelvin": ("temperature", 1.0, 0),
    "fahrenheit": ("temperature", 5 / 9, 273.15 - 32 * 5 / 9),
}  # fmt: skip
#: Units people say in words rather than abbreviate. The enum admits these words too: offered
#: only "mi", the model wrote "m" for "5 miles"; with the word offered it copies the word (4 -> 7
#: of 10 conversions right: docs/benchmarks.md, "Unit words and a percentage in the demo tools'
#: schemas").
SAID_UNITS = {
    "miles": "mi", "feet": "ft", "inches": "in", "yards": "yd", "pounds": "lb", "ounces": "oz",
    "gallons": "gal", "cups": "cup",
}  # fmt: skip
Unit = Literal[
    "mm", "cm", "m", "km", "in", "ft", "yd", "mi", "g", "kg", "oz", "lb",
    "ml", "l", "cup", "tbsp", "tsp", "gal", "celsius", "fahrenheit", "kelvin",
    "miles", "feet", "inches", "yards", "pounds", "ounces", "gallons", "cups",
]  # fmt: skip
# Temperatures are spelled out: a grammar admits "c" as soon as it is written, so with "c" a
# unit the model could stop at it when it meant "cup" (it did: "3 cups" became 3 c).


@tool
def convert_units(value: float, from_unit: Unit, to_unit: Unit) -> str:
    """Convert a quantity between units of length, mass, volume or temperature.

    Args:
        value: the quantity to convert
        from_unit: the unit of the value
        to_unit: the unit wanted
    """
    dim_from, scale_from, offset_from = _UNITS[SAID_UNITS.get(from_unit, from_unit)]
    dim_to, scale_to, offset_to = _UNITS[SAID_UNITS.get(to_unit, to_unit)]
    if dim_from != dim_to:
        raise ValueError(f"cannot convert {dim_from} ({from_unit}) to {dim_to} ({to_unit})")
    result = (value * scale_from + offset_from - offset_to) / scale_to
    return f"{value:g} {from_unit} = {result:.6g} {to_unit}"


_OPS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos,
}  # fmt: skip


#: Whole numbers stop at this many bits (about 1e301, which still prints as a float). Python's
#: big integers are exact and unbounded, and one power such as (9**99)**99**99 holds the GIL for
#: minutes, where no timeout in another thread can stop it: sizes are checked before computing.
MAX_INT_BITS = 1000


def _checked(value: Any) -> Any:
    if isinstance(value, complex):
        raise ValueError("the result is not a real number")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ValueError(f"the number is too large (more than {MAX_INT_BITS} bits)")
    return value


def _eval(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _checked(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _eval(node.left), _eval(node.right)
        # a power of whole numbers has about right * log2(|left|) bits: refuse before computing
        if (
            isinstance(node.op, ast.Pow)
            and isinstance(left, int)
            and isinstance(right, int)
            and right > 0
            and right * (max(abs(left).bit_length(), 1) - 1) > MAX_INT_BITS
        ):
            raise ValueError(f"the number is too large (more than {MAX_INT_BITS} bits)")
        return _checked(_OPS[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return _checked(_OPS[type(node.op)](_eval(node.operand)))
    raise ValueError(f"only numbers and + - * / // % ** are allowed, not {type(node).__name__}")


# The description shows a percentage: without one the shipped adapter sent "What is 18% of
# 240?" to convert_units (docs/benchmarks.md, the same section as the unit words).
@tool
def calculate(expression: Annotated[str, Field(max_length=200)]) -> str:
    """Evaluate an arithmetic expression such as "(12 + 3) * 4 / 5", "15% of 80" or "2 ** 10".

    Args:
        expression: numbers with + - * / // % ** and parentheses
    """
    result = _eval(ast.parse(_percentages(_operator_words(expression)), mode="eval"))
    return f"{expression} = {result:.10g}"


#: Operators in words: the model copies the request's words into the expression ("What is 2 to
#: the power of 10?" -> "2 to the power of 10"), which a calculator can read as well as "2 ** 10".
_OPERATOR_WORDS = [
    (re.compile(rf"\b{words}\b", re.IGNORECASE), symbol)
    for words, symbol in [
        ("to the power of", "**"), ("(?:multiplied by|times)", "*"), ("divided by", "/"),
        ("plus", "+"), ("minus", "-"), ("percent", "%"),
    ]
]  # fmt: skip


def _operator_words(expression: str) -> str:
    for pattern, symbol in _OPERATOR_WORDS:
        expression = pattern.sub(f" {symbol} ", expression)
    return expression


_PERCENT_OF = re.compile(r"(\d+(?:\.\d+)?)\s*%\s*of\b", re.IGNORECASE)
# a % with no number or parenthesis after it is a percentage; "17 % 5" stays the remainder
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%(?!\s*[\d(.])")


def _percentages(expression: str) -> str:
    """Percentages as people write them to a calculator: "18% of 240" and "240 * 18%"."""
    return _PERCENT.sub(r"(\1 / 100)", _PERCENT_OF.sub(r"\1 / 100 *", expression))


def files_root() -> Path:
    """The only directory `find_files` may look in: $EDGEAGENT_FILES, else $EDGEAGENT_HOME/files."""
    root = Path(os.environ.get("EDGEAGENT_FILES") or home() / "files").resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


@tool
def find_files(pattern: str) -> list[str]:
    """Find files by name in the user's files folder, e.g. "*.pdf" or "report".

    Args:
        pattern: a file name, part of one, or a glob pattern
    """
    if "/" in pattern or "\\" in pattern or ".." in pattern:
        raise ValueError("the pattern is a file name, not a path")
    root = files_root()
    glob = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
    found = []
    for dirpath, _dirs, files in os.walk(root):  # os.walk does not follow symlinked folders
        for name in files:
            path = Path(dirpath, name)
            if fnmatch.fnmatch(name.lower(), glob.lower()) and path.resolve().is_relative_to(root):
                found.append(str(path.relative_to(root)))
    return sorted(found)[:50]


@tool
def device_status() -> dict[str, object]:
    """Report this device's CPU load, memory, free disk space, temperature and battery."""
    status: dict[str, object] = {"cpus": os.cpu_count()}
    if hasattr(os, "getloadavg"):
        status["load_1min"] = round(os.getloadavg()[0], 2)
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        values = {
            line.split(":")[0]: int(line.split()[1]) for line in meminfo.read_text().splitlines()
        }
        status["memory_total_mb"] = values.get("MemTotal", 0) // 1024
        status["memory_available_mb"] = values.get("MemAvailable", 0) // 1024
    status["disk_free_gb"] = round(shutil.disk_usage(home()).free / 1e9, 1)
    thermal = Path("/sys/class/thermal/thermal_zone0/temp")
    if thermal.exists():
        status["cpu_temp_c"] = int(thermal.read_text().strip()) / 1000
    for supply in Path("/sys/class/power_supply").glob("BAT*"):
        status["battery_percent"] = int((supply / "capacity").read_text().strip())
    return status


@tool
def current_time() -> str:
    """Tell the current local date and time."""
    return _now().strftime("%A %d %B %Y, %H:%M (%Z)")


DEMO_TOOLS = [
    set_timer,
    list_timers,
    add_note,
    search_notes,
    convert_units,
    calculate,
    find_files,
    device_status,
    current_time,
]

#: What the terminal assistant suggests under "Try:" (the first also in its input's placeholder).
SUGGESTED_PROMPTS = [
    "Start a 12 minute timer for the pasta",
    "What is 18% of 240?",
    "Convert 5 miles to km",
]

#: The demo prompts the docs show: (prompt, the tool it needs or None, arguments the call must
#: have). The shipped adapter answers each with the right tool, all demo tools offered (a test
#: and benchmarks/bench_default_adapter.py check it with `demo_reply_is_right`).
DEMO_PROMPTS: list[tuple[str, str | None, dict[str, Any]]] = [
    ("Start a 12 minute timer for the pasta", "set_timer", {"minutes": 12}),
    ("Convert 3 cups to ml", "convert_units", {"value": 3, "from_unit": "cup", "to_unit": "ml"}),
    ("What is 17 * 23?", "calculate", {}),
    ("Save a note: buy oat milk", "add_note", {}),
    ("What time is it?", "current_time", {}),
    ("Find the pdf files", "find_files", {}),
    ("How much battery is left?", "device_status", {}),
    ("What timers are running?", "list_timers", {}),
    ("What did I note about the dentist?", "search_notes", {}),
    ("Tell me a joke about penguins.", None, {}),
]


def demo_reply_is_right(
    tool: str | None, arguments: dict[str, Any], calls: list[tuple[str, dict[str, Any]]]
) -> bool:
    """Whether a reply's calls, as (name, arguments), answer a demo prompt: no call where
    `tool` is None, else a first call of `tool` with `arguments` (a unit said in words, "cups",
    counts as its abbreviation, "cup")."""
    if tool is None:
        return not calls
    if not calls or calls[0][0] != tool:
        return False
    got = {k: SAID_UNITS.get(v, v) if isinstance(v, str) else v for k, v in calls[0][1].items()}
    return all(got.get(k) == v for k, v in arguments.items())
