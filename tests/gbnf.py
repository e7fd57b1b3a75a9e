"""A small GBNF reader and random-string generator for property tests.

It reads the subset of llama.cpp's GBNF that our grammars use (one rule per line; literals, char
classes, rule references, groups, alternation, ?, *, +, {m,n}) and derives strings from it with
choices drawn through hypothesis, so failures shrink. `matches` checks membership, for tests that
need to know whether the grammar admits a given string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Union

from hypothesis import strategies as st


@dataclass(frozen=True)
class Lit:
    text: str


@dataclass(frozen=True)
class Cls:
    negated: bool
    ranges: tuple[tuple[int, int], ...]

    def __contains__(self, ch: str) -> bool:
        hit = any(lo <= ord(ch) <= hi for lo, hi in self.ranges)
        return hit != self.negated


@dataclass(frozen=True)
class Ref:
    name: str


@dataclass(frozen=True)
class Seq:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Alt:
    options: tuple[Node, ...]


@dataclass(frozen=True)
class Rep:
    item: Node
    lo: int
    hi: int | None


Node = Union[Lit, Cls, Ref, Seq, Alt, Rep]  # noqa: UP007 (a runtime alias of dataclasses)

_ESC = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "[": "[", "]": "]", "-": "-"}


class _Parser:
    def __init__(self, text: str) -> None:
        self.s, self.i = text, 0

    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \t":
            self.i += 1

    def char(self) -> str:
        c = self.s[self.i]
        self.i += 1
        if c != "\\":
            return c
        e = self.s[self.i]
        self.i += 1
        if e == "x":
            code, self.i = int(self.s[self.i : self.i + 2], 16), self.i + 2
            return chr(code)
        if e == "u":
            code, self.i = int(self.s[self.i : self.i + 4], 16), self.i + 4
            return chr(code)
        if e == "U":
            code, self.i = int(self.s[self.i : self.i + 8], 16), self.i + 8
            return chr(code)
        return _ESC[e]

    def alt(self) -> Node:
        options = [self.seq()]
        while self.i < len(self.s) and self.s[self.i] == "|":
            self.i += 1
            options.append(self.seq())
        return options[0] if len(options) == 1 else Alt(tuple(options))

    def seq(self) -> Node:
        items: list[Node] = []
        while True:
            self.ws()
            if self.i >= len(self.s) or self.s[self.i] in "|)":
                break
            items.append(self.postfix(self.atom()))
        return items[0] if len(items) == 1 else Seq(tuple(items))

    def atom(self) -> Node:
        c = self.s[self.i]
        if c == '"':
            self.i += 1
            out = ""
            while self.s[self.i] != '"':
                out += self.char()
            self.i += 1
            return Lit(out)
        if c == "[":
            self.i += 1
            negated = self.s[self.i] == "^"
            self.i += negated
            ranges = []
            while self.s[self.i] != "]":
                lo = self.char()
                hi = lo
                if self.s[self.i] == "-" and self.s[self.i + 1] != "]":
                    self.i += 1
                    hi = self.char()
                ranges.append((ord(lo), ord(hi)))
            self.i += 1
            return Cls(negated, tuple(ranges))
        if c == "(":
            self.i += 1
            node = self.alt()
            assert self.s[self.i] == ")", self.s[self.i :]
            self.i += 1
            return node
        m = re.compile(r"[a-zA-Z0-9-]+").match(self.s, self.i)
        assert m, f"cannot parse at {self.s[self.i : self.i + 20]!r}"
        self.i = m.end()
        return Ref(m.group())

    def postfix(self, node: Node) -> Node:
        while self.i < len(self.s) and self.s[self.i] in "?*+{":
            c = self.s[self.i]
            self.i += 1
            if c == "?":
                node = Rep(node, 0, 1)
            elif c == "*":
                node = Rep(node, 0, None)
            elif c == "+":
                node = Rep(node, 1, None)
            else:
                end = self.s.index("}", self.i)
                lo_text, _, hi_text = self.s[self.i : end].partition(",")
                lo = int(lo_text)
                hi = lo if "," not in self.s[self.i : end] else (int(hi_text) if hi_text else None)
                node, self.i = Rep(node, lo, hi), end + 1
        return node


class Rules(dict):  # type: ignore[type-arg]
    """Rule name -> node, with the minimal derivation cost of each rule (computed once)."""

    @property
    def costs(self) -> dict[str, float]:
        if "_costs" not in self.__dict__:
            self.__dict__["_costs"] = _min_costs(self)
        return self.__dict__["_costs"]


def parse_gbnf(text: str) -> Rules:
    rules = Rules()
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, body = line.partition("::=")
        parser = _Parser(body.strip())
        rules[name.strip()] = parser.alt()
        assert parser.i == len(parser.s), f"trailing text in rule {name}: {parser.s[parser.i :]}"
    for node in rules.values():
        _check_refs(node, rules)
    return rules


def _check_refs(node: Node, rules: dict[str, Node]) -> None:
    if isinstance(node, Ref):
        assert node.name in rules, f"undefined rule {node.name}"
    elif isinstance(node, (Seq, Alt)):
        for child in node.items if isinstance(node, Seq) else node.options:
            _check_refs(child, rules)
    elif isinstance(node, Rep):
        _check_refs(node.item, rules)


_ALPHABET = list("aZ0 9_-.,:;!?'é中\u00a0\u2003\x85\t\n\"\\<>{}[]/\x7f\x01") + ["😀"]


def _cost(node: Node, rules: dict[str, Node], costs: dict[str, float]) -> float:
    if isinstance(node, Lit):
        return len(node.text)
    if isinstance(node, Cls):
        return 1
    if isinstance(node, Ref):
        return costs.get(node.name, float("inf"))
    if isinstance(node, Seq):
        return sum(_cost(n, rules, costs) for n in node.items)
    if isinstance(node, Alt):
        return min(_cost(n, rules, costs) for n in node.options)
    return node.lo * _cost(node.item, rules, costs) if node.lo else 0


def _min_costs(rules: dict[str, Node]) -> dict[str, float]:
    costs: dict[str, float] = {}
    for _ in range(len(rules) + 1):
        new = {name: _cost(node, rules, costs) for name, node in rules.items()}
        if new == costs:
            break
        costs = new
    return costs


def generate(data: Any, rules: dict[str, Node], start: str = "root", max_depth: int = 40) -> str:
    """Derive one string from the grammar, every choice drawn through hypothesis's `data`."""
    costs = getattr(rules, "costs", None) or _min_costs(rules)
    out: list[str] = []

    def gen(node: Node, depth: int) -> None:
        deep = depth > max_depth
        if isinstance(node, Lit):
            out.append(node.text)
        elif isinstance(node, Cls):
            out.append(data.draw(_class_chars(node)))
        elif isinstance(node, Ref):
            gen(rules[node.name], depth + 1)
        elif isinstance(node, Seq):
            for item in node.items:
                gen(item, depth)
        elif isinstance(node, Alt):
            if deep:
                index = min(
                    range(len(node.options)), key=lambda i: _cost(node.options[i], rules, costs)
                )
            else:
                index = data.draw(st.integers(0, len(node.options) - 1))
            gen(node.options[index], depth + 1)
        else:
            hi = node.lo + 4 if node.hi is None else node.hi
            count = node.lo if deep else data.draw(st.integers(node.lo, hi))
            for _ in range(count):
                gen(node.item, depth + 1)

    gen(rules[start], 0)
    return "".join(out)


