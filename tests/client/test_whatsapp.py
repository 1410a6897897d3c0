"""WhatsAppClient: request shapes, typed results and errors, ambiguous requests."""

from __future__ import annotations

import json

import httpx
import pytest

from permatoken.client import (
    AsyncWhatsAppClient,
    BadRequestError,
    PairRateLimitedError,
    SentMessage,
    ThrottledError,
    TokenDeadError,
    TokenSource,
    WhatsAppClient,
    WhatsAppPermissionError,
    WhatsAppTransportError,
)
from permatoken.client.messages import media_payload

from ._fakes import FakeBackend

OK = {
    "messaging_product": "whatsapp",
    "contacts": [{"input": "+16505551234", "wa_id": "16505551234"}],
    "messages": [{"id": "wamid.X"}],
}


def client(handler, **kwargs) -> tuple[WhatsAppClient, TokenSource]:
    source = TokenSource(FakeBackend(**kwargs.pop("backend", {})), "acme/messaging")
    wa = WhatsAppClient(
        source,
        "106540352242922",
        graph_url="https://graph.test",
        graph_version="v25.0",
        transport=httpx.MockTransport(handler),
        **kwargs,
    )
    return wa, source


def recorder(response: httpx.Response | None = None):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return response or httpx.Response(200, json=OK)

    return handler, seen


def test_send_text_posts_the_cloud_api_shape_and_returns_a_sent_message():
    handler, seen = recorder()
    wa, source = client(handler)
    with source, wa:
        sent = wa.send_text("+16505551234", "Hello", reply_to="wamid.PREV")
    assert sent == SentMessage(id="wamid.X", wa_id="16505551234", input="+16505551234")
    [request] = seen
    assert request.url == "https://graph.test/v25.0/106540352242922/messages"
    assert json.loads(request.content) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+16505551234",
        "type": "text",
        "text": {"preview_url": False, "body": "Hello"},
        "context": {"message_id": "wamid.PREV"},
    }


def test_template_media_reaction_and_read_shapes():
    handler, seen = recorder()
    wa, source = client(handler)
    with source, wa:
        wa.send_template(
            "1",
            "hello_world",
            "en_US",
            [{"type": "body", "parameters": [{"type": "text", "text": "A"}]}],
        )
        wa.send_media("1", "document", link="https://x.test/a.pdf", caption="c", filename="a.pdf")
        wa.send_media("1", "sticker", media_id="123")
        wa.send_reaction("1", "wamid.A", "👍")
    bodies = [json.loads(r.content) for r in seen]
    assert bodies[0]["template"] == {
        "name": "hello_world",
        "language": {"code": "en_US"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "A"}]}],
    }
    assert bodies[1]["document"] == {
        "link": "https://x.test/a.pdf",
        "caption": "c",
        "filename": "a.pdf",
    }
    assert bodies[2]["sticker"] == {"id": "123"}
    assert bodies[3]["reaction"] == {"message_id": "wamid.A", "emoji": "👍"}
    handler, seen = recorder(httpx.Response(200, json={"success": True}))
    wa, source = client(handler)
    with source, wa:
        assert wa.mark_as_read("wamid.A") is True
    assert json.loads(seen[0].content) == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.A",
    }


def test_bad_media_arguments_are_refused_before_sending():
    with pytest.raises(ValueError, match="exactly one"):
        media_payload("1", "image")
    with pytest.raises(ValueError, match="caption"):
        media_payload("1", "audio", media_id="1", caption="x")
    with pytest.raises(ValueError, match="kind"):
        media_payload("1", "gif", media_id="1")


@pytest.mark.parametrize(
    ("code", "status", "exc"),
    [
        (130429, 400, ThrottledError),
        (80007, 429, ThrottledError),
        (4, 400, ThrottledError),
        (131056, 400, PairRateLimitedError),
        (200, 403, WhatsAppPermissionError),
        (100, 400, BadRequestError),
    ],
)
def test_graph_errors_become_typed_exceptions(code: int, status: int, exc: type[Exception]):
    body = {"error": {"message": f"(#{code}) something", "type": "OAuthException", "code": code}}
    handler, _ = recorder(httpx.Response(status, json=body))
    wa, source = client(handler)
    with source, wa, pytest.raises(exc) as caught:
        wa.send_text("1", "x")
    assert (
        caught.value.graph_code == code
        and caught.value.endpoint == "POST /{phone-number-id}/messages"
    )
    if isinstance(caught.value, ThrottledError | PairRateLimitedError):
        assert caught.value.retry_after and caught.value.retry_after > 0


def test_token_dead_after_failed_recovery_says_why():
    body = {
        "error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}
    }
    handler, seen = recorder(httpx.Response(401, json=body))
    wa, source = client(handler, backend={"report_status": "needs_human"})
    with source, wa, pytest.raises(TokenDeadError) as caught:
        wa.send_text("1", "x")
    assert "needs_human" in str(caught.value) and len(seen) == 1


