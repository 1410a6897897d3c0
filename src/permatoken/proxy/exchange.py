"""The bytes of one proxied exchange: reading the client's body, streaming it on, reading Meta's
answer, and the proxy's own answers. Small functions over ASGI messages; no shared state.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from ..meta.errors import ErrorKind, GraphErrorInfo, classify_graph_error
from . import multipart
from .errors import ProxyRefusal, Refusal, refuse
from .pacing import ClientGone
from .upstream import Answer, TransportError, lost

log = logging.getLogger("permatoken.proxy")


class Send:
    def __init__(self, send: Any) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


def header(raw: list[tuple[bytes, bytes]], name: bytes) -> str:
    for key, value in raw:
        if key == name:
            return value.decode("latin-1")
    return ""


def content_length(value: str) -> int | None:
    return int(value) if value.strip().isdigit() else None


def too_large(limit: int) -> ProxyRefusal:
    return refuse(Refusal.BODY_TOO_LARGE, f"request bodies are limited to {limit} bytes")


def key_too_late(limit: int) -> ProxyRefusal:
    return refuse(
        Refusal.KEY_TOO_LATE,
        f"no access token in the first {limit} bytes of this large form: send the key in the "
        "Authorization header (or as the form's first field) when uploading a file",
    )


async def answer_with(send: Send, refusal: ProxyRefusal) -> None:
    if send.started:
        log.warning("graph proxy: %s after the answer started", refusal.reason.value)
        return
    body = refusal.body()
    await send(
        {
            "type": "http.response.start",
            "status": refusal.status,
            "headers": refusal.raw_headers(len(body)),
        }
    )
    await send({"type": "http.response.body", "body": body})


async def read_prefix(receive: Any, limit: int) -> tuple[bytes, bool]:
    """The body up to just past ``limit`` bytes, and whether more is coming."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = bool(message.get("more_body", False))
        if not more or size > limit:
            return b"".join(chunks), more


async def stream_body(
    first: bytes,
    more: bool,
    receive: Any,
    watcher: multipart.Watcher | None,
    limit: int,
    size: int,
) -> AsyncIterator[bytes]:
    """A streamed body: the (checked) beginning, then the rest as it arrives, checked chunk by
    chunk; raising here abandons the upstream request before the offending chunk leaves."""
    yield first
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        more = bool(message.get("more_body", False))
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        if watcher is not None and watcher.feed(chunk):
            raise refuse(
                Refusal.DUPLICATE_KEY,
                "the form holds an access_token (or appsecret) field after its file: "
                "send the key once, in the Authorization header",
            )
        if chunk:
            yield chunk


async def hung_up(receive: Any) -> None:
    """Returns once the client hangs up (after the whole body was read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def read_answer(response: Answer, limit: int) -> tuple[bytes, AsyncIterator[bytes] | None]:
    """Meta's answer up to ``limit`` bytes, and the rest still to stream (None: all read)."""
    chunks: list[bytes] = []
    size = 0
    rest = aiter(response.stream)
    try:
        async for chunk in rest:
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                return b"".join(chunks), rest
    except TransportError as exc:
        raise lost(exc) from None
    return b"".join(chunks), None


def dead_token(
    response: Answer, answer: bytes, rest: AsyncIterator[bytes] | None
) -> GraphErrorInfo | None:
    if response.status < 400 or rest is not None:
        return None
    info = classify_graph_error(response.status, response.header_map(), answer)
    return info if info.kind is ErrorKind.TOKEN_DEAD else None


__all__ = [
    "Send",
    "answer_with",
    "content_length",
    "dead_token",
    "header",
    "hung_up",
    "key_too_late",
    "read_answer",
    "read_prefix",
    "stream_body",
    "too_large",
]