@cache
def _class_chars(cls: Cls) -> st.SearchStrategy[str]:
    allowed = [c for c in _ALPHABET if c in cls]
    if not cls.negated:
        for lo, hi in cls.ranges[:8]:
            allowed += [chr(lo), chr(hi), chr((lo + hi) // 2)]
    allowed = sorted({c for c in allowed if c in cls})
    assert allowed, f"no character found for {cls}"
    return st.sampled_from(allowed)


def matches(rules: dict[str, Node], text: str, start: str = "root") -> bool:
    """Whether the grammar derives exactly `text` (a backtracking matcher for test strings)."""

    def m(node: Node, i: int) -> set[int]:
        if isinstance(node, Lit):
            return {i + len(node.text)} if text.startswith(node.text, i) else set()
        if isinstance(node, Cls):
            return {i + 1} if i < len(text) and text[i] in node else set()
        if isinstance(node, Ref):
            return m(rules[node.name], i)
        if isinstance(node, Seq):
            ends = {i}
            for item in node.items:
                ends = {e2 for e in ends for e2 in m(item, e)}
            return ends
        if isinstance(node, Alt):
            return {e for opt in node.options for e in m(opt, i)}
        ends, frontier, count = ({i} if node.lo == 0 else set()), {i}, 0
        while frontier and (node.hi is None or count < node.hi):
            frontier = {e2 for e in frontier for e2 in m(node.item, e) if e2 != e}
            count += 1
            if count >= node.lo:
                ends |= frontier
        return ends

    return len(text) in m(rules[start], 0)
