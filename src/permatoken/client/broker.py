"""The broker's HTTP API as seen by an application: read a token, wait for a change, report.

Pure parsing (:func:`parse_token`, :func:`parse_report`, :func:`broker_error`) is shared by
:class:`BrokerClient` and :class:`AsyncBrokerClient`, which only send. Every failure becomes a
typed error from :mod:`permatoken.client.errors`; the API key never appears in one.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from .._secret import Secret, register_secret
from ..vocabulary import ReportStatus
from .errors import (
    ApiKeyError,
    BrokerProtocolError,
    BrokerUnavailableError,
    CredentialForbiddenError,
    CredentialNotFoundError,
)
from .models import CachedToken, ReportAnswer

__all__ = ["AsyncBrokerClient", "BrokerClient", "broker_error", "parse_report", "parse_token"]

REPORT_STATUSES = frozenset(ReportStatus)
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        data = json.loads(response.content)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise BrokerProtocolError(
            f"the broker answered {what} with HTTP {response.status_code} and a body that is not a "
            "JSON object",
            status=response.status_code,
        )
    return data


def broker_error(response: httpx.Response, name: str) -> Exception:
    """The typed error for a non-2xx broker answer (pure)."""
    status = response.status_code
    try:
        err = json.loads(response.content).get("error") or {}
        detail = str(err.get("message") or "")[:300]
    except (ValueError, AttributeError):
        detail = ""
    said = f" (broker: {detail})" if detail else ""
    if status == 401:
        return ApiKeyError(f"the broker rejected the API key{said}", status=status)
    if status == 403:
        return CredentialForbiddenError(
            f"the API key may not read credential {name!r}{said}", name=name, status=status
        )
    if status == 404:
        return CredentialNotFoundError(
            f"the broker has no credential named {name!r}{said}", name=name, status=status
        )
    if status == 429 or status >= 500:
        return BrokerUnavailableError(
            f"the broker answered HTTP {status}{said}; try again shortly", status=status
        )
    return BrokerProtocolError(f"unexpected HTTP {status} from the broker{said}", status=status)


def _expires(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
    raise BrokerProtocolError(
        f"the broker sent expires_at={str(value)[:40]!r}, not an ISO 8601 time or null"
    )


def parse_token(data: dict[str, Any], name: str) -> CachedToken:
    """A token answer ``{"name","version","token","expires_at","token_type"}`` (pure)."""
    version, value = data.get("version"), data.get("token")
    if (
        not isinstance(version, int)
        or isinstance(version, bool)
        or not isinstance(value, str)
        or not value
    ):
        raise BrokerProtocolError(
            f"the broker's answer for {name!r} lacks an integer version or a token", name=name
        )
    register_secret(value)
    token_type, health = data.get("token_type"), data.get("health")
    return CachedToken(
        name=name,
        version=version,
        value=Secret(value),
        expires_at=_expires(data.get("expires_at")),
        token_type=token_type if isinstance(token_type, str) else None,
        health=health if isinstance(health, str) else None,
    )


def parse_report(data: dict[str, Any], name: str) -> ReportAnswer:
    """A report answer ``{"status","version","token"?,"expires_at"?,"message"}`` (pure)."""
    status = data.get("status")
    if status not in REPORT_STATUSES:
        raise BrokerProtocolError(
            f"the broker answered a report with status {str(status)[:40]!r}", name=name
        )
    version = data.get("version")
    version = version if isinstance(version, int) and not isinstance(version, bool) else None
    token = None
    if isinstance(data.get("token"), str) and version is not None:
        token = parse_token(data, name)
    return ReportAnswer(ReportStatus(status), version, token, str(data.get("message") or ""))


class _Base:
    def __init__(self, url: str, api_key: Secret | str) -> None:
        if not url.startswith(("http://", "https://")):
            raise BrokerProtocolError(f"broker URL {url!r} must start with http:// or https://")
        self.url = url.rstrip("/")
        self._key = api_key if isinstance(api_key, Secret) else Secret(api_key)
        register_secret(self._key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r})"

    def _headers(self, etag_version: int | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._key.reveal()}", "Accept": "application/json"}
        if etag_version is not None:
            headers["If-None-Match"] = f'"v{etag_version}"'
        return headers

    @staticmethod
    def _token_path(name: str) -> str:
        return "/v1/tokens/" + quote(name, safe="/")

    def _unreachable(self, exc: Exception, doing: str) -> BrokerUnavailableError:
        return BrokerUnavailableError(
            f"cannot reach the permatoken broker at {self.url} while {doing} "
            f"({type(exc).__name__})",
            url=self.url,
        )

    def _token_answer(self, response: httpx.Response, name: str) -> CachedToken | None:
        if response.status_code == 304:
            return None
        if response.status_code != 200:
            raise broker_error(response, name)
        return parse_token(_json(response, "a token read"), name)

    def _report_answer(self, response: httpx.Response, name: str) -> ReportAnswer:
        if response.status_code != 200:
            raise broker_error(response, name)
        return parse_report(_json(response, "a report"), name)

    @staticmethod
    def _params(after_version: int | None, wait: float | None) -> dict[str, str]:
        params = {}
        if after_version is not None:
            params["after_version"] = str(after_version)
        if wait is not None:
            params["wait"] = f"{wait:g}"
        return params

    @staticmethod
    def _timeout(wait: float | None) -> httpx.Timeout:
        return httpx.Timeout(15.0 + (wait or 0.0), connect=5.0)


class BrokerClient(_Base):
    """Synchronous broker client (one ``httpx.Client``, thread-safe)."""

    def __init__(
        self, url: str, api_key: Secret | str, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        super().__init__(url, api_key)
        self._http = httpx.Client(base_url=self.url, transport=transport, timeout=DEFAULT_TIMEOUT)

    def get_token(
        self, name: str, *, after_version: int | None = None, wait: float | None = None
    ) -> CachedToken | None:
        """The current token; with ``after_version``/``wait`` a long poll (None on 304)."""
        try:
            response = self._http.get(
                self._token_path(name),
                params=self._params(after_version, wait),
                headers=self._headers(),
                timeout=self._timeout(wait),
            )
        except httpx.TransportError as exc:
            raise self._unreachable(exc, f"reading {name!r}") from exc
        return self._token_answer(response, name)

    def report(
        self, name: str, version: int, code: int | None, subcode: int | None
    ) -> ReportAnswer:
        body = {"name": name, "version": version, "code": code, "subcode": subcode}
        try:
            response = self._http.post(
                "/v1/reports", json=body, headers=self._headers(), timeout=self._timeout(120)
            )
        except httpx.TransportError as exc:
            raise self._unreachable(exc, f"reporting {name!r} version {version} dead") from exc
        return self._report_answer(response, name)

    def close(self) -> None:
        self._http.close()


class AsyncBrokerClient(_Base):
    """Asynchronous broker client (one ``httpx.AsyncClient``)."""

    def __init__(
        self, url: str, api_key: Secret | str, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__(url, api_key)
        self._http = httpx.AsyncClient(
            base_url=self.url, transport=transport, timeout=DEFAULT_TIMEOUT
        )

    async def get_token(
        self, name: str, *, after_version: int | None = None, wait: float | None = None
    ) -> CachedToken | None:
        try:
            response = await self._http.get(
                self._token_path(name),
                params=self._params(after_version, wait),
                headers=self._headers(),
                timeout=self._timeout(wait),
            )
        except httpx.TransportError as exc:
            raise self._unreachable(exc, f"reading {name!r}") from exc
        return self._token_answer(response, name)

    async def report(
        self, name: str, version: int, code: int | None, subcode: int | None
    ) -> ReportAnswer:
        body = {"name": name, "version": version, "code": code, "subcode": subcode}
        try:
            response = await self._http.post(
                "/v1/reports", json=body, headers=self._headers(), timeout=self._timeout(120)
            )
        except httpx.TransportError as exc:
            raise self._unreachable(exc, f"reporting {name!r} version {version} dead") from exc
        return self._report_answer(response, name)

    async def aclose(self) -> None:
        await self._http.aclose()
