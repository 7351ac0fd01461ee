"""Settings: every KB_* environment variable, read once into a frozen object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from typing import Any

from domain.errors import InvalidInputError
from domain.extraction import FileLimits
from domain.job_runner import HEARTBEAT_SECONDS as JOB_HEARTBEAT_SECONDS
from domain.limits import Limit, Limits
from domain.search_request import MAX_TOP_K

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L12-v2"
BACKENDS = ("memory", "postgres")
RUNTIMES = ("auto", "onnx", "torch")
PRECISIONS = ("float32", "int8")  # int8: ONNX Runtime's quantised model, on the CPU only
# Precisions the service knows but will not run, and why. int8 is kept (OnnxEncoder, its cached
# quantisation, its own model identity) so that bench.precision measures it and a better
# quantisation that passes the gate only has to leave this table.
REFUSED_PRECISIONS = {
    "int8": "it missed its quality gate: on the WordNet sample it ranks 0.0076 nDCG@10 below "
    'float32, the bar being 0.005 (docs/performance.md, "int8 precision"; measure again '
    "with python -m bench.precision)",
}
MIN_JOB_STALE_SECONDS = 5


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


@dataclass(frozen=True)
class Settings:
    """Service configuration; `from_env` documents each variable's name and default."""

    backend: str = "memory"
    data_dir: str = "./kb-data"
    embedding_model: str = DEFAULT_MODEL
    embedding_runtime: str = "auto"
    embedding_precision: str = "float32"
    # 1 runs a precision of REFUSED_PRECISIONS anyway: for measuring it (bench.precision).
    embedding_precision_ungated: int = 0
    device: str = "cpu"
    embed_batch_size: int = 32
    # Memory for embeddings already computed (by text and model), in MiB; 0 turns the cache off.
    embedding_cache_mb: int = 256
    max_body_bytes: int = 32 * 1024 * 1024
    # An archive uploaded to restore is spooled to disk as it arrives, never held in memory:
    # its own bound, far above KB_MAX_BODY_BYTES.
    max_archive_bytes: int = 64 * 1024 * 1024 * 1024
    # An NDJSON import is spooled the same way; each of its lines (a document) has a bound too.
    max_import_bytes: int = 64 * 1024 * 1024 * 1024
    max_import_line_bytes: int = 8 * 1024 * 1024
    max_batch_documents: int = 1000
    max_text_chars: int = 1_000_000
    max_query_chars: int = 10_000
    max_batch_queries: int = 32
    max_metadata_keys: int = 64
    max_metadata_bytes: int = 65536
    max_top_k: int = MAX_TOP_K
    max_knowledge_bases: int = 1000
    ann_threshold: int = 50_000
    # Chunks above which the memory backend's IVF lists hold 8-bit codes, re-scored from disk.
    compress_threshold: int = 500_000
    # Never in repr(): a connection URL may carry a password.
    database_url: str = field(default="", repr=False)
    database_pool_size: int = 10
    # Seconds a request waits for PostgreSQL (to connect, or for a pooled connection) before
    # answering 503 with Retry-After, so an outage fails requests fast instead of hanging them.
    database_timeout: int = 5
    exact_search_limit: int = 20_000
    # Jobs (restores, ingestions) each process runs at once; more wait, queued.
    job_workers: int = 2
    # Uploaded files (POST .../files) are untrusted: bounds on one upload and on reading a file.
    max_file_bytes: int = 64 * 1024 * 1024
    max_upload_bytes: int = 512 * 1024 * 1024
    max_upload_files: int = 1000
    max_pdf_pages: int = 2000
    max_extracted_bytes: int = 256 * 1024 * 1024  # what a DOCX's zip may unpack to
    extraction_seconds: int = 60
    extraction_memory_bytes: int = 2 * 1024 * 1024 * 1024
    extraction_workers: int = 2  # files read at once, each in its own worker process
    # An upload over either size answers 202 with a job instead of 201 when done.
    files_job_bytes: int = 4 * 1024 * 1024
    files_job_files: int = 16
    # A job whose process wrote no heartbeat (every 2 s) for this long is taken as lost (its
    # process was killed): it is failed, and what its restore had built is removed. Only
    # backends shared by several processes wait for it; the memory backend knows at start.
    job_stale_seconds: int = 30
    # Keys never appear in repr(), so logging the settings cannot leak them.
    api_keys: str = field(default="", repr=False)
    read_only_api_keys: str = field(default="", repr=False)
    cors_origins: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    threads: int = 8
    timeout: int = 120
    log_level: str = "info"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise SettingsError(f"KB_BACKEND={self.backend!r}: choose one of {', '.join(BACKENDS)}")
        for name in (
            "embed_batch_size",
            "max_body_bytes",
            "max_archive_bytes",
            "max_import_bytes",
            "max_import_line_bytes",
            "ann_threshold",
            "compress_threshold",
            "database_pool_size",
            "database_timeout",
            "exact_search_limit",
            "job_workers",
            "extraction_workers",
            "files_job_bytes",
            "files_job_files",
            "workers",
            "threads",
            "timeout",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"KB_{name.upper()} must be at least 1")
        if self.embedding_cache_mb < 0:
            raise SettingsError(
                f"KB_EMBEDDING_CACHE_MB={self.embedding_cache_mb}: give MiB of memory, or 0 to "
                "turn the embedding cache off"
            )
        if self.embedding_runtime not in RUNTIMES:
            raise SettingsError(
                f"KB_EMBEDDING_RUNTIME={self.embedding_runtime!r}: choose one of "
                f"{', '.join(RUNTIMES)}"
            )
        self._check_precision()
        if self.backend == "postgres" and not self.database_url:
            raise SettingsError(
                "KB_BACKEND=postgres needs KB_DATABASE_URL, e.g. "
                "postgresql://kb:secret@localhost:5432/kb"
            )
        if self.log_level.lower() not in {"debug", "info", "warning", "error", "critical"}:
            raise SettingsError(
                f"KB_LOG_LEVEL={self.log_level!r}: use debug, info, warning or error"
            )
        try:
            self.limits  # noqa: B018 (built now, so a bad limit stops start-up)
            self.file_limits  # noqa: B018
        except InvalidInputError as error:
            raise SettingsError(error.message) from None
        if set(self.admin_keys) & set(self.read_only_keys):
            raise SettingsError("a key is in both KB_API_KEYS and KB_READ_ONLY_API_KEYS")
        if self.job_stale_seconds < MIN_JOB_STALE_SECONDS:
            raise SettingsError(
                f"KB_JOB_STALE_SECONDS must be at least {MIN_JOB_STALE_SECONDS}: a job's "
                f"process writes its heartbeat every {JOB_HEARTBEAT_SECONDS:g} s"
            )
        if not 0 < self.port < 65536:
            raise SettingsError(f"KB_PORT={self.port} is not a TCP port")
        if self.backend == "memory" and self.workers != 1:
            raise SettingsError(
                f"KB_WORKERS={self.workers}: the memory backend keeps every knowledge base in "
                "one process's RAM, so each extra worker would hold a different copy and answer "
                "differently. Run one worker and raise KB_THREADS instead."
            )

    def _check_precision(self) -> None:
        """int8 is a quantised ONNX export: neither torch nor another device runs it."""
        if self.embedding_precision not in PRECISIONS:
            raise SettingsError(
                f"KB_EMBEDDING_PRECISION={self.embedding_precision!r}: choose one of "
                f"{', '.join(PRECISIONS)}"
            )
        if self.embedding_precision != "int8":
            return
        clash = (
            f"KB_EMBEDDING_RUNTIME={self.embedding_runtime}"
            if self.embedding_runtime == "torch"
            else f"KB_DEVICE={self.device}"
            if self.device != "cpu"
            else ""
        )
        if clash:
            raise SettingsError(
                f"KB_EMBEDDING_PRECISION=int8 is run by ONNX Runtime on the CPU, so it cannot go "
                f"with {clash}"
            )
        if self.embedding_precision in REFUSED_PRECISIONS and not self.embedding_precision_ungated:
            raise SettingsError(
                f"KB_EMBEDDING_PRECISION={self.embedding_precision} is not offered: "
                f"{REFUSED_PRECISIONS[self.embedding_precision]}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from KB_<FIELD> variables (e.g. KB_EMBEDDING_MODEL), else defaults."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in fields(cls):
            raw = environ.get(f"KB_{spec.name.upper()}")
            if raw is None or raw == "":
                continue
            if spec.type == "int":
                try:
                    values[spec.name] = int(raw)
                except ValueError:
                    raise SettingsError(
                        f"KB_{spec.name.upper()}={raw!r} is not a whole number"
                    ) from None
            else:
                values[spec.name] = raw.strip()
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @cached_property
    def limits(self) -> Limits:
        """The KB_MAX_* limits, each named by its variable (refusals tell what to raise)."""
        names = [each.name for each in fields(Limits)]  # top_k: KB_MAX_TOP_K in max_top_k
        return Limits(**{n: Limit(getattr(self, f"max_{n}"), f"KB_MAX_{n.upper()}") for n in names})

    @cached_property
    def file_limits(self) -> FileLimits:
        """The bounds on uploaded files (KB_MAX_FILE_BYTES, KB_EXTRACTION_SECONDS, ...)."""
        names = {each.name: _setting(each.name) for each in fields(FileLimits)}
        return FileLimits(
            **{n: Limit(getattr(self, s), f"KB_{s.upper()}") for n, s in names.items()}
        )

    @property
    def spool_dir(self) -> str | None:
        """Where archives spool on their way in and out: the data folder of the memory backend
        (its disk is sized for the data), else the system's temporary folder (None)."""
        if self.backend == "memory" and self.data_dir != ":memory:":
            return self.data_dir
        return None

    @property
    def admin_keys(self) -> tuple[str, ...]:
        return _split(self.api_keys)

    @property
    def read_only_keys(self) -> tuple[str, ...]:
        return _split(self.read_only_api_keys)

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        return _split(self.cors_origins)


def _setting(limit: str) -> str:
    """The field of FileLimits' `limit`: max_file_bytes for file_bytes, extraction_* as is."""
    return limit if limit.startswith("extraction") else f"max_{limit}"


def _split(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())
