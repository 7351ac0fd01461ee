"""deploy/nginx.conf run as is by Debian's nginx, and raw HTTP clients for what the proxy stops.

Shared by tests/integration/test_proxy.py and bench/slow_clients.py.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import socket
import string
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from bench.service import free_port

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
NGINX = shutil.which("nginx") or next(
    (path for path in ("/usr/sbin/nginx",) if os.access(path, os.X_OK)), None
)


class Nginx:
    """deploy/nginx.conf itself (a link, not a copy) in a temporary prefix, forwarding to a port.

    Its two includes are rendered from deploy/templates/ the way the nginx image's envsubst step
    does in the compose stacks, with 127.0.0.1 ports instead of the service name.
    """

    def __init__(self, upstream_port: int) -> None:
        self.port = free_port()
        # Not under pytest's private tmp folder: nginx's workers run as another user under
        # root and write request bodies into client_temp/ here.
        self.prefix = Path(tempfile.mkdtemp(prefix="kb-nginx-"))
        self.prefix.chmod(0o755)
        (self.prefix / "nginx.conf").symlink_to(DEPLOY / "nginx.conf")
        self._render("kb-upstream.conf", KB_UPSTREAM=f"127.0.0.1:{upstream_port}")
        self._render("kb-listen.conf", KB_PROXY_LISTEN=f"127.0.0.1:{self.port}")
        self.log_path = self.prefix / "nginx.log"
        self.process: subprocess.Popen[bytes] | None = None

    def _render(self, name: str, **values: str) -> None:
        template = (DEPLOY / "templates" / f"{name}.template").read_text()
        (self.prefix / name).write_text(string.Template(template).substitute(values))

    def command(self, *extra: str) -> list[str]:
        assert NGINX is not None
        config = str(self.prefix / "nginx.conf")
        prefix = f"{self.prefix}/"
        return [NGINX, "-p", prefix, "-c", config, "-e", "stderr", "-g", "daemon off;", *extra]

    def check(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)

    def start(self, timeout: float = 15) -> None:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.log_path.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.1)
        raise TimeoutError(f"nginx did not listen: {self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.prefix, ignore_errors=True)


# What a slow client sends at once, before its one byte a second: a request line and the start
# of a header, or whole headers and the start of a JSON body the service reads.
OPENINGS = {
    "header": b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: ",
    "body": b"POST /v1/knowledge-bases HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json"
    b"\r\nContent-Length: 100000\r\n\r\n{",
}


class SlowClients:
    """`count` connections that send an opening (OPENINGS[part]), then one byte a second.

    The trickle stops after `seconds` at most; leaving the `with` block closes every socket.
    """

    def __init__(self, port: int, count: int, seconds: float = 60, part: str = "header") -> None:
        self.port, self.count, self.seconds = port, count, seconds
        self.opening = OPENINGS[part]
        self.sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)

    def __enter__(self) -> SlowClients:
        for _ in range(self.count):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            self.sockets.append(sock)
            sock.sendall(self.opening)
        self._thread.start()
        return self

    def _trickle(self) -> None:
        deadline = time.monotonic() + self.seconds
        while not self._stop.wait(1.0) and time.monotonic() < deadline:
            for sock in self.sockets:
                with contextlib.suppress(OSError):  # the server may drop a slow client: fine
                    sock.send(b" ")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in self.sockets:
            sock.close()


def healthz(port: int, timeout: float = 3.0) -> int | None:
    """The status of GET /healthz, or None when no answer came within `timeout` seconds."""
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except TimeoutError:
        return None
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            return None
        raise


class Answer:
    """An HTTP answer read off a raw socket, shaped like Flask's test response for assert_error."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status_code = response.status
        self.headers = response.headers
        self.data = response.read()
        self.is_json = (response.getheader("Content-Type") or "").startswith("application/json")

    def get_json(self) -> object:
        return json.loads(self.data)

    def get_data(self, as_text: bool = False) -> str | bytes:
        return self.data.decode(errors="replace") if as_text else self.data


def wait_until_healthy(port: int, seconds: float = 120) -> None:
    """Poll /healthz until it answers 200; TimeoutError after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if healthz(port) == 200:
            return
        time.sleep(0.5)
    raise TimeoutError(f"/healthz on port {port} did not answer again within {seconds} s")


def send_raw(port: int, head: bytes, body: bytes = b"") -> Answer:
    """Send bytes as they are (no client library tidies them up) and read one answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return Answer(response)
