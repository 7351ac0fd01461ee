"""Starting the real service (`kb serve`, gunicorn) in a subprocess for end-to-end tests."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

KB = str(Path(sys.executable).with_name("kb"))
# The checkout these tests belong to: a server subprocess runs its code, not whatever checkout
# the virtualenv's editable install points at (a second work tree shares one virtualenv).
SOURCE = Path(__file__).resolve().parents[1] / "src"
TESTS = Path(__file__).resolve().parent
# `Server(..., app=FAKE_APP)`: the real gunicorn and configuration, serving the fake embedder.
FAKE_APP = "fake_wsgi:app"
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "python:entrypoints.gunicorn_config"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    paths = [str(SOURCE), str(TESTS), *filter(None, [env.get("PYTHONPATH")])]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(settings)
    return env


class Server:
    """A `kb serve` process on a free port; `call` speaks JSON to it.

    With `app`, gunicorn runs with the same configuration but serves that WSGI object instead.
    """

    def __init__(self, log_path: Path, app: str | None = None, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings.setdefault("KB_DATA_DIR", str(log_path.with_suffix(".data")))
        env = server_env(KB_PORT=str(self.port), KB_LOG_LEVEL="info", **settings)
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        # A session of its own, so `crash()` can SIGKILL the master and its worker together.
        command = [KB, "serve"] if app is None else [*GUNICORN, app]
        self.process = subprocess.Popen(
            command, env=env, stdout=self._log, stderr=self._log, start_new_session=True
        )

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if self.call("GET", "/readyz")[0] == 200:
                    return
            # Refused, or cut off by a worker that died while answering: not ready (yet).
            except (urllib.error.URLError, ConnectionError, http.client.HTTPException):
                pass
            time.sleep(0.2)
        raise TimeoutError("server did not become ready")

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def crash(self) -> None:
        """SIGKILL every process of the server at once: no shutdown code runs."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
