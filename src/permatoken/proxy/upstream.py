"""The connection pool to the Graph API, and what a transport failure means for a request.

One ``httpx.AsyncClient`` per proxy (keep-alive, ``connections`` at most), created in the event
loop on first use and closed when the server stops. Transport failures are sorted by what they
say about the request, since only one of them makes a second attempt safe:

- no connection could be made (connect error or timeout, no free connection in time): nothing
  was sent → ``upstream_unreachable``;
- anything after that (the connection dropped, the answer was cut short or never came): the
  request may have been carried out → ``upstream_lost`` / ``upstream_timeout``, never replayed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from .errors import ProxyRefusal, Refusal, refuse

Body = bytes | AsyncIterator[bytes]


class Upstream:
    def __init__(
        self,
        base_url: str,
        *,
        connections: int = 100,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.connections = connections
        self.timeout = httpx.Timeout(timeout, connect=connect_timeout, pool=timeout)
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.timeout,
                limits=httpx.Limits(
                    max_connections=self.connections, max_keepalive_connections=self.connections
                ),
                follow_redirects=False,
                trust_env=False,  # the Graph URL is fixed: no proxy or netrc from the environment
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def url(self, path: str, query: bytes) -> str:
        return self.base_url + path + ("?" + query.decode("latin-1") if query else "")

    async def send(
        self, method: str, url: str, headers: list[tuple[bytes, bytes]], body: Body
    ) -> httpx.Response:
        """Meta's answer, its body not read yet; transport failures as refusals."""
        request = self.client.build_request(method, url, headers=headers, content=body)
        try:
            return await self.client.send(request, stream=True)
        except ProxyRefusal:
            raise  # the request body was refused while it streamed
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise unreachable(exc) from None
        except httpx.TransportError as exc:
            raise lost(exc) from None


def unreachable(exc: Exception) -> ProxyRefusal:
    return refuse(
        Refusal.UPSTREAM_UNREACHABLE,
        f"the Graph API could not be reached ({type(exc).__name__}); nothing was sent, "
        "so the request can be retried",
    )


def lost(exc: Exception) -> ProxyRefusal:
    if isinstance(exc, httpx.TimeoutException):
        return refuse(
            Refusal.UPSTREAM_TIMEOUT,
            "the Graph API did not answer in time after the request was sent; it may have been "
            "carried out, so it was not sent again: check before retrying",
        )
    return refuse(
        Refusal.UPSTREAM_LOST,
        f"the connection to the Graph API was lost after the request was sent "
        f"({type(exc).__name__}); it may have been carried out, so it was not sent again: "
        "check before retrying",
    )


__all__ = ["Body", "Upstream", "lost", "unreachable"]
