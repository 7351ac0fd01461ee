"""The `kb` commands that talk to a running service, only through kb_client."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from entrypoints.cli_files import find_files, import_files
from entrypoints.cli_import import import_documents
from entrypoints.cli_sources import read_documents
from entrypoints.cli_stream import stream_import, wants_stream
from kb_client import Hit, KBClient, NotFound

DEFAULT_URL = "http://127.0.0.1:8000"


def connection_options() -> argparse.ArgumentParser:
    """--url, --api-key, --retries and --timeout, shared by every command that calls the API."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("connection")
    group.add_argument(
        "--url",
        default=os.environ.get("KB_URL", DEFAULT_URL),
        help=f"kb-service base URL (default: KB_URL or {DEFAULT_URL})",
    )
    group.add_argument(
        "--api-key",
        default=os.environ.get("KB_API_KEY") or None,
        help="API key, sent as 'Authorization: Bearer' (default: KB_API_KEY)",
    )
    group.add_argument(
        "--retries", type=int, default=3, help="retries on 429/503 and lost connections"
    )
    group.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    return options


def client_of(args: argparse.Namespace) -> KBClient:
    return KBClient(args.url, args.api_key, retries=args.retries, timeout=args.timeout)


def json_object(value: str) -> dict[str, Any]:
    """argparse type for --filter and --metadata: a JSON object."""
    try:
        parsed = json.loads(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError('must be a JSON object, e.g. \'{"lang": "en"}\'')
    return parsed


def stdout() -> Console:
    return Console(file=sys.stdout, soft_wrap=False)


def stderr() -> Console:
    return Console(file=sys.stderr)


def create(args: argparse.Namespace) -> int:
    with client_of(args) as client:
        kb = client.create_knowledge_base(
            args.name,
            args.description,
            args.metadata,
            chunking=args.chunking,
            chunk_overlap=args.chunk_overlap,
        )
    label = model_label(kb["model"], kb.get("model_fingerprint"))
    print(f"created knowledge base {kb['name']} ({label}, {kb['dimension']} dimensions)")
    return 0


def list_knowledge_bases(args: argparse.Namespace) -> int:
    table = Table("name", "documents", "chunks", "model", "description")
    for column in table.columns[1:3]:
        column.justify = "right"
    with client_of(args) as client:
        for kb in client.iter_knowledge_bases():
            table.add_row(
                kb["name"],
                str(kb["document_count"]),
                str(kb["chunk_count"]),
                model_label(kb["model"], kb.get("model_fingerprint")),
                kb["description"],
            )
    stdout().print(table)
    return 0


def info(args: argparse.Namespace) -> int:
    """The service's model and fingerprint, or with --kb one knowledge base's."""
    with client_of(args) as client:
        if args.kb is None:
            about: dict[str, Any] = dict(client.info())
            fields = ["version", "backend", "model", "model_fingerprint", "dimension", "window"]
        else:
            about = dict(client.get_knowledge_base(args.kb))
            fields = ["name", "model", "model_fingerprint", "dimension", "chunking"]
            fields += ["chunk_overlap", "document_count", "chunk_count", "created_at"]
    for field in fields:
        value = about.get(field)
        print(f"{field}: {'(recorded before fingerprints)' if value is None else value}")
    return 0


def model_label(model: str, fingerprint: str | None) -> str:
    return f"{model} ({fingerprint[:12] if fingerprint else 'no fingerprint yet'})"


def search(args: argparse.Namespace) -> int:
    with client_of(args) as client:
        hits = client.search(
            args.kb,
            args.text,
            top_k=args.top_k,
            min_score=args.min_score,
            filter=args.filter,
            mode="hybrid" if args.hybrid else None,
            diversity=args.diversity,
            exact=args.exact or None,
            explain=args.explain or None,
        )
    if args.json:
        print(json.dumps(hits, ensure_ascii=False, indent=2))
    elif not hits:
        print("no hits")
    else:
        stdout().print(hits_table(hits))
    return 0


def hits_table(hits: list[Hit]) -> Table:
    """Hybrid hits are ordered by their fused value: it leads, the cosine stands beside it.

    A page column only when a hit's document has pages (one made from a PDF, say); with
    --explain, each hit's dense and keyword rank (and keyword coverage) in a column.
    """
    fused = any("fusion_score" in hit for hit in hits)
    explained = any("explain" in hit for hit in hits)
    with_metadata = any(hit["metadata"] for hit in hits)
    with_pages = any("page" in hit["passage"] for hit in hits)
    table = Table(
        "#",
        *(["fused"] if fused else []),
        "cosine",
        "id",
        *(["page"] if with_pages else []),
        *(["why"] if explained else []),
        "passage",
        *(["metadata"] if with_metadata else []),
    )
    for column in table.columns[: 3 if fused else 2]:
        column.justify = "right"
    for rank, hit in enumerate(hits, start=1):
        passage = " ".join(hit["passage"]["text"].split())
        page = hit["passage"].get("page")
        cells = [
            str(rank),
            *([f"{hit.get('fusion_score', 0.0):.4f}"] if fused else []),
            f"{hit['score']:.4f}",
            hit["id"],
            *([str(page) if page is not None else ""] if with_pages else []),
            *([why(hit)] if explained else []),
            passage if len(passage) <= 200 else passage[:199] + "…",
        ]
        if with_metadata:
            cells.append(json.dumps(hit["metadata"], ensure_ascii=False))
        table.add_row(*cells)
    return table


def why(hit: Hit) -> str:
    """e.g. "dense #3, keyword #1 (BM25 7.21, covers 100%)" or "dense #3, keyword: no match"."""
    explain = hit.get("explain")
    if explain is None:
        return ""
    text = f"dense #{explain['dense']['rank']}"
    if "fused" not in explain:
        return text
    keyword = explain.get("keyword")
    if keyword is None:
        return text + ", keyword: no match"
    covers = keyword.get("coverage")
    share = f", covers {covers:.0%}" if covers is not None else ""
    return text + f", keyword #{keyword['rank']} ({keyword['score']:.3g}{share})"


def export(args: argparse.Namespace) -> int:
    """JSONL, one {"id", "text", "metadata"} per line in id order: `kb import` reads it back."""
    out: Path | None = args.out
    partial = out.with_name(out.name + ".partial") if out else None
    count = 0
    with client_of(args) as client:
        client.get_knowledge_base(args.kb)  # an unknown name fails before any file is made
        target = partial.open("w", encoding="utf-8") if partial else sys.stdout
        try:
            for document in client.iter_documents(args.kb, page_size=1000):
                target.write(export_line(document) + "\n")
                count += 1
        finally:
            if partial:
                target.close()
    if out and partial:
        partial.replace(out)  # only a complete export takes the final name
    print(f"exported {count} documents from {args.kb}", file=sys.stderr)
    return 0


def export_line(document: Any) -> str:
    metadata = dict(sorted(document["metadata"].items()))
    record = {"id": document["id"], "text": document["text"], "metadata": metadata}
    return json.dumps(record, ensure_ascii=False)


def import_(args: argparse.Namespace) -> int:
    console = stderr()
    if wants_stream(args.path, args.stream):
        with client_of(args) as client:
            ensure_knowledge_base(client, args.kb, args.create)
            return stream_import(client, args.kb, args.path, console, not args.no_progress)
    documents = read_documents(args.path, lambda message: console.print(f"kb: {message}"))
    with client_of(args) as client:
        ensure_knowledge_base(client, args.kb, args.create)
        report = import_documents(
            client, args.kb, documents, args.batch_size, console, not args.no_progress
        )
        if args.path.is_dir():  # and its .pdf, .html and .docx files, through the file upload
            report = report.plus(
                import_files(client, args.kb, find_files(args.path), console, not args.no_progress)
            )
    rate = report.added / report.seconds if report.seconds else 0.0
    print(
        f"imported {report.added} documents into {args.kb} "
        f"({report.skipped} already there, skipped) in {report.seconds:.1f} s, {rate:.1f} docs/s",
        file=sys.stderr,
    )
    return 0


def ensure_knowledge_base(client: KBClient, kb: str, create_missing: bool) -> None:
    try:
        client.get_knowledge_base(kb)
    except NotFound as error:
        if not create_missing:
            raise NotFound(
                f"{error.message}; create it with `kb create {kb}` or pass --create",
                status=404,
            ) from None
        client.create_knowledge_base(kb)
