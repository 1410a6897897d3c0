"""Unmodified Python Graph/WhatsApp libraries from PyPI through ``permatoken serve``.

Each test: send, revoke the token in the sandbox, send again. Both messages are accepted once,
one mint, and the library never sees the 190. What each library needed besides its access token
(the permatoken API key) is the configuration written in its test and in docs/proxy.md.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import requests

from client._support import World

from .conftest import NAME, Serve, exactly_once

TO = "16505551234"


def test_pywa(world: World, serve: Serve, api_key: str, store: Any):
    """pywa (httpx): its base URL is the session's ``base_url``, set after construction."""
    from pywa import WhatsApp

    session = httpx.Client(timeout=30)
    wa = WhatsApp(phone_id=world.phone_id, token=api_key, session=session, api_version="25.0")
    session.base_url = serve.base_url() + "/v25.0"
    first = wa.send_message(to=TO, text="pywa before")
    world.revoke_current(store)
    second = wa.send_message(to=TO, text="pywa after")
    session.close()
    assert first.id.startswith("wamid.") and second.id.startswith("wamid.")
    exactly_once(world, ["pywa before", "pywa after"])


def test_heyoo_with_a_streamed_media_upload(
    world: World, serve: Serve, api_key: str, store: Any, tmp_path: Any
):
    """heyoo (module-level ``requests`` calls): set ``base_url`` and ``url`` after construction.
    Its media upload (requests-toolbelt's streaming encoder) goes through as well."""
    from heyoo import WhatsApp

    wa = WhatsApp(token=api_key, phone_number_id=world.phone_id)
    wa.base_url = serve.base_url() + "/v25.0"
    wa.url = f"{wa.base_url}/{world.phone_id}/messages"
    first = wa.send_message("heyoo before", TO)
    world.revoke_current(store)
    second = wa.send_message("heyoo after", TO)
    assert first["messages"][0]["id"] and second["messages"][0]["id"], (first, second)
    exactly_once(world, ["heyoo before", "heyoo after"])
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x01" * (2 * 1024 * 1024))
    uploaded = wa.upload_media(str(clip))
    assert uploaded and uploaded["id"]
    [media] = world.sandbox._json("GET", "/media")["data"]
    assert media["size"] == 4 * 1024 * 1024 and media["id"] == uploaded["id"]


def test_facebook_business_sdk(world: World, serve: Serve, api_key: str, store: Any):
    """facebook_business (requests.Session, the key as ``access_token`` on every query, objects
    JSON-encoded in a form): set the session's ``GRAPH``. Its appsecret_proof (computed over the
    key) is replaced: the sandbox would refuse it."""
    from facebook_business.api import FacebookAdsApi, FacebookSession

    session = FacebookSession(app_id="1", app_secret="its-own-secret", access_token=api_key)
    session.GRAPH = serve.base_url()
    api = FacebookAdsApi(session, api_version="v25.0")

    def send(text: str) -> Any:
        params = {"messaging_product": "whatsapp", "to": TO, "type": "text", "text": {"body": text}}
        return api.call("POST", (world.phone_id, "messages"), params=params).json()

    first = send("fb before")
    world.revoke_current(store)
    second = send("fb after")
    assert first["messages"][0]["id"] and second["messages"][0]["id"]
    exactly_once(world, ["fb before", "fb after"])
    phone = api.call("GET", (world.phone_id,), params={"fields": "id"}).json()
    assert phone["id"] == world.phone_id


def test_plain_requests_with_the_access_token_query_parameter(
    world: World, serve: Serve, api_key: str, store: Any
):
    """requests, the key in ``?access_token=``: the access log shows the request, not the key."""
    url = f"{serve.base_url()}/v25.0/{world.phone_id}/messages"

    def send(text: str) -> requests.Response:
        body = {"messaging_product": "whatsapp", "to": TO, "text": {"body": text}}
        return requests.post(url, params={"access_token": api_key}, json=body, timeout=30)

    assert send("requests before").status_code == 200
    world.revoke_current(store)
    assert send("requests after").status_code == 200
    exactly_once(world, ["requests before", "requests after"])
    log = serve.output()
    assert f"/graph/{NAME}/-/v25.0/{world.phone_id}/messages?access_token=[redacted]" in log
    assert api_key not in log


def test_whatsapp_python_through_its_url_attribute(
    world: World, serve: Serve, api_key: str, store: Any, monkeypatch: pytest.MonkeyPatch
):
    """whatsapp-python 4.3: only the calls that use ``wa.url`` (reply, react, mark_as_read) can go
    through a base URL; ``Message.send`` and the send_* helpers hard-code graph.facebook.com, and
    the constructor downloads Meta's changelog page (answered locally here: no internet)."""
    import whatsapp

    real_get = requests.get

    def get(url: str, *args: Any, **kw: Any) -> Any:
        if url.startswith("https://developers.facebook.com/"):
            r = requests.Response()
            r.status_code, r._content = 200, b"<html></html>"
            return r
        return real_get(url, *args, **kw)

    monkeypatch.setattr(requests, "get", get)
    wa = whatsapp.WhatsApp(
        token=api_key, phone_number_id={"main": world.phone_id}, update_check=False, version="v25.0"
    )
    monkeypatch.setattr(requests, "get", real_get)
    wa.url = f"{serve.base_url()}/v25.0/{world.phone_id}/messages"

    def react(emoji: str) -> dict[str, Any]:
        return whatsapp.Message(instance=wa, to=TO, id="wamid.x").react(emoji)  # type: ignore[no-any-return]

    assert react("👍")["messages"][0]["id"]
    world.revoke_current(store)
    assert react("🎉")["messages"][0]["id"]
    reactions = [m["content"]["emoji"] for m in world.sandbox.messages()]
    assert reactions == ["👍", "🎉"] and world.sandbox.mints() == 1
    with pytest.raises(requests.ConnectionError, match=r"graph\.facebook\.com"):
        whatsapp.Message(instance=wa, to=TO, content="hard-coded host").send()
    assert len(world.sandbox.messages()) == 2


def test_the_recipes_name_these_tests():
    """docs/proxy.md marks each recipe with the test that runs it."""
    from pathlib import Path

    doc = (Path(__file__).parents[3] / "docs" / "proxy.md").read_text()
    for name in (
        "test_pywa",
        "test_heyoo_with_a_streamed_media_upload",
        "test_facebook_business_sdk",
        "test_plain_requests_with_the_access_token_query_parameter",
        "test_whatsapp_python_through_its_url_attribute",
        "test_node_fetch",
    ):
        assert name in doc, name
