"""HTTP with retries: exponential backoff on 429/503 and on connection errors when safe."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
from urllib3.exceptions import NewConnectionError

from kb_client.errors import KBConnectionError, KBError, error_for
from kb_client.uploads import Upload

RETRY_STATUSES = frozenset({429, 503})


def retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # absent, or an HTTP date, which this service never sends


def nothing_was_sent(error: requests.ConnectionError) -> bool:
    """True when the connection was never made, so even a non-idempotent call may be retried."""
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(error, requests.ConnectTimeout) or isinstance(reason, NewConnectionError)


def short_reason(error: Exception) -> str:
    """ "[Errno 111] Connection refused" rather than urllib3's paragraph around it."""
    text = str(error)
    match = re.search(r"\[Errno -?\d+\] [^'\")]+", text)
    return match.group(0).strip() if match else text


class Transport:
    """A `requests.Session` bound to one service URL and key, retrying what can be retried."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 120.0,
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.session = session or requests.Session()
        self.session.headers["Accept"] = "application/json"
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"
        self._sleep = sleep

    def delay(self, attempt: int, hint: float | None = None) -> float:
        """Exponential backoff with jitter; the service's Retry-After wins when it says more."""
        base = min(self.max_backoff, self.backoff * 2.0**attempt)
        jittered = base / 2 + random.uniform(0, base / 2)
        return min(self.max_backoff, max(jittered, hint or 0.0))

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
        body: Upload | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        files: Any = None,
        form: Mapping[str, Any] | None = None,
    ) -> requests.Response:
        """Send, retrying 429/503 always and connection errors when `idempotent` (or unsent).

        A streamed `body` is retried only while it can be sent again from its start (a file,
        not another service's download of which bytes have gone). With `stream` the caller
        reads the response's body, and closes the response. `files` and `form` make a
        multipart/form-data body (as requests' `files` and `data`), sent again on a retry.
        """
        if idempotent is None:
            idempotent = method in {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}
        url = self.url + path
        attempt = 0
        while True:
            try:
                # Never followed: a redirected call would act on a resource it did not name.
                response = self.session.request(
                    method,
                    url,
                    json=json,
                    params=params,
                    data=form if body is None else body.stream(),
                    files=files,
                    headers=headers,
                    stream=stream,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.ConnectionError as error:
                resendable = body is None or body.may_resend()
                if (
                    attempt < self.retries
                    and resendable
                    and (idempotent or nothing_was_sent(error))
                ):
                    self._sleep(self.delay(attempt))
                    attempt += 1
                    continue
                raise KBConnectionError(
                    f"cannot reach kb-service at {self.url} ({short_reason(error)})"
                ) from None
            except requests.Timeout as error:
                raise KBConnectionError(f"kb-service at {self.url} timed out: {error}") from None
            except requests.RequestException as error:  # a malformed URL, mostly
                raise KBConnectionError(f"cannot call {url}: {error}") from None
            resendable = body is None or body.may_resend()
            if response.status_code in RETRY_STATUSES and attempt < self.retries and resendable:
                response.close()
                self._sleep(self.delay(attempt, retry_after_seconds(response)))
                attempt += 1
                continue
            if response.status_code >= 300:
                with response:
                    raise self.error(response)
            return response

    def error(self, response: requests.Response) -> KBError:
        if response.is_redirect:
            where = response.headers.get("Location", "")
            return KBError(
                f"redirected to {where!r}, not followed: is {self.url} the service's URL?",
                status=response.status_code,
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        return error_for(response.status_code, body, response.text, retry_after_seconds(response))

    def close(self) -> None:
        self.session.close()
