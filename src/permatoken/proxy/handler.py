"""The Graph proxy's ASGI handler: ``/graph/{credential-name}/-/{graph-path}`` on ``serve``.

One request, in order:

1. the target (name, Graph path) is checked from the raw URL (:mod:`.target`);
2. the body is read up to ``replay_bytes``: a body that ends there is *buffered* (it can be sent
   twice), a longer one is *streamed* (forwarded as it arrives, never sent twice);
3. the API key is found in exactly one place (:mod:`.keys`) and checked as the broker checks it
   (same key cache, same failed-authentication throttle), then the grant (``read_token`` on the
   name);
4. the credential's current token comes from the broker's token cache; if a report of that
   version is already under way, the request waits for it and takes the next version. A token
   whose stored health is ``invalid`` or ``expired`` is dead before it is sent: it is reported
   through the same single-flight path as in 7, and without a usable next version the request
   is refused (``token_dead``, code 190) and never reaches Meta;
5. Cloud API sends wait for their pacing turn (:mod:`.pacing`);
6. the request goes to ``PERMATOKEN_GRAPH_URL`` with the token, ``appsecret_proof`` of it, the
   client's end-to-end headers and its body (:mod:`.headers`, :mod:`.signing`);
7. an answer Meta's classifier calls ``token_dead`` is reported through the same single-flight
   path as ``POST /v1/reports``; a buffered request is then sent once more with the next version,
   a streamed one gets the 190 as it is. Nothing else is ever sent twice;
8. Meta's answer goes back as it came (status, headers, body), the token masked if Meta echoed it.

Refusals of the proxy's own are Graph-shaped (:mod:`.errors`). Concurrency: everything shared
(key cache, token cache, report futures, pacing) is only touched from the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.routing import Route

from .._exceptions import NotFoundError, PermatokenError
from ..access import Action, Principal
from ..meta.errors import GraphErrorInfo, classify_graph_error
from ..models import Health
from ..server.broker import Broker
from ..server.cache import CacheEntry
from ..server.errors import ApiError
from ..server.reports import Reported, report_failure
from ..settings import ProxySettings
from ..store.audit import AuditRecord
from ..vocabulary import ReportStatus
from . import keys, multipart
from .errors import ProxyRefusal, Refusal, from_broker, refuse
from .exchange import (
    Send,
    answer_with,
    content_length,
    dead_token,
    header,
    hung_up,
    key_too_late,
    read_answer,
    read_prefix,
    stream_body,
    too_large,
)
from .headers import Mask, request_headers, response_headers
from .observe import Outcome, ProxyMetrics, Recovery, outcome_of
from .pacing import ClientGone, Pacer
from .signing import Signer, with_params
from .target import Target, message_sender, parse_target
from .upstream import Answer, TransportError, Upstream

log = logging.getLogger("permatoken.proxy")
METHODS = frozenset({"GET", "POST", "DELETE"})
#: Stored health values that mean Meta will answer 190 to the current token.
DEAD_HEALTH = frozenset({Health.INVALID.value, Health.EXPIRED.value})
_UPSTREAM = frozenset(
    {Refusal.UPSTREAM_UNREACHABLE, Refusal.UPSTREAM_LOST, Refusal.UPSTREAM_TIMEOUT}
)


@dataclass
class _Seen:
    """What one request revealed so far (for metrics and the audit record)."""

    source: str
    p: Principal | None = None
    name: str | None = None
    version: int = 0


class GraphProxy:
    def __init__(self, broker: Broker, settings: ProxySettings, graph_url: str) -> None:
        self.b = broker
        self.settings = settings
        self.upstream = Upstream(
            graph_url,
            connections=settings.connections,
            timeout=settings.timeout,
            connect_timeout=settings.connect_timeout,
        )
        rate = settings.messages_per_second
        self.pacer = Pacer(rate, settings.pacing_max_wait) if rate > 0 else None
        self.signer = Signer(broker.store)
        self.metrics = ProxyMetrics(
            broker.metrics.registry, lambda: self.pacer.waiting if self.pacer else 0
        )
        self._closer: asyncio.Task[None] | None = None

    def route(self) -> Route:
        # No method list: a method the proxy does not forward gets a Graph-shaped 405 here.
        return Route("/graph/{path:path}", self)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self._close_with_server()
        out = Send(send)
        seen = _Seen(self.b.addresses.of(scope))
        try:
            outcome = await self._proxy(scope, receive, out, seen)
        except ProxyRefusal as refusal:
            outcome = _refusal_outcome(refusal)
            await answer_with(out, refusal)
        except ClientGone:
            outcome = Outcome.ABANDONED
        except Exception as exc:
            log.error("graph proxy: internal error %s", type(exc).__name__, exc_info=True)
            outcome = Outcome.ERROR
            await answer_with(out, refuse(Refusal.INTERNAL_ERROR, "internal error; see the log"))
        self.metrics.count(outcome)
        if seen.p is not None and seen.name is not None:
            try:
                self.b.recorder.add_read(
                    seen.p.actor,
                    seen.name,
                    seen.source,
                    seen.version,
                    action="graph.request",
                    result=outcome.value,
                )
            except ApiError:
                log.warning("graph proxy: audit backlog full, a request was not recorded")

    # --- one request ------------------------------------------------------------------------
    async def _proxy(self, scope: Any, receive: Any, send: Send, seen: _Seen) -> Outcome:
        method: str = scope["method"]
        if method not in METHODS:
            raise refuse(Refusal.BAD_METHOD, f"{method} is not forwarded (GET, POST, DELETE)")
        raw_path = scope.get("raw_path") or quote(scope["path"]).encode()
        target = parse_target(raw_path, scope.get("query_string", b""))
        raw = scope["headers"]
        content_type = header(raw, b"content-type")
        declared = content_length(header(raw, b"content-length"))
        limit = self.settings.max_body_bytes
        if declared is not None and declared > limit:
            raise too_large(limit)

        prefix, more = await read_prefix(receive, self.settings.replay_bytes)
        buffered = not more and len(prefix) <= self.settings.replay_bytes
        found = keys.Found()
        keys.from_headers([v for k, v in raw if k == b"authorization"], found)
        query = keys.from_query(target.query, found)
        boundary = multipart.boundary_of(content_type)
        if buffered:
            body = keys.from_body(prefix, content_type, found)
        elif boundary is not None:
            body = keys.from_form_prefix(prefix, boundary, found)
            if not found.keys:
                raise key_too_late(self.settings.replay_bytes)
        else:
            body = prefix
        p = await self._authenticate(found.key(), seen)
        self._check_grant(scope, p, target, seen)
        if len(self.b.recorder) >= self.b.recorder.max_backlog:
            raise refuse(Refusal.UNAVAILABLE, "the audit log cannot be written right now")

        watcher = None
        if not buffered and boundary is not None:
            watcher = multipart.Watcher(boundary, keys.AUTH_PARAMS)
            if watcher.feed(body):
                raise key_too_late(self.settings.replay_bytes)
        length = None if declared is None else declared - (len(prefix) - len(body))
        disconnected = (lambda: hung_up(receive)) if buffered else None
        phone = message_sender(method, target.path)
        entry = await self._alive(p, await self._current(target.name), seen.source)

        def content() -> bytes | AsyncIterator[bytes]:
            if buffered:
                return body
            return stream_body(body, more, receive, watcher, limit, len(prefix))

        response, used = await self._send(
            method, target, query, raw, content(), length, entry, found.timed, phone, disconnected
        )
        seen.version = used.version
        try:
            answer, rest = await read_answer(response, self.settings.replay_bytes)
            info = dead_token(response, answer, rest)
            if info is None:
                return await self._pass(send, response, answer, rest, [used])
            fresh = await self._recover(p, target.name, used, info, seen.source)
            if fresh is None or not buffered:
                self.metrics.recovered(
                    Recovery.FAILED if fresh is None else Recovery.NOT_REPLAYABLE
                )
                return await self._pass(send, response, answer, rest, [used])
        finally:
            await response.aclose()
        # Once more, with the next version: only a buffered body, and only after a dead token.
        assert fresh is not None
        self.metrics.recovered(Recovery.REPLAYED)
        response, used = await self._send(
            method, target, query, raw, body, length, fresh, found.timed, phone, disconnected
        )
        seen.version = used.version
        try:
            answer, rest = await read_answer(response, self.settings.replay_bytes)
            outcome = await self._pass(send, response, answer, rest, [entry, used])
        finally:
            await response.aclose()
        return Outcome.RECOVERED if outcome is Outcome.OK else outcome

    async def _authenticate(self, key: str, seen: _Seen) -> Principal:
        try:
            return await self.b.auth.authenticate("Bearer " + key, seen.source)
        except ApiError as exc:
            raise from_broker(exc.status, exc.message, exc.headers) from None

    def _check_grant(self, scope: Any, p: Principal, target: Target, seen: _Seen) -> None:
        if not p.may(Action.READ_TOKEN, target.name):
            self.b.recorder.add(
                AuditRecord(
                    p.actor,
                    f"denied.{Action.READ_TOKEN.value}",
                    "forbidden",
                    target=target.name,
                    source=seen.source,
                    detail={"method": scope["method"], "route": target.route},
                )
            )
            raise refuse(
                Refusal.FORBIDDEN,
                f"this API key ({p.role.value}) may not use credential {target.name!r}: "
                "it needs role app (or admin) with a grant that covers the name",
            )
        seen.p, seen.name = p, target.name

    async def _current(self, name: str) -> CacheEntry:
        try:
            entry = await self.b.cache.get(name)
            # A report of this version is under way: wait for it rather than send a doomed request.
            pending = self.b.reports.get((name, entry.version))
            if pending is not None:
                await asyncio.wait([pending])
                entry = await self.b.cache.get(name)
            return entry
        except NotFoundError as exc:
            raise refuse(Refusal.UNKNOWN_CREDENTIAL, exc.message) from None
        except PermatokenError as exc:
            log.warning("graph proxy: cannot load %s: %s", name, type(exc).__name__)
            raise refuse(Refusal.UNAVAILABLE, f"the token of {name!r} cannot be read now") from None

    async def _alive(self, p: Principal, entry: CacheEntry, source: str) -> CacheEntry:
        """``entry``, or the version after it when the stored health says it is dead.

        Meta would answer 190 to a dead token: rather than send a request sure to fail (a streamed
        one could not be replayed), report it first, as after Meta's 190.
        """
        if entry.health not in DEAD_HEALTH:
            return entry
        name = entry.name
        reported = None
        if p.may(Action.REPORT, name):
            reported = await self._report(p, name, entry.version, None, source, entry.health)
        fresh = reported.entry if reported is not None else None
        if (
            fresh is not None
            and reported is not None
            and reported.status == ReportStatus.STILL_VALID
        ):
            # Meta says the token works: reload, so the stored health the engine cleared is seen.
            self.b.cache.invalidate(name)
            return await self._current(name)
        if fresh is not None and fresh.version > entry.version and fresh.health not in DEAD_HEALTH:
            return fresh
        self.metrics.recovered(Recovery.FAILED)
        raise refuse(
            Refusal.TOKEN_DEAD,
            f"the Meta token of credential {name!r} is {entry.health} and no newer version "
            f"could be obtained, so nothing was sent to Meta; see `permatoken status {name}`, "
            f"then `permatoken rotate {name}` (`--token-file FILE` for a manual credential)",
        )

    async def _report(
        self,
        p: Principal,
        name: str,
        version: int,
        info: GraphErrorInfo | None,
        source: str,
        why: str,
    ) -> Reported | None:
        """Report ``version`` dead through the broker's single flight; None if that failed."""
        try:
            return await report_failure(
                self.b,
                p,
                name,
                version,
                code=info.code if info is not None else None,
                subcode=info.subcode if info is not None else None,
                source=source,
                via="proxy",
            )
        except (ApiError, PermatokenError) as exc:
            log.warning(
                "graph proxy: %s version %d is %s; report failed: %s",
                name,
                version,
                why,
                type(exc).__name__,
            )
            return None

    async def _send(
        self,
        method: str,
        target: Target,
        query: bytes,
        raw: list[tuple[bytes, bytes]],
        content: bytes | AsyncIterator[bytes],
        length: int | None,
        entry: CacheEntry,
        timed: bool,
        phone: str | None,
        disconnected: Any,
    ) -> tuple[Answer, CacheEntry]:
        secret = await self.signer.secret(target.name)
        if phone is not None and self.pacer is not None:
            # Last thing before sending: any other wait after the turn would bunch sends up.
            await self.pacer.turn(phone, disconnected)
        upstream_target = self.upstream.target(
            target.path, with_params(query, Signer.params(entry.token, secret, timed=timed))
        )
        headers = request_headers(raw)
        headers.append((b"authorization", b"Bearer " + entry.token.reveal().encode()))
        started = time.perf_counter()
        response = await self.upstream.send(method, upstream_target, headers, content, length)
        self.metrics.upstream.observe(time.perf_counter() - started)
        return response, entry

    async def _recover(
        self, p: Principal, name: str, used: CacheEntry, info: GraphErrorInfo, source: str
    ) -> CacheEntry | None:
        """The next version after ``used`` died, or None (the 190 then passes through)."""
        try:
            entry = await self.b.cache.get(name)
            if entry.version > used.version:
                return entry  # someone already replaced it
            if not p.may(Action.REPORT, name):
                return None
        except (ApiError, PermatokenError) as exc:
            log.warning("graph proxy: cannot load %s: %s", name, type(exc).__name__)
            return None
        reported = await self._report(p, name, used.version, info, source, "dead")
        if reported is None:
            return None
        fresh = reported.entry
        return fresh if fresh is not None and fresh.version > used.version else None

    async def _pass(
        self,
        send: Send,
        response: Answer,
        answer: bytes,
        rest: AsyncIterator[bytes] | None,
        used: list[CacheEntry],
    ) -> Outcome:
        """Meta's answer to the client as it came, any token value masked."""
        mask = Mask(e.token.reveal() for e in used)
        headers = response_headers(response.headers, mask)
        length = str(len(answer)) if rest is None else response.header(b"content-length")
        if length is not None:
            headers.append((b"content-length", length.encode()))
        status = response.status
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if rest is None:
            await send({"type": "http.response.body", "body": mask.apply(answer)})
            info = (
                classify_graph_error(status, response.header_map(), answer)
                if status >= 400
                else None
            )
            return outcome_of(status, info.kind if info else None)
        await send({"type": "http.response.body", "body": mask.feed(answer), "more_body": True})
        try:
            async for chunk in rest:
                await send(
                    {"type": "http.response.body", "body": mask.feed(chunk), "more_body": True}
                )
        except TransportError as exc:
            # The status is out already: end the connection (the client sees a cut answer).
            log.warning("graph proxy: Meta's answer was cut short (%s)", type(exc).__name__)
            return Outcome.UPSTREAM_ERROR
        await send({"type": "http.response.body", "body": mask.flush()})
        return outcome_of(status, None)

    def _close_with_server(self) -> None:
        """The upstream pool closes when the server stops (the broker cancels its tasks)."""
        if self._closer is None or self._closer.done():
            self._closer = asyncio.get_running_loop().create_task(
                self._closer_task(), name="permatoken-proxy"
            )
            self.b.tasks.append(self._closer)

    async def _closer_task(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await self.upstream.aclose()


def _refusal_outcome(refusal: ProxyRefusal) -> Outcome:
    if refusal.reason is Refusal.PACED:
        return Outcome.PACED
    if refusal.reason is Refusal.TOKEN_DEAD:
        return Outcome.TOKEN_DEAD
    if refusal.reason in _UPSTREAM:
        return Outcome.UPSTREAM_ERROR
    return Outcome.REFUSED


__all__ = ["METHODS", "GraphProxy"]
