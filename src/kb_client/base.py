"""What every group of KBClient's calls shares: the transport, closing, and one JSON call."""

from __future__ import annotations

from typing import Any, Self

from kb_client.transport import Transport


class ClientBase:
    """A kb-service at `url`; `api_key` is sent as `Authorization: Bearer <key>`."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:8000",
        api_key: str | None = None,
        *,
        timeout: float = 120.0,
        retries: int = 4,
        backoff: float = 0.5,
        transport: Transport | None = None,
    ) -> None:
        self.transport = transport or Transport(
            url, api_key, timeout=timeout, retries=retries, backoff=backoff
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    @property
    def url(self) -> str:
        return self.transport.url

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.transport.request(method, path, **kwargs)
        return response.json() if response.content else None
