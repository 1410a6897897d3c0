"""GraphClient and AsyncGraphClient over httpx.MockTransport with reference-shaped answers."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from permatoken._exceptions import GraphError, InputError
from permatoken._secret import Secret
from permatoken.meta import AsyncGraphClient, ErrorKind, GraphClient, TokenDeath

APP_ID = "634974688087057"
APP_SECRET = "s3cr3t-app-secret-value-0123456789"
TOKEN = "sbx_user_token_ABCDEFGHIJKLMNOPQRSTUV"
CALLER = "sbx_admin_token_ZYXWVUTSRQPONMLKJIHGF"
NOW = 1_790_000_000.0
BASE = "https://graph.example.test"


def proof(token: str) -> str:
    return hmac.new(APP_SECRET.encode(), token.encode(), hashlib.sha256).hexdigest()


class Recorder:
    """A MockTransport handler that records requests and answers from a queue."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answers: list[httpx.Response | Exception] = []

    def answer(self, status: int = 200, body: Any = None, **kwargs: Any) -> None:
        content = body if isinstance(body, bytes | str) else json.dumps(body)
        self.answers.append(httpx.Response(status, content=content, **kwargs))

    def fail(self, exc: Exception) -> None:
        self.answers.append(exc)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def query(self) -> dict[str, str]:
        return dict(self.last.url.params)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.last.content.decode()))


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def client(rec: Recorder) -> Iterator[GraphClient]:
    with GraphClient(BASE, "v25.0", transport=httpx.MockTransport(rec), clock=lambda: NOW) as c:
        yield c


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def assert_no_secret(exc: BaseException) -> None:
    for text in (str(exc), repr(exc), json.dumps(getattr(exc, "to_dict", dict)())):
        for secret in (APP_SECRET, TOKEN, CALLER):
            assert secret not in text


DEBUG_OK = {
    "data": {
        "app_id": APP_ID,
        "type": "SYSTEM_USER",
        "application": "Lucky Shrub",
        "data_access_expires_at": 0,
        "expires_at": 0,
        "is_valid": True,
        "issued_at": 1712099387,
        "scopes": ["whatsapp_business_messaging"],
        "granular_scopes": [
            {"scope": "whatsapp_business_messaging", "target_ids": ["102289599326934"]}
        ],
        "user_id": "104169029247128",
    }
}


def test_debug_token_sends_app_token_bearer_and_proof(rec: Recorder, client: GraphClient) -> None:
    """debug_token: the app token is the caller and is signed with appsecret_proof."""
    rec.answer(200, DEBUG_OK, headers={"X-App-Usage": '{"call_count":12}'})
    result = client.debug_token(Secret(TOKEN), app_id=APP_ID, app_secret=Secret(APP_SECRET))
    request = rec.last
    assert request.method == "GET"
    assert request.url.path == "/v25.0/debug_token"
    assert request.headers["Authorization"] == f"Bearer {APP_ID}|{APP_SECRET}"
    assert rec.query() == {"input_token": TOKEN, "appsecret_proof": proof(f"{APP_ID}|{APP_SECRET}")}
    assert result.waba_ids == ("102289599326934",)
    assert client.last_usage is not None and client.last_usage.app_percent == 12


def test_exchange_token_for_sixty_days(rec: Recorder, client: GraphClient) -> None:
    rec.answer(200, {"access_token": "EAAnewtoken", "token_type": "bearer", "expires_in": 5183944})
    issued = client.exchange_token(
        Secret(TOKEN), app_id=APP_ID, app_secret=Secret(APP_SECRET), set_60_days=True
    )
    assert rec.last.url.path == "/v25.0/oauth/access_token"
    assert rec.query() == {
        "grant_type": "fb_exchange_token",
        "client_id": APP_ID,
        "client_secret": APP_SECRET,
        "fb_exchange_token": TOKEN,
        "set_token_expires_in_60_days": "true",
    }
    assert "Authorization" not in rec.last.headers
    assert issued.value == Secret("EAAnewtoken")
    assert issued.expires_in == 5183944
    assert issued.expires_at == datetime.fromtimestamp(NOW, UTC) + timedelta(seconds=5183944)
    assert "EAAnewtoken" not in repr(issued)


