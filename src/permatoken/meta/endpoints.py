"""The Graph endpoints permatoken calls, as pure request builders and response parsers.

Each builder returns a :class:`GraphCall`: what to send (:class:`GraphRequest`) and how to read
the answer. :mod:`permatoken.meta.graph` does the sending, sync or async, so the rules live in
one place. Tokens travel in the ``Authorization`` header or a POST body; only Meta's GET
endpoints that demand them as query parameters (``input_token``, ``fb_exchange_token``,
``client_secret``, ``revoke_token``) get them in the URL, which is therefore never logged.
Every call made with an access token carries ``appsecret_proof`` over that token when the app
secret is known.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from .._exceptions import GraphError, InputError
from .._secret import Secret, register_secret
from ..models import (
    expiry_from_lifetime,
    json_kind,
    token_problem_sentence,
    token_value_problem,
)
from .debug import DebugTokenResult, parse_debug_token
from .errors import ErrorKind, GraphErrorInfo, graph_error
from .proof import appsecret_proof, appsecret_proof_timed

T = TypeVar("T")
_SEGMENT = re.compile(r"[A-Za-z0-9_\-]{1,64}")
Param = str | Secret

WHATSAPP_SCOPES = ("whatsapp_business_management", "whatsapp_business_messaging")


@dataclass(frozen=True)
class GraphRequest:
    """One request, relative to ``{base_url}/{version}/``. Secret values stay wrapped."""

    method: Literal["GET", "POST", "DELETE"]
    path: str
    params: Mapping[str, Param] = field(default_factory=dict, repr=False)
    form: Mapping[str, Param] | None = field(default=None, repr=False)
    bearer: Secret | None = field(default=None, repr=False)

    def query(self) -> dict[str, str]:
        return {k: _reveal(v) for k, v in self.params.items()}

    def body(self) -> dict[str, str] | None:
        return None if self.form is None else {k: _reveal(v) for k, v in self.form.items()}

    def secret_values(self) -> list[str]:
        """Every secret this request carries, to scrub from anything echoed back."""
        values = [*self.params.values(), *(self.form or {}).values(), self.bearer]
        secrets = [v.reveal() for v in values if isinstance(v, Secret)]
        if self.bearer is not None and "|" in self.bearer.reveal():
            secrets.extend(self.bearer.reveal().split("|")[1:])  # the app secret in an app token
        return sorted({v for v in secrets if len(v) >= 4}, key=len, reverse=True)

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.bearer is not None:
            headers["Authorization"] = f"Bearer {self.bearer.reveal()}"
        return headers


@dataclass(frozen=True)
class GraphCall(Generic[T]):
    """A request and the parser for its successful (already error-checked) JSON payload."""

    request: GraphRequest
    parse: Callable[[Any, datetime], T]


@dataclass(frozen=True)
class IssuedToken:
    """A token Meta just issued. ``expires_at`` is ``None`` when Meta gave no lifetime."""

    value: Secret
    expires_in: int | None
    expires_at: datetime | None


def _segment(value: str) -> str:
    """An id used in a path: digits and word characters only, so nothing can bend the URL."""
    if not isinstance(value, str) or not _SEGMENT.fullmatch(value):
        raise InputError(f"not a valid Graph object id: {value!r}"[:120], value_kind="graph_id")
    return value


def _reveal(value: Param) -> str:
    return value.reveal() if isinstance(value, Secret) else value


def _unexpected(what: str) -> GraphError:
    info = GraphErrorInfo(
        kind=ErrorKind.UNKNOWN,
        code=None,
        subcode=None,
        message=f"unexpected response: {what}",
        http_status=200,
        advice="Check that PERMATOKEN_GRAPH_URL points at Meta or the sandbox",
    )
    return graph_error(info, f"Graph API answered unexpectedly: {what}")


def _proof(
    token: Secret, app_secret: Secret | None, *, timed: bool = False, now: int = 0
) -> dict[str, Param]:
    if app_secret is None:
        return {}
    if timed:
        proof, at = appsecret_proof_timed(app_secret, token, now)
        return {"appsecret_proof": proof, "appsecret_time": str(at)}
    return {"appsecret_proof": appsecret_proof(app_secret, token)}


def app_access_token(app_id: str, app_secret: Secret) -> Secret:
    """The literal app token ``{app-id}|{app-secret}``."""
    return Secret(f"{app_id}|{app_secret.reveal()}")


def parse_issued_token(payload: Any, now: datetime) -> IssuedToken:
    """``{"access_token": …, "expires_in": …}``; ``expires_in`` is optional (and 0 = none).

    Everything is checked before anything is returned: a value that cannot be a token (a
    number, 100 KB, whitespace inside) or a lifetime that is not one (negative, 1e30, a word)
    is refused here, so nothing downstream ever stores or does arithmetic on it.
    """
    if not isinstance(payload, Mapping):
        raise _unexpected(f"{json_kind(payload)} instead of a JSON object")
    if "access_token" not in payload:
        raise _unexpected("no access_token in the answer")
    value = payload["access_token"]
    if not isinstance(value, str):
        raise _unexpected(f"access_token is {json_kind(value)}, not a string")
    problem = token_value_problem(value)
    if problem is not None:
        raise _unexpected(token_problem_sentence("the access_token", problem))
    register_secret(value)
    raw = payload.get("expires_in")
    try:
        expires_at = expiry_from_lifetime(raw, now)
    except ValueError as exc:
        raise _unexpected(str(exc)) from None
    expires_in = round((expires_at - now).total_seconds()) if expires_at is not None else None
    return IssuedToken(Secret(value), expires_in, expires_at)


def parse_success(payload: Any, _now: datetime) -> bool:
    """``true``, ``{"success": true}`` or Meta's documented ``{"success": "true"}``."""
    if payload is True or payload == "true":
        return True
    if isinstance(payload, Mapping):
        success = payload.get("success")
        if success is True or success == "true":
            return True
    raise _unexpected("the call did not report success")


