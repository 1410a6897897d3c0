"""The ASGI side of the imitated API: body limits, faults, handler call, headers, calls log.

Handlers are plain synchronous functions run under the state lock; everything that waits
(injected latency, timeouts) happens here, outside the lock, so one slow call never blocks others.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import anyio
import httpx

from permatoken.sandbox import routes_media
from permatoken.sandbox.auth import extract_token
from permatoken.sandbox.errors import GraphAPIError, trace_id
from permatoken.sandbox.faults import Fault
from permatoken.sandbox.forms import parse_form
from permatoken.sandbox.request import Reply, SandboxRequest
from permatoken.sandbox.routing import resolve

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from permatoken.sandbox.state import SandboxState

log = logging.getLogger("permatoken.sandbox")


class DroppedConnection(httpx.RemoteProtocolError):
    """Raised to cut a response short. In-process (``httpx.ASGITransport``) callers see the same
    exception type a real dropped connection produces; under uvicorn the socket is closed."""


class _TooLarge(Exception):
    pass


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]
    error_code: int | None = None


class GraphDispatcher:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state
        method, path = scope["method"], scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        params: dict[str, Any] = dict(
            parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        )
        with state.lock:
            endpoint, handler, args = resolve(method, path, state)
            plan = state.faults.plan(endpoint)
        req = SandboxRequest(
            method, path, endpoint, args, params, headers, state, state.clock.now()
        )
        try:
            limit = state.config.max_body_bytes
            if endpoint == routes_media.ENDPOINT:
                limit = state.config.max_media_bytes
            body = await _read_body(receive, headers, limit)
        except _TooLarge:
            error = GraphAPIError(100, "(#100) The request body is too large", status=413)
            await self._finish(send, req, self._error_reply(req, error))
            return
        _parse_body(req, body, headers.get("content-type", ""))

        if plan.latency:
            await anyio.sleep(plan.latency)
        fault = plan.terminal
        if fault is not None and fault.kind in ("drop", "timeout"):
            self._log(req, 0, None)
            if fault.kind == "timeout" and await _hang(receive, fault.timeout_seconds):
                return  # the client gave up first: nobody is left to answer
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"1024")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"', "more_body": True})
            raise DroppedConnection("sandbox dropped the connection (injected fault)")
        if fault is not None and fault.kind == "respond":
            status, raw, extra = fault.answer()
            await self._finish(send, req, Answer(status, raw, extra), fault)
            return
        answer = self._fault_reply(req, fault) if fault is not None else self._run(req, handler)
        await self._finish(send, req, answer)

    def _run(self, req: SandboxRequest, handler: Any) -> Answer:
        state = self.state
        started = time.perf_counter()
        with state.lock:
            req.now = state.clock.now()
            try:
                result = handler(req)
            except GraphAPIError as error:
                return self._error_reply(req, error)
            except Exception:  # a bug must still answer in Meta's shape, and be visible
                log.exception("sandbox handler failed for %s", req.endpoint)
                return self._error_reply(req, GraphAPIError(1, status=500))
            finally:
                if req.app_id is not None:
                    state.usage.record_app_time(req.app_id, req.now, time.perf_counter() - started)
            if isinstance(result, Reply):
                headers = {"content-type": "application/json", **result.headers}
                return Answer(result.status, _json(result.body), headers)
            return Answer(200, _json(result), self._graph_headers(req, {}))

    def _error_reply(self, req: SandboxRequest, error: GraphAPIError) -> Answer:
        with self.state.lock:
            headers = self._graph_headers(req, {"www-authenticate": error.www_authenticate()})
        return Answer(error.status, _json(error.envelope()), headers, error.code)

    def _fault_reply(self, req: SandboxRequest, fault: Fault) -> Answer:
        config = self.state.config
        if fault.body is not None:
            html = {"content-type": "text/html; charset=utf-8"}
            return Answer(fault.http_status or 502, fault.body.encode(), html)
        code = fault.code
        if code is None:
            code = 2 if (fault.http_status or 500) >= 500 else 100
        status: int | None = fault.http_status
        if status is None:
            if code in (4, 17, 32, 613, 80007, 80008, 130429, 131056):
                status = config.throttle_http_status
            elif code == 190:
                status = req.auth_status()
            else:
                status = 500 if code in (1, 2) else 400
        error = GraphAPIError(code, fault.message, subcode=fault.subcode, status=status or 500)
        return self._error_reply(req, error)

    def _graph_headers(self, req: SandboxRequest, headers: dict[str, str]) -> dict[str, str]:
        state, config = self.state, self.state.config
        headers["content-type"] = config.content_type
        headers["x-fb-trace-id"] = trace_id()
        headers["x-fb-rev"] = "1000000"
        if req.app_id is not None:
            usage = state.usage.app_header(req.app_id, req.now, config)
            if usage is not None:
                headers["x-app-usage"] = usage
            if req.waba_id is not None:
                headers["x-business-use-case-usage"] = state.usage.buc_header(
                    req.app_id, req.waba_id, req.waba_active, req.now, config
                )
        return headers

    async def _finish(
        self, send: Send, req: SandboxRequest, answer: Answer, drip: Fault | None = None
    ) -> None:
        self._log(req, answer.status, answer.error_code)
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items()]
        raw.append((b"content-length", str(len(answer.body)).encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": raw})
        size = drip.chunk_bytes if drip is not None and drip.chunk_bytes else len(answer.body)
        body = answer.body
        while len(body) > size:  # a slow drip: one chunk, a pause, the next chunk
            await send({"type": "http.response.body", "body": body[:size], "more_body": True})
            body = body[size:]
            if drip is not None and drip.chunk_delay_seconds:
                await anyio.sleep(drip.chunk_delay_seconds)
        await send({"type": "http.response.body", "body": body})

    def _log(self, req: SandboxRequest, status: int, code: int | None) -> None:
        token = req.raw_token or extract_token(req)
        self.state.record_call(req.endpoint, req.method, req.path, status, code, token)


async def _hang(receive: Receive, seconds: float) -> bool:
    """Sleep ``seconds`` or until the client disconnects; True if it disconnected."""
    gone = False
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            gone = True
            group.cancel_scope.cancel()

        group.start_soon(watch)
        await anyio.sleep(seconds)
        group.cancel_scope.cancel()
    return gone


async def _read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _parse_body(req: SandboxRequest, body: bytes, content_type: str) -> None:
    """Merge form or JSON-object parameters into ``req.params`` (Graph reads both)."""
    if not body:
        return
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        req.params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return
    if kind == "multipart/form-data":
        try:
            fields, req.files = parse_form(body, content_type)
        except ValueError as exc:
            req.body_error = f"Invalid multipart body: {exc}"
            return
        req.params.update(fields)
        return
    if kind in ("application/json", "") or kind.endswith("+json"):
        try:
            req.json_body = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            req.body_error = "Invalid JSON in the request body"
            return
        if isinstance(req.json_body, dict):
            req.params.update(req.json_body)
        return
    req.body_error = f"Unsupported content type {kind!r}"


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
