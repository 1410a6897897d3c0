"""The connection pool to the Graph API, and what a transport failure means for a request.

One ``httpcore.AsyncConnectionPool`` per proxy (keep-alive, ``connections`` at most, idle ones
closed after 4 s), created in the event loop on first use and closed when the server stops. The
proxy already holds checked bytes (path, query, headers), so it talks to httpcore directly:
httpx's request building, URL re-parsing and cookie handling were most of the proxy's own cost.

Transport failures are sorted by what they say about the request, since only one of them makes
a second attempt safe:

- no connection could be made (connect error or timeout, no free connection in time): nothing
  was sent → ``upstream_unreachable``;
- anything after that (the connection dropped, the answer was cut short or never came): the
  request may have been carried out → ``upstream_lost`` / ``upstream_timeout``, never replayed.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from urllib.parse import urlsplit

import httpcore

from .errors import ProxyRefusal, Refusal, refuse

Body = bytes | AsyncIterator[bytes]
#: Below the 5 s idle timeout of common servers (uvicorn's, the sandbox's): a request sent on a
#: connection the server is closing would be an unknown outcome.
KEEPALIVE_EXPIRY = 4.0
#: What a failure of the transport means for the request (see the module docstring).
TransportError = (httpcore.NetworkError, httpcore.TimeoutException, httpcore.ProtocolError)
_NOT_SENT = (httpcore.ConnectError, httpcore.ConnectTimeout, httpcore.PoolTimeout)


class Answer:
    """Meta's answer: status and raw headers at once, the body as it arrives."""

    def __init__(self, response: httpcore.Response) -> None:
        self._response = response
        self.status = response.status
        self.headers: list[tuple[bytes, bytes]] = response.headers
        stream = response.stream
        assert isinstance(stream, AsyncIterable)
        self.stream: AsyncIterable[bytes] = stream

    def header(self, name: bytes) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value.decode("latin-1")
        return None

    def header_map(self) -> dict[str, str]:
        return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self.headers}

    async def aclose(self) -> None:
        await self._response.aclose()


class Upstream:
    def __init__(
        self,
        base_url: str,
        *,
        connections: int = 100,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url
        self.connections = connections
        self.timeouts = {
            "connect": connect_timeout,
            "read": timeout,
            "write": timeout,
            "pool": timeout,
        }
        self._pool: httpcore.AsyncConnectionPool | None = None

    @property
    def base_url(self) -> str:
        return self._base

    @base_url.setter
    def base_url(self, value: str) -> None:
        parts = urlsplit(value.rstrip("/"))
        self._base = value.rstrip("/")
        self._scheme = parts.scheme.encode()
        self._host = (parts.hostname or "").encode("idna")
        self._port = parts.port
        self._prefix = parts.path.encode()
        default = 443 if parts.scheme == "https" else 80
        self._host_header = parts.netloc.rpartition("@")[2].encode("idna")
        if parts.port == default:
            self._host_header = self._host

    @property
    def pool(self) -> httpcore.AsyncConnectionPool:
        if self._pool is None:
            self._pool = httpcore.AsyncConnectionPool(
                max_connections=self.connections,
                max_keepalive_connections=self.connections,
                keepalive_expiry=KEEPALIVE_EXPIRY,
            )
        return self._pool

    async def aclose(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.aclose()

    def target(self, path: str, query: bytes) -> bytes:
        return self._prefix + path.encode("ascii") + (b"?" + query if query else b"")

    async def send(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: Body,
        length: int | None,
    ) -> Answer:
        """Meta's answer, its body not read yet; transport failures as refusals."""
        framing: list[tuple[bytes, bytes]]
        if isinstance(body, bytes):
            framing = (
                [(b"content-length", str(len(body)).encode())] if body or method == "POST" else []
            )
        elif length is not None:
            framing = [(b"content-length", str(length).encode())]
        else:
            framing = [(b"transfer-encoding", b"chunked")]
        request = httpcore.Request(
            method.encode(),
            httpcore.URL(scheme=self._scheme, host=self._host, port=self._port, target=target),
            headers=[(b"host", self._host_header), *headers, *framing],
            content=body,
            extensions={"timeout": self.timeouts},
        )
        try:
            return Answer(await self.pool.handle_async_request(request))
        except ProxyRefusal:
            raise  # the request body was refused while it streamed
        except _NOT_SENT as exc:
            raise unreachable(exc) from None
        except TransportError as exc:
            raise lost(exc) from None


def unreachable(exc: Exception) -> ProxyRefusal:
    return refuse(
        Refusal.UPSTREAM_UNREACHABLE,
        f"the Graph API could not be reached ({type(exc).__name__}); nothing was sent, "
        "so the request can be retried",
    )


def lost(exc: Exception) -> ProxyRefusal:
    if isinstance(exc, httpcore.TimeoutException):
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


__all__ = ["Answer", "Body", "TransportError", "Upstream", "lost", "unreachable"]