def test_exchange_without_expires_in_means_unknown_lifetime(
    rec: Recorder, client: GraphClient
) -> None:
    rec.answer(200, {"access_token": "EAAnever"})
    issued = client.exchange_token(
        Secret(TOKEN), app_id=APP_ID, app_secret=Secret(APP_SECRET), set_60_days=False
    )
    assert "set_token_expires_in_60_days" not in rec.query()
    assert (issued.expires_in, issued.expires_at) == (None, None)


def test_mint_posts_form_with_proof_over_caller(rec: Recorder, client: GraphClient) -> None:
    rec.answer(200, {"access_token": "CAAB3rQQzTFAB"})
    issued = client.mint_system_user_token(
        "61550000000001",
        caller_token=Secret(CALLER),
        app_id=APP_ID,
        app_secret=Secret(APP_SECRET),
        scopes=["whatsapp_business_messaging"],
        expiring=True,
    )
    assert rec.last.method == "POST"
    assert rec.last.url.path == "/v25.0/61550000000001/access_tokens"
    assert rec.last.url.query == b""
    assert rec.last.headers["Authorization"] == f"Bearer {CALLER}"
    assert rec.form() == {
        "business_app": APP_ID,
        "scope": "whatsapp_business_messaging",
        "appsecret_proof": proof(CALLER),
        "set_token_expires_in_60_days": "true",
    }
    assert issued.value.reveal() == "CAAB3rQQzTFAB"


def test_mint_with_timed_proof(rec: Recorder, client: GraphClient) -> None:
    rec.answer(200, {"access_token": "CAAB"})
    client.mint_system_user_token(
        "61550000000001",
        caller_token=Secret(CALLER),
        app_id=APP_ID,
        app_secret=Secret(APP_SECRET),
        expiring=False,
        timed_proof=True,
    )
    form = rec.form()
    expected = hmac.new(APP_SECRET.encode(), f"{CALLER}|{int(NOW)}".encode(), hashlib.sha256)
    assert form["appsecret_proof"] == expected.hexdigest()
    assert form["appsecret_time"] == str(int(NOW))
    assert form["scope"] == "whatsapp_business_management,whatsapp_business_messaging"
    assert "set_token_expires_in_60_days" not in form


def test_install_app(rec: Recorder, client: GraphClient) -> None:
    rec.answer(200, b"true")
    assert (
        client.install_app(
            "61550000000001",
            caller_token=Secret(CALLER),
            app_id=APP_ID,
            app_secret=Secret(APP_SECRET),
        )
        is True
    )
    assert rec.last.url.path == "/v25.0/61550000000001/applications"
    assert rec.form() == {"business_app": APP_ID, "appsecret_proof": proof(CALLER)}


@pytest.mark.parametrize("body", [{"success": True}, {"success": "true"}, True])
def test_revoke_accepts_both_success_typings(rec: Recorder, client: GraphClient, body: Any) -> None:
    rec.answer(200, body)
    client.revoke_token(
        Secret(TOKEN), caller_token=Secret(CALLER), app_id=APP_ID, app_secret=Secret(APP_SECRET)
    )
    assert rec.last.url.path == "/v25.0/oauth/revoke"
    assert rec.query() == {
        "client_id": APP_ID,
        "client_secret": APP_SECRET,
        "revoke_token": TOKEN,
        "appsecret_proof": proof(CALLER),
    }
    assert rec.last.headers["Authorization"] == f"Bearer {CALLER}"


def test_revoke_without_success_raises(rec: Recorder, client: GraphClient) -> None:
    rec.answer(200, {"success": False})
    with pytest.raises(GraphError) as caught:
        client.revoke_token(
            Secret(TOKEN), caller_token=Secret(CALLER), app_id=APP_ID, app_secret=Secret(APP_SECRET)
        )
    assert caught.value.error.kind is ErrorKind.UNKNOWN


