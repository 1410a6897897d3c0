"""``appsecret_proof`` for the real token, from the app the credential belongs to.

The client's own proof (if any) was computed over its API key and is dropped. When the
credential names an app whose secret permatoken holds, every forwarded request carries the proof
of the token actually sent: the classic form, or the time-stamped one (``appsecret_time``) when
the client asked for that form by sending an ``appsecret_time`` of its own. Without a known app
the request goes without a proof, as it would from a client that has no secret.

App secrets are read from the store once per credential and kept for ``ttl`` seconds
(concurrent first requests share one read).
"""

from __future__ import annotations

import asyncio
import time

from starlette.concurrency import run_in_threadpool

from .._exceptions import NotFoundError
from .._secret import Secret
from ..meta.proof import appsecret_proof, appsecret_proof_timed
from ..store import Store
from .keys import PROOF, PROOF_TIME


class Signer:
    def __init__(self, store: Store, *, ttl: float = 60.0) -> None:
        self.store = store
        self.ttl = ttl
        self._secrets: dict[str, tuple[Secret | None, float]] = {}
        self._loading: dict[str, asyncio.Future[Secret | None]] = {}

    def forget(self, name: str | None = None) -> None:
        if name is None:
            self._secrets.clear()
        else:
            self._secrets.pop(name, None)

    async def secret(self, name: str) -> Secret | None:
        """The app secret of ``name``'s app, None if it has none registered."""
        hit = self._secrets.get(name)
        if hit is not None and time.monotonic() - hit[1] < self.ttl:
            return hit[0]
        pending = self._loading.get(name)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Secret | None] = asyncio.get_running_loop().create_future()
        self._loading[name] = future
        try:
            value = await run_in_threadpool(self._load, name)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it, nobody is warned about it
            raise
        finally:
            self._loading.pop(name, None)
        if len(self._secrets) > 100_000:
            self._secrets.clear()
        self._secrets[name] = (value, time.monotonic())
        future.set_result(value)
        return value

    def _load(self, name: str) -> Secret | None:
        app_id = self.store.get(name).app_id
        if not app_id:
            return None
        try:
            return self.store.app_secret(app_id)
        except NotFoundError:
            return None

    @staticmethod
    def params(token: Secret, secret: Secret | None, *, timed: bool) -> bytes:
        """The query parameters that sign ``token`` (empty without an app secret)."""
        if secret is None:
            return b""
        if timed:
            proof, at = appsecret_proof_timed(secret, token, int(time.time()))
            return f"{PROOF}={proof}&{PROOF_TIME}={at}".encode()
        return f"{PROOF}={appsecret_proof(secret, token)}".encode()


def with_params(query: bytes, extra: bytes) -> bytes:
    if not extra:
        return query
    return query + b"&" + extra if query else extra


__all__ = ["Signer", "with_params"]
