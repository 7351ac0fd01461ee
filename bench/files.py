"""File uploads: files/s by type through POST /v1/knowledge-bases/{kb}/files (issue 18).

    python -m bench.files [--files 120] [--paragraphs 6] [--batch 8] [--model FOLDER | --url URL]

Makes `--files` files of each type (PDF by fpdf2, one page per two paragraphs; HTML with a
<title>, a nav and one <h2> per paragraph; Word .docx with headings by python-docx; Markdown;
plain text), each of `--paragraphs` paragraphs of WordNet glosses (bench/corpus.py), then, on
one `kb serve` (memory backend, the real all-MiniLM-L6-v2 unless --url/--model), uploads them
`--batch` files per request with kb_client (each request 201: under KB_FILES_JOB_*) into one
knowledge base per type. It prints, per type: files/s and MB/s end to end (read, extracted in
the service's worker processes, chunked, embedded, stored), and files/s of the extraction alone
(SandboxedTextExtractor in this process, one worker, the same files), and the machine's load.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable

import docx
from fpdf import FPDF

from adapters.extraction.sandbox import SandboxedTextExtractor
from bench import corpus
from bench.service import (
    BenchError,
    add_service_arguments,
    format_table,
    load_note,
    service_from_args,
)
from entrypoints.settings import Settings
from kb_client import KBClient

Maker = Callable[[str, list[str]], bytes]


def make_pdf(title: str, paragraphs: list[str]) -> bytes:
    document = FPDF()
    document.set_title(title)
    document.set_font("helvetica", size=11)
    for pair in (paragraphs[i : i + 2] for i in range(0, len(paragraphs), 2)):
        document.add_page()
        for paragraph in pair:
            text = paragraph.encode("latin-1", "replace").decode("latin-1")  # core font
            document.multi_cell(0, 6, text)
            document.ln(4)
    return bytes(document.output())


def make_html(title: str, paragraphs: list[str]) -> bytes:
    body = "".join(f"<h2>Part {i}</h2><p>{p}</p>" for i, p in enumerate(paragraphs, 1))
    page = f"<html><head><title>{title}</title></head><body><nav>Home | Index</nav>"
    return f"{page}<main><h1>{title}</h1>{body}</main></body></html>".encode()


def make_docx(title: str, paragraphs: list[str]) -> bytes:
    document = docx.Document()
    document.core_properties.title = title
    document.add_heading(title, level=1)
    for i, paragraph in enumerate(paragraphs, 1):
        document.add_heading(f"Part {i}", level=2)
        document.add_paragraph(paragraph)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_markdown(title: str, paragraphs: list[str]) -> bytes:
    parts = "".join(f"## Part {i}\n\n{p}\n\n" for i, p in enumerate(paragraphs, 1))
    return f"# {title}\n\n{parts}".encode()


def make_text(title: str, paragraphs: list[str]) -> bytes:
    return "\n\n".join([title, *paragraphs]).encode()


TYPES: dict[str, tuple[str, Maker]] = {
    "pdf": (".pdf", make_pdf),
    "html": (".html", make_html),
    "docx": (".docx", make_docx),
    "md": (".md", make_markdown),
    "txt": (".txt", make_text),
}


def make_files(kind: str, count: int, paragraphs: int) -> list[tuple[str, bytes]]:
    suffix, make = TYPES[kind]
    texts = corpus.short_texts(count * paragraphs * 3)
    files = []
    for i in range(count):
        own = texts[i * paragraphs * 3 : (i + 1) * paragraphs * 3]
        grouped = [" ".join(own[j : j + 3]) for j in range(0, len(own), 3)]
        files.append((f"{kind}-{i:04}{suffix}", make(f"Document {i}", grouped)))
    return files


def extraction_rate(files: list[tuple[str, bytes]]) -> float:
    extractor = SandboxedTextExtractor(Settings().file_limits, workers=1)
    try:
        extractor.extract("warm.txt", b"warm")  # start the worker outside the clock
        started = time.perf_counter()
        for name, data in files:
            extractor.extract(name, data)
        return len(files) / (time.perf_counter() - started)
    finally:
        extractor.close()


def upload_rate(client: KBClient, kb: str, files: list[tuple[str, bytes]], batch: int) -> float:
    client.create_knowledge_base(kb)
    started = time.perf_counter()
    for start in range(0, len(files), batch):
        client.upload_files(kb, files[start : start + batch])
    return len(files) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=120, help="files of each type")
    parser.add_argument("--paragraphs", type=int, default=6, help="paragraphs per file")
    parser.add_argument("--batch", type=int, default=8, help="files per request")
    parser.add_argument("--types", default=",".join(TYPES), help="comma-separated: pdf,html,...")
    add_service_arguments(parser)
    args = parser.parse_args()
    kinds = [kind.strip() for kind in args.types.split(",") if kind.strip()]
    made = {kind: make_files(kind, args.files, args.paragraphs) for kind in kinds}
    rows = []
    with service_from_args(args) as service, KBClient(service.url, timeout=600) as client:
        for kind in kinds:
            files = made[kind]
            megabytes = sum(len(data) for _, data in files) / 1e6
            http = upload_rate(client, f"bench-files-{kind}", files, args.batch)
            alone = extraction_rate(files)
            seconds = len(files) / http
            chars = sum(len(d["text"]) for d in client.iter_documents(f"bench-files-{kind}"))
            rows.append([kind, len(files), f"{megabytes * 1000 / len(files):.1f}",
                         f"{chars / len(files):,.0f}", f"{http:.1f}",
                         f"{megabytes / seconds:.2f}", f"{alone:.1f}"])  # fmt: skip
    headers = ["type", "files", "KB/file", "chars/file", "HTTP files/s", "HTTP MB/s",
               "extraction only files/s"]  # fmt: skip
    print(format_table(headers, rows, f"file uploads, {args.batch} files per request"))
    print(load_note())


if __name__ == "__main__":
    try:
        main()
    except BenchError as error:
        sys.exit(f"bench.files: {error}")
