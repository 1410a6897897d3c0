"""Large bodies: streamed to Meta as they arrive, never buffered whole, never sent twice."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from _live_sandbox import ThreadSandbox
from permatoken.settings import ProxySettings

from .conftest import Proxied, until

MEDIA = "POST /{phone-number-id}/media"
BOUNDARY = "permatokenTestBoundary7"
MB = 1024 * 1024


class _Counting:
    """Around the sandbox: how many bytes of media uploads it has received so far."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.received = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/media"):
            await self.app(scope, receive, send)
            return

        async def counting() -> Any:
            message = await receive()
            self.received += len(message.get("body", b""))
            return message

        await self.app(scope, counting, send)


@pytest.fixture
def sandbox() -> Iterator[ThreadSandbox]:
    with ThreadSandbox(wrap=_Counting) as server:
        yield server


def _upload(proxied: Proxied, data: bytes, *, hold_until: Any = None) -> httpx.Response:
    """A multipart upload of ``data`` whose second half is sent only once ``hold_until()``."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="messaging_product"\r\n\r\n'
        f'whatsapp\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="type"\r\n\r\n'
        f'video/mp4\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="clip.mp4"\r\nContent-Type: video/mp4\r\n\r\n'
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    half = len(data) // 2

    def body() -> Iterator[bytes]:
        yield head
        for i in range(0, half, 64 * 1024):
            yield data[i : min(i + 64 * 1024, half)]
        if hold_until is not None:
            until(hold_until, timeout=30)
        for i in range(half, len(data), 64 * 1024):
            yield data[i : i + 64 * 1024]
        yield tail

    return proxied.client().post(
        f"/v25.0/{proxied.phone_id}/media",
        content=body(),
        headers={
            "content-type": f"multipart/form-data; boundary={BOUNDARY}",
            "content-length": str(len(head) + len(data) + len(tail)),
        },
    )


def _counter(sandbox: ThreadSandbox) -> _Counting:
    return sandbox.server.config.app  # type: ignore[no-any-return]


def test_an_upload_of_several_mb_is_streamed(proxied: Proxied, sandbox: ThreadSandbox):
    """Meta has received megabytes of the file before the client sends its second half."""
    data = hashlib.sha256(b"seed").digest() * (6 * MB // 32)
    r = _upload(proxied, data, hold_until=lambda: _counter(sandbox).received >= 2 * MB)
    assert r.status_code == 200, r.text
    [media] = proxied.state.media()
    assert media["id"] == r.json()["id"]
    assert (media["size"], media["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())


def test_a_dead_token_during_a_streamed_upload_passes_the_190_through(proxied: Proxied):
    """No replay of a streamed body: the 190 comes back, the version is reported (one mint), and
    the next upload goes out with the new token."""
    proxied.revoke()
    data = b"\x01" * (3 * MB)
    r = _upload(proxied, data)
    assert r.json()["error"]["code"] == 190
    assert [c["status"] for c in proxied.state.calls(MEDIA)] == [r.status_code]
    assert proxied.mints() == 1 and proxied.state.media() == []
    r = _upload(proxied, data)
    assert r.status_code == 200, r.text
    assert [c["error_code"] for c in proxied.state.calls(MEDIA)] == [190, None]
    assert proxied.mints() == 1


@pytest.mark.parametrize("proxy_settings", [ProxySettings(replay_bytes=64 * MB)])
def test_a_buffered_upload_is_replayed_after_a_dead_token(proxied: Proxied):
    """The same upload under the replay limit: sent again with the new token, once."""
    proxied.revoke()
    r = _upload(proxied, b"\x02" * (3 * MB))
    assert r.status_code == 200, r.text
    assert [c["error_code"] for c in proxied.state.calls(MEDIA)] == [190, None]
    assert len(proxied.state.media()) == 1 and proxied.mints() == 1