def parse_object(payload: Any, _now: datetime) -> dict[str, Any]:
    if not isinstance(payload, Mapping):
        raise _unexpected("no JSON object")
    return dict(payload)


def parse_list(payload: Any, _now: datetime) -> list[dict[str, Any]]:
    data = payload.get("data") if isinstance(payload, Mapping) else None
    if not isinstance(data, list):
        raise _unexpected("no data list")
    return [dict(item) for item in data if isinstance(item, Mapping)]


def _parse_debug(payload: Any, _now: datetime) -> DebugTokenResult:
    return parse_debug_token(payload if isinstance(payload, Mapping) else {})


def debug_token(
    input_token: Secret, *, app_id: str, app_secret: Secret
) -> GraphCall[DebugTokenResult]:
    caller = app_access_token(app_id, app_secret)
    params: dict[str, Param] = {"input_token": input_token, **_proof(caller, app_secret)}
    return GraphCall(GraphRequest("GET", "debug_token", params, bearer=caller), _parse_debug)


def exchange_token(
    token: Secret, *, app_id: str, app_secret: Secret, set_60_days: bool
) -> GraphCall[IssuedToken]:
    params: dict[str, Param] = {
        "grant_type": "fb_exchange_token",
        "client_id": app_id,
        "client_secret": app_secret,
        "fb_exchange_token": token,
    }
    if set_60_days:
        params["set_token_expires_in_60_days"] = "true"  # noqa: S105
    return GraphCall(GraphRequest("GET", "oauth/access_token", params), parse_issued_token)


def exchange_code(
    code: Secret, *, app_id: str, app_secret: Secret, redirect_uri: str | None = None
) -> GraphCall[IssuedToken]:
    params: dict[str, Param] = {"client_id": app_id, "client_secret": app_secret, "code": code}
    if redirect_uri is not None:
        params["redirect_uri"] = redirect_uri
    return GraphCall(GraphRequest("GET", "oauth/access_token", params), parse_issued_token)


def app_token(app_id: str, app_secret: Secret) -> GraphCall[IssuedToken]:
    params: dict[str, Param] = {
        "grant_type": "client_credentials",
        "client_id": app_id,
        "client_secret": app_secret,
    }
    return GraphCall(GraphRequest("GET", "oauth/access_token", params), parse_issued_token)


def mint_system_user_token(
    system_user_id: str,
    *,
    caller_token: Secret,
    app_id: str,
    app_secret: Secret,
    scopes: Iterable[str] = WHATSAPP_SCOPES,
    expiring: bool,
    timed_proof: bool = False,
    now: int = 0,
) -> GraphCall[IssuedToken]:
    form: dict[str, Param] = {
        "business_app": app_id,
        "scope": ",".join(scopes),
        **_proof(caller_token, app_secret, timed=timed_proof, now=now),
    }
    if expiring:
        form["set_token_expires_in_60_days"] = "true"  # noqa: S105
    request = GraphRequest(
        "POST", f"{_segment(system_user_id)}/access_tokens", form=form, bearer=caller_token
    )
    return GraphCall(request, parse_issued_token)


def install_app(
    system_user_id: str, *, caller_token: Secret, app_id: str, app_secret: Secret
) -> GraphCall[bool]:
    form: dict[str, Param] = {"business_app": app_id, **_proof(caller_token, app_secret)}
    request = GraphRequest(
        "POST", f"{_segment(system_user_id)}/applications", form=form, bearer=caller_token
    )
    return GraphCall(request, parse_success)


def revoke_token(
    token: Secret, *, caller_token: Secret, app_id: str, app_secret: Secret
) -> GraphCall[bool]:
    params: dict[str, Param] = {
        "client_id": app_id,
        "client_secret": app_secret,
        "revoke_token": token,
        **_proof(caller_token, app_secret),
    }
    request = GraphRequest("GET", "oauth/revoke", params, bearer=caller_token)
    return GraphCall(request, parse_success)


def get_object(
    object_id: str,
    token: Secret,
    *,
    app_secret: Secret | None = None,
    fields: Iterable[str] | None = None,
) -> GraphCall[dict[str, Any]]:
    params: dict[str, Param] = dict(_proof(token, app_secret))
    if fields is not None:
        params["fields"] = ",".join(fields)
    return GraphCall(GraphRequest("GET", _segment(object_id), params, bearer=token), parse_object)


def subscribe_app(
    waba_id: str, token: Secret, *, app_secret: Secret | None = None
) -> GraphCall[bool]:
    """``POST /{waba-id}/subscribed_apps``: the token's app gets the WABA's webhooks (10b)."""
    form: dict[str, Param] = dict(_proof(token, app_secret))
    request = GraphRequest("POST", f"{_segment(waba_id)}/subscribed_apps", form=form, bearer=token)
    return GraphCall(request, parse_success)


def list_phone_numbers(
    waba_id: str, token: Secret, *, app_secret: Secret | None = None
) -> GraphCall[list[dict[str, Any]]]:
    params = _proof(token, app_secret)
    request = GraphRequest("GET", f"{_segment(waba_id)}/phone_numbers", params, bearer=token)
    return GraphCall(request, parse_list)