def test_exchange_code_and_app_token(rec: Recorder, client: GraphClient) -> None:
    rec.answer(200, {"access_token": "EAAbisu", "token_type": "bearer"})
    client.exchange_code(Secret("AQDcode"), app_id=APP_ID, app_secret=Secret(APP_SECRET))
    assert rec.query() == {"client_id": APP_ID, "client_secret": APP_SECRET, "code": "AQDcode"}
    rec.answer(200, {"access_token": f"{APP_ID}|abc", "token_type": "bearer"})
    issued = client.app_token(APP_ID, Secret(APP_SECRET))
    assert rec.query()["grant_type"] == "client_credentials"
    assert issued.value.reveal() == f"{APP_ID}|abc"


def test_canary_calls(rec: Recorder, client: GraphClient) -> None:
    rec.answer(200, {"verified_name": "Lucky Shrub", "id": "106540352242922"})
    phone = client.get_phone_number(
        "106540352242922", Secret(TOKEN), Secret(APP_SECRET), fields=["verified_name"]
    )
    assert phone["verified_name"] == "Lucky Shrub"
    assert rec.query() == {"appsecret_proof": proof(TOKEN), "fields": "verified_name"}
    assert rec.last.headers["Authorization"] == f"Bearer {TOKEN}"

    rec.answer(200, {"data": [{"id": "1", "display_phone_number": "15550783881"}, "junk"]})
    numbers = client.list_phone_numbers("102289599326934", Secret(TOKEN))
    assert numbers == [{"id": "1", "display_phone_number": "15550783881"}]
    assert rec.last.url.path == "/v25.0/102289599326934/phone_numbers"
    assert "appsecret_proof" not in rec.query()  # no secret known: no proof

    rec.answer(200, {"id": "42", "client_business_id": "7"})
    assert client.me(Secret(TOKEN), fields=("id", "client_business_id"))["id"] == "42"
    assert rec.query() == {"fields": "id,client_business_id"}


@pytest.mark.parametrize("bad", ["../debug_token", "1/access_tokens", "1?x=y", "", "a" * 65])
def test_ids_cannot_bend_the_path(client: GraphClient, bad: str) -> None:
    with pytest.raises(InputError):
        client.get_phone_number(bad, Secret(TOKEN))