def test_an_ambiguous_timeout_is_not_retried_by_default():
    """A read timeout after sending: raised as ambiguous, exactly one attempt."""
    attempts = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        raise httpx.ReadTimeout("timed out", request=request)

    wa, source = client(handler)
    with source, wa, pytest.raises(WhatsAppTransportError) as caught:
        wa.send_text("1", "x")
    assert caught.value.ambiguous is True and len(attempts) == 1
    wa, source = client(handler, retry_ambiguous=True)
    with source, wa, pytest.raises(WhatsAppTransportError):
        wa.send_text("1", "x")
    assert len(attempts) == 3


def test_a_connection_refused_is_retried_once_because_nothing_was_sent():
    attempts = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        if len(attempts) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json=OK)

    wa, source = client(handler)
    with source, wa:
        assert wa.send_text("1", "x").id == "wamid.X"
    assert len(attempts) == 2


def test_a_2xx_without_a_message_id_is_a_typed_error():
    from permatoken.client import UnexpectedAnswerError

    handler, _ = recorder(httpx.Response(200, json={"messaging_product": "whatsapp"}))
    wa, source = client(handler)
    with source, wa, pytest.raises(UnexpectedAnswerError):
        wa.send_text("1", "x")


@pytest.mark.anyio
async def test_async_client_sends_and_reads_a_phone_number():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(
                200,
                json={
                    "id": "106540352242922",
                    "display_phone_number": "15550783881",
                    "quality_rating": "GREEN",
                    "throughput": {"level": "STANDARD"},
                },
            )
        return httpx.Response(200, json=OK)

    source = TokenSource(FakeBackend(), "acme/messaging")
    async with AsyncWhatsAppClient(
        source,
        "106540352242922",
        graph_url="https://graph.test",
        graph_version="v25.0",
        transport=httpx.MockTransport(handler),
    ) as wa:
        assert (await wa.send_text("1", "x")).id == "wamid.X"
        info = await wa.get_phone_number(fields=["display_phone_number"])
    source.close()
    assert info.display_phone_number == "15550783881" and info.throughput_level == "STANDARD"


# --- trust_env: the environment is read only when asked (httpx's semantics) --------------------


@pytest.fixture
def graph_env(monkeypatch: pytest.MonkeyPatch, home) -> None:
    """PERMATOKEN_* settings and a config file that both point somewhere else than Meta."""
    monkeypatch.setenv("PERMATOKEN_GRAPH_URL", "https://env.test")
    monkeypatch.setenv("PERMATOKEN_GRAPH_VERSION", "v1.0")
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text('graph_url = "https://config.test"\n')


@pytest.mark.parametrize("trust", [{}, {"trust_env": True}], ids=["default", "explicit"])
def test_trust_env_reads_the_permatoken_settings_for_what_is_not_given(graph_env, trust):
    """By default (as in httpx) a missing graph_url/graph_version comes from PERMATOKEN_*."""
    handler, seen = recorder()
    source = TokenSource(FakeBackend(), "acme/messaging")
    with (
        source,
        WhatsAppClient(source, "1065", transport=httpx.MockTransport(handler), **trust) as wa,
    ):
        wa.send_text("1", "x")
    assert str(seen[0].url) == "https://env.test/v1.0/1065/messages"
    assert wa.trust_env is True


def test_with_trust_env_an_argument_still_wins_over_the_environment(graph_env):
    """graph_url given, graph_version read: arguments > environment."""
    handler, seen = recorder()
    source = TokenSource(FakeBackend(), "acme/messaging")
    transport = httpx.MockTransport(handler)
    with (
        source,
        WhatsAppClient(source, "1065", graph_url="https://arg.test", transport=transport) as wa,
    ):
        wa.send_text("1", "x")
    assert str(seen[0].url) == "https://arg.test/v1.0/1065/messages"


def test_trust_env_false_ignores_permatoken_settings_and_the_config_file(graph_env):
    """trust_env=False: Meta's URL and the default version, whatever the environment says."""
    from permatoken.graph_defaults import DEFAULT_GRAPH_URL, DEFAULT_GRAPH_VERSION

    handler, seen = recorder()
    source = TokenSource(FakeBackend(), "acme/messaging")
    transport = httpx.MockTransport(handler)
    with source, WhatsAppClient(source, "1065", transport=transport, trust_env=False) as wa:
        wa.send_text("1", "x")
    assert str(seen[0].url) == f"{DEFAULT_GRAPH_URL}/{DEFAULT_GRAPH_VERSION}/1065/messages"
    assert wa.trust_env is False and wa._http.trust_env is False  # httpx's own variables too


@pytest.mark.anyio
async def test_the_async_client_honours_trust_env_false(graph_env):
    """AsyncWhatsAppClient(trust_env=False) reads no PERMATOKEN_* either."""
    from permatoken.graph_defaults import DEFAULT_GRAPH_URL, DEFAULT_GRAPH_VERSION

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=OK)

    source = TokenSource(FakeBackend(), "acme/messaging")
    transport = httpx.MockTransport(handler)
    async with AsyncWhatsAppClient(source, "1065", transport=transport, trust_env=False) as wa:
        await wa.send_text("1", "x")
    source.close()
    assert str(seen[0].url) == f"{DEFAULT_GRAPH_URL}/{DEFAULT_GRAPH_VERSION}/1065/messages"
    assert wa._http.trust_env is False
