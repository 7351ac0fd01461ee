"""The stateful test's service: real gunicorn with the fake embedder, stopped and killed at will."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import postgres
from model_folder import l6_folder
from server import FAKE_APP, Server

STOPS = ("SIGTERM", "SIGINT", "SIGKILL")
STOP_WAIT = 90


class Answer(NamedTuple):
    status: int
    body: Any
    location: str | None


def document_path(kb: str, doc_id: str) -> str:
    """Every character percent-encoded, '/' too; a lone surrogate as the bytes it would be."""
    encoded = quote(doc_id.encode("utf-8", "surrogatepass"), safe="")
    return f"/v1/knowledge-bases/{kb}/documents/{encoded}"


class Service:
    """One backend's `kb` process; `fresh()` empties it for the next example (reused if sound)."""

    def __init__(
        self, backend: str, folder: Path, thresholds: dict[str, str] | None = None
    ) -> None:
        self.backend = backend
        self.thresholds = thresholds or {}  # KB_ANN_THRESHOLD, KB_COMPRESS_THRESHOLD
        self.folder = folder
        self.database_url = postgres.database_url() if backend == "postgres" else ""
        self.server: Server | None = None
        self.starts = 0
        self.stores = 0
        self.log_path = folder / "none.log"
        self.killed_on_stop: list[str] = []  # stops where gunicorn had to SIGKILL the worker

    def settings(self) -> dict[str, str]:
        settings = {
            # Only read by gunicorn's start-up check that the model folder exists: the worker
            # embeds with the fake embedder (tests/fake_wsgi.py).
            "KB_EMBEDDING_MODEL": l6_folder(),
            "KB_DATA_DIR": str(self.folder / f"store{self.stores}"),
            "KB_THREADS": "4",
            **self.thresholds,
        }
        if self.backend == "postgres":
            settings.update(KB_BACKEND="postgres", KB_DATABASE_URL=self.database_url)
        return settings

    def start(self) -> None:
        self.starts += 1
        self.log_path = self.folder / f"start{self.starts}.log"
        self.server = Server(self.log_path, app=FAKE_APP, **self.settings())
        try:
            self.server.wait_ready(60)
        except Exception as error:
            tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-12:])
            message = f"the service did not start ({error!r}); its log ends:\n{tail}"
            raise AssertionError(message) from error

    def restart(self, how: str) -> None:
        """SIGTERM: gunicorn's graceful stop; SIGINT: its quick stop; SIGKILL: a crash."""
        assert self.server is not None
        if how == "SIGKILL":
            self.server.crash()
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.server.process.pid, getattr(signal, how))
            # The master ends within its graceful timeout (30 s) whatever the worker does.
            self.server.process.wait(STOP_WAIT)
            self.server.stop()
            if "was sent SIGKILL" in self.log_path.read_text(errors="replace"):
                # Reported after the run (see the test), not here: it happens at random moments,
                # and Hypothesis cannot shrink a failure that a replay does not repeat.
                self.killed_on_stop.append(f"{how}: {self.log_path}")
        self.start()

    def fresh(self) -> None:
        """An empty service: the running one emptied over HTTP, else a new store and process."""
        if self.server is not None and self.server.process.poll() is None:
            with contextlib.suppress(OSError, http.client.HTTPException):
                for kb in self.call("GET", "/v1/knowledge-bases?limit=1000").body["items"]:
                    self.call("DELETE", f"/v1/knowledge-bases/{kb['name']}")
                if self.call("GET", "/v1/knowledge-bases").body["items"] == []:
                    return
        self.close()
        self.stores += 1
        if self.backend == "postgres":
            postgres.clean(self.database_url)
        self.start()

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def walk(self, path: str, limit: int) -> list[dict[str, Any]]:
        """Every item of a paginated listing, following next_cursor."""
        items: list[dict[str, Any]] = []
        cursor = ""
        for _ in range(1000):
            page = expect(self.call("GET", f"{path}?limit={limit}{cursor}"), 200)
            items += page["items"]
            if page.get("next_cursor") is None:
                return items
            cursor = f"&cursor={quote(page['next_cursor'], safe='')}"
        raise AssertionError(f"{path} never reached its last page")

    def call(self, method: str, path: str, body: Any = None) -> Answer:
        """One request on a new connection; NaN and infinities go out as Python writes them."""
        assert self.server is not None
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = {} if data is None else {"Content-Type": "application/json"}
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Answer(response.status, parsed, response.getheader("Location"))


class WrongStatusError(AssertionError):
    """An answer with a status the model did not expect."""


# One subclass per rule: Hypothesis tells failures apart by exception type and line, so each
# rule's wrong answers are reported (and shrunk) as a bug of their own, not just the shortest.
WRONG_STATUS: dict[str, type[WrongStatusError]] = {}


def expect(answer: Answer, *statuses: int) -> Any:
    """The answer's body if its status is one of `statuses`, else a WrongStatusError."""
    if answer.status not in statuses:
        rule = sys._getframe(1).f_code.co_name
        error = WRONG_STATUS.setdefault(
            rule, type(f"WrongStatusIn_{rule}", (WrongStatusError,), {})
        )
        redirect = f" (redirected to {answer.location})" if answer.location else ""
        wanted = " or ".join(map(str, statuses))
        raise error(f"answered {answer.status}{redirect}, expected {wanted}: {answer.body!r}")
    return answer.body