def test_dead_token_raises_classified_graph_error(rec: Recorder, client: GraphClient) -> None:
    body = {
        "error": {
            "message": "Error validating access token: Session has expired on Tuesday, "
            "19-Aug-25 16:00:00 PDT.",
            "type": "OAuthException",
            "code": 190,
            "error_subcode": 463,
            "fbtrace_id": "Az8or2",
        }
    }
    rec.answer(401, body, headers={"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token"'})
    with pytest.raises(GraphError) as caught:
        client.get_phone_number("106540352242922", Secret(TOKEN), Secret(APP_SECRET))
    exc = caught.value
    assert exc.code == "graph_error"
    assert exc.error.kind is ErrorKind.TOKEN_DEAD and exc.error.death is TokenDeath.EXPIRED
    assert (exc.graph_code, exc.graph_subcode, exc.http_status) == (190, 463, 401)
    assert exc.ambiguous is False
    assert "can never be renewed" in (exc.hint or "")
    assert str(exc).startswith("GET /106540352242922 failed: token_dead")
    assert exc.to_dict() == {
        "code": "graph_error",
        "message": str(exc),
        "hint": exc.hint,
        "kind": "token_dead",
        "graph_code": 190,
        "graph_subcode": 463,
        "http_status": 401,
        "endpoint": "106540352242922",
        "ambiguous": False,
    }
    assert_no_secret(exc)


def test_echoed_secrets_are_scrubbed_from_errors(rec: Recorder, client: GraphClient) -> None:
    """Even a token Meta (or a proxy) echoes back, in any shape, stays out of the message."""
    rec.answer(
        400,
        {
            "error": {
                "message": f"Malformed access token {TOKEN} / {APP_SECRET}",
                "code": 190,
                "error_data": {"details": f"got {TOKEN}"},
            }
        },
    )
    with pytest.raises(GraphError) as caught:
        client.exchange_token(
            Secret(TOKEN), app_id=APP_ID, app_secret=Secret(APP_SECRET), set_60_days=True
        )
    assert_no_secret(caught.value)
    assert TOKEN not in (caught.value.error.details or "")


def test_throttle_carries_usage_and_wait(rec: Recorder, client: GraphClient) -> None:
    buc = {
        "102289599326934": [
            {"type": "whatsapp", "call_count": 107, "estimated_time_to_regain_access": 2}
        ]
    }
    rec.answer(
        400,
        {"error": {"message": "(#80008) too many calls", "code": 80008}},
        headers={"X-Business-Use-Case-Usage": json.dumps(buc)},
    )
    with pytest.raises(GraphError) as caught:
        client.list_phone_numbers("102289599326934", Secret(TOKEN))
    assert caught.value.error.kind is ErrorKind.THROTTLED
    assert caught.value.error.retry_after == 120
    assert caught.value.usage.business_percent == {"102289599326934": 107}
    assert client.last_usage is caught.value.usage


def test_error_body_with_200_status_is_an_error(rec: Recorder, client: GraphClient) -> None:
    rec.answer(
        200,
        '/**/ cb({"error":{"message":"(#4) Application request limit reached",'
        '"is_transient":true,"code":4}});',
    )
    with pytest.raises(GraphError) as caught:
        client.me(Secret(TOKEN))
    assert caught.value.error.kind is ErrorKind.THROTTLED


def test_html_502_is_transient(rec: Recorder, client: GraphClient) -> None:
    rec.answer(502, b"<html><title>502 Bad Gateway</title></html>")
    with pytest.raises(GraphError) as caught:
        client.debug_token(Secret(TOKEN), app_id=APP_ID, app_secret=Secret(APP_SECRET))
    assert caught.value.error.kind is ErrorKind.TRANSIENT
    assert_no_secret(caught.value)


def test_non_json_success_is_unknown(rec: Recorder, client: GraphClient) -> None:
    rec.answer(200, b"<html>captive portal</html>")
    with pytest.raises(GraphError) as caught:
        client.me(Secret(TOKEN))
    assert caught.value.error.kind is ErrorKind.UNKNOWN


def test_missing_access_token_in_answer(rec: Recorder, client: GraphClient) -> None:
    rec.answer(200, {"token_type": "bearer"})
    with pytest.raises(GraphError, match="no access_token"):
        client.app_token(APP_ID, Secret(APP_SECRET))


@pytest.mark.parametrize(
    ("exc", "ambiguous"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("slow connect"), False),
        (httpx.ReadTimeout("timed out"), True),
        (httpx.RemoteProtocolError("server disconnected"), True),
    ],
)
def test_transport_errors_are_transient_and_say_if_ambiguous(
    rec: Recorder, client: GraphClient, exc: Exception, ambiguous: bool
) -> None:
    """A read timeout may mean the mint happened: the error says so."""
    rec.fail(exc)
    with pytest.raises(GraphError) as caught:
        client.mint_system_user_token(
            "1",
            caller_token=Secret(CALLER),
            app_id=APP_ID,
            app_secret=Secret(APP_SECRET),
            expiring=True,
        )
    error = caught.value
    assert error.error.kind is ErrorKind.TRANSIENT
    assert error.ambiguous is ambiguous
    assert error.error.http_status is None
    assert error.__cause__ is exc
    assert_no_secret(error)


def test_injected_client_is_not_closed(rec: Recorder) -> None:
    http = httpx.Client(transport=httpx.MockTransport(rec))
    with GraphClient(BASE, "25.0", client=http) as graph:
        assert graph.version == "v25.0"
    assert not http.is_closed
    http.close()


def test_unversioned_base_url_with_path() -> None:
    rec = Recorder()
    rec.answer(200, {"id": "1"})
    with GraphClient(BASE + "/graph/", "", transport=httpx.MockTransport(rec)) as graph:
        graph.me(Secret(TOKEN))
    assert str(rec.last.url).startswith(BASE + "/graph/me?")
    assert "graph.example.test" in repr(graph) and TOKEN not in repr(graph)


# --- async ----------------------------------------------------------------------------------


def async_client(rec: Callable[[httpx.Request], httpx.Response]) -> AsyncGraphClient:
    return AsyncGraphClient(BASE, "v25.0", transport=httpx.MockTransport(rec), clock=lambda: NOW)


@pytest.mark.anyio
async def test_async_debug_and_exchange(rec: Recorder) -> None:
    rec.answer(200, DEBUG_OK)
    rec.answer(200, {"access_token": "EAAnew", "expires_in": 100})
    async with async_client(rec) as graph:
        result = await graph.debug_token(
            Secret(TOKEN), app_id=APP_ID, app_secret=Secret(APP_SECRET)
        )
        issued = await graph.exchange_token(
            Secret(TOKEN), app_id=APP_ID, app_secret=Secret(APP_SECRET), set_60_days=True
        )
    assert result.never_expires
    assert rec.requests[0].headers["Authorization"] == f"Bearer {APP_ID}|{APP_SECRET}"
    assert issued.expires_at == datetime.fromtimestamp(NOW + 100, UTC)


@pytest.mark.anyio
async def test_async_mint_install_revoke_and_canaries(rec: Recorder) -> None:
    rec.answer(200, {"access_token": "CAAB"})
    rec.answer(200, {"success": True})
    rec.answer(200, {"success": "true"})
    rec.answer(200, {"id": "1"})
    rec.answer(200, {"data": []})
    rec.answer(200, {"id": "2"})
    rec.answer(200, {"access_token": "EAAcode"})
    rec.answer(200, {"access_token": "app|tok"})
    secret = Secret(APP_SECRET)
    async with async_client(rec) as graph:
        await graph.mint_system_user_token(
            "9", caller_token=Secret(CALLER), app_id=APP_ID, app_secret=secret, expiring=False
        )
        assert await graph.install_app(
            "9", caller_token=Secret(CALLER), app_id=APP_ID, app_secret=secret
        )
        await graph.revoke_token(
            Secret(TOKEN), caller_token=Secret(CALLER), app_id=APP_ID, app_secret=secret
        )
        await graph.get_phone_number("1", Secret(TOKEN), secret)
        assert await graph.list_phone_numbers("5", Secret(TOKEN), secret) == []
        await graph.me(Secret(TOKEN), app_secret=secret)
        await graph.exchange_code(Secret("AQD"), app_id=APP_ID, app_secret=secret)
        await graph.app_token(APP_ID, secret)
    paths = [(r.method, r.url.path) for r in rec.requests]
    assert paths == [
        ("POST", "/v25.0/9/access_tokens"),
        ("POST", "/v25.0/9/applications"),
        ("GET", "/v25.0/oauth/revoke"),
        ("GET", "/v25.0/1"),
        ("GET", "/v25.0/5/phone_numbers"),
        ("GET", "/v25.0/me"),
        ("GET", "/v25.0/oauth/access_token"),
        ("GET", "/v25.0/oauth/access_token"),
    ]
    assert all(
        r.url.params.get("appsecret_proof") or b"appsecret_proof" in r.content
        for r in rec.requests[:6]
    )


@pytest.mark.anyio
async def test_async_errors_are_classified(rec: Recorder) -> None:
    rec.answer(400, {"error": {"message": "(#131056) pair rate limit hit", "code": "131056"}})
    rec.fail(httpx.ReadTimeout("timed out"))
    async with async_client(rec) as graph:
        with pytest.raises(GraphError) as first:
            await graph.me(Secret(TOKEN))
        with pytest.raises(GraphError) as second:
            await graph.exchange_token(
                Secret(TOKEN), app_id=APP_ID, app_secret=Secret(APP_SECRET), set_60_days=True
            )
    assert first.value.error.kind is ErrorKind.PAIR_RATE_LIMITED
    assert second.value.ambiguous is True
    assert isinstance(second.value.__cause__, httpx.ReadTimeout)
    assert_no_secret(second.value)
