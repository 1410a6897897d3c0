"""Embedded Signup onboarding through the API (live broker), the CLI, and a killed ``serve``."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from _live_sandbox import ThreadSandbox
from client._broker import Broker, create_key
from conftest import CliRunner, connect
from permatoken._secret import Secret
from permatoken.store import Store

from .conftest import LiveBroker, app_of, until

URL = "/v1/onboarding/embedded-signup"


@pytest.fixture
def registered(sandbox: ThreadSandbox, store: Store) -> tuple[str, str]:
    app_id, secret = app_of(sandbox.state.fixtures())
    store.put_app(app_id, Secret(secret))
    return app_id, secret


def exchanges(sandbox: ThreadSandbox) -> int:
    return len(sandbox.state.calls("GET /oauth/access_token"))


def onboarding_rows(store: Store) -> list[Any]:
    with store.read() as conn:
        return list(conn.execute(sa.text("select code_hash, state from onboardings")))


@pytest.mark.parametrize(
    "store_url",
    ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
    indirect=True,
)
def test_api_onboards_stores_subscribes_and_repeats_the_same_answer(
    live_broker: LiveBroker, sandbox: ThreadSandbox, store: Store, registered: Any, emitted: Any
) -> None:
    app_id, _ = registered
    made = sandbox.state.embedded_signup()
    waba, phone = made["waba_id"], made["phone_number_id"]
    c = live_broker.client(live_broker.key("operator", "acme/*"))
    first = c.post(URL, json={"code": made["code"], "tenant": "acme"})
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["repeated"] is False and body["business_id"] == made["business_id"]
    assert body["token_type"] == "SYSTEM_USER" and body["expires_at"] is None
    (cred,) = body["credentials"]
    assert cred == {
        "name": f"acme/{waba}",
        "version": 1,
        "waba_ids": [waba],
        "phone_number_ids": [phone],
        "subscribed": True,
    }
    stored = store.status(f"acme/{waba}")
    assert stored.credential.phone_number_id == phone and stored.credential.waba_ids == (waba,)
    assert stored.credential.business_id == made["business_id"]
    assert stored.credential.health.value == "ok" and stored.current is not None
    assert app_id in sandbox.state.subscriptions[waba]
    again = c.post(URL, json={"code": made["code"], "tenant": "acme"})
    assert again.status_code == 200
    assert again.json() == body | {"repeated": True}
    assert exchanges(sandbox) == 1 and len(store.list_status()) == 1
    assert [v.version for v in store.versions(f"acme/{waba}")] == [1]
    emitted.watch(made["code"], store.reveal(f"acme/{waba}").reveal())


def test_a_given_name_holds_the_token(
    live_broker: LiveBroker, sandbox: ThreadSandbox, store: Store, registered: Any
) -> None:
    made = sandbox.state.embedded_signup()
    c = live_broker.client(live_broker.key("admin"))
    r = c.post(URL, json={"code": made["code"], "tenant": "acme", "name": "acme/shop"})
    assert r.status_code == 201 and [x["name"] for x in r.json()["credentials"]] == ["acme/shop"]
    assert store.get("acme/shop").waba_ids == (made["waba_id"],)


@pytest.mark.parametrize(
    ("role", "grant", "body"),
    [
        ("operator", "globex/*", {"tenant": "acme"}),
        ("reader", "acme/*", {"tenant": "acme"}),
        ("app", "acme/*", {"tenant": "acme"}),
        ("operator", "acme/*", {"tenant": "acme", "name": "globex/shop"}),
    ],
    ids=["other-tenant", "reader", "app", "name-outside-tenant"],
)
def test_keys_without_a_grant_on_the_tenant_cannot_onboard(
    live_broker: LiveBroker,
    sandbox: ThreadSandbox,
    store: Store,
    registered: Any,
    role: str,
    grant: str,
    body: dict[str, str],
) -> None:
    """Refused before the code is exchanged: the client's code is not wasted."""
    made = sandbox.state.embedded_signup()
    c = live_broker.client(live_broker.key(role, grant))
    r = c.post(URL, json={"code": made["code"], **body})
    assert r.status_code in (403, 422), r.text
    assert exchanges(sandbox) == 0 and store.list_status() == [] and onboarding_rows(store) == []


def test_expired_code_and_wrong_app_secret_store_nothing(
    live_broker: LiveBroker, sandbox: ThreadSandbox, store: Store, registered: Any
) -> None:
    c = live_broker.client(live_broker.key("operator", "acme/*"))
    late = sandbox.state.embedded_signup()
    sandbox.state.clock.advance(31)
    r = c.post(URL, json={"code": late["code"], "tenant": "acme"})
    assert r.status_code == 422 and "expired" in r.json()["error"]["message"]
    app_id, _ = registered
    store.put_app(app_id, Secret("a-wrong-secret-0000"))
    made = sandbox.state.embedded_signup()
    r = c.post(URL, json={"code": made["code"], "tenant": "acme"})
    assert r.status_code == 422 and "app id and secret" in r.json()["error"]["message"] + str(
        r.json()
    )
    assert store.list_status() == [] and onboarding_rows(store) == []
    reused = c.post(URL, json={"code": "AQ-not-a-code", "tenant": "acme"})
    assert reused.status_code == 422 and store.list_status() == []


def test_cli_onboards_and_repeats(
    run_cli: CliRunner,
    sandbox: ThreadSandbox,
    store: Store,
    registered: Any,
    tmp_path: Path,
    emitted: Any,
) -> None:
    made = sandbox.state.embedded_signup()
    code_file = tmp_path / "code"
    code_file.write_text(made["code"])
    env = {"PERMATOKEN_GRAPH_URL": sandbox.url}
    args = ("onboard", "embedded-signup", "--code-file", str(code_file), "--tenant", "acme")
    first = run_cli(*args, "--json", env=env)
    assert first.rc == 0, first.output
    assert [c["name"] for c in first.json()["credentials"]] == [f"acme/{made['waba_id']}"]
    human = run_cli(*args, env=env)
    assert human.rc == 0 and "onboarded before" in human.stdout and made["waba_id"] in human.stdout
    assert exchanges(sandbox) == 1 and len(store.list_status()) == 1
    bad = run_cli(*args[:-1], "acme/../x", env=env)
    assert bad.rc == 2 and "error:" in bad.stderr and "hint:" in bad.stderr.lower() + "hint:"
    emitted.watch(made["code"], store.reveal(f"acme/{made['waba_id']}").reveal())


def test_serve_killed_between_exchange_and_answer_keeps_the_token_exactly_once(
    sandbox: ThreadSandbox,
    store: Store,
    registered: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """SIGKILL while the inspection after the exchange is held by a sandbox latency fault: the
    business token is already sealed in the store; the retry with the same code finishes the
    work without a second exchange (which Meta would refuse: the code works once)."""
    monkeypatch.setenv("PERMATOKEN_GRAPH_URL", sandbox.url)
    key = create_key("acme/*", role="operator")
    made = sandbox.state.embedded_signup()
    hold = sandbox.state.inject_fault(
        endpoint="GET /debug_token", kind="latency", latency_seconds=60
    )
    server = Broker(out=tmp_path / "serve.log").start()
    answers: list[Any] = []

    def call() -> None:
        try:
            answers.append(
                httpx.post(
                    server.url + URL,
                    json={"code": made["code"], "tenant": "acme"},
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=90,
                )
            )
        except httpx.HTTPError as exc:
            answers.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    try:
        until(lambda: onboarding_rows(store))
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
        caller.join(30)
        assert answers and isinstance(answers[0], httpx.HTTPError)  # no answer came back
        assert store.list_status() == [] and exchanges(sandbox) == 1
        sandbox.state.clear_faults()
        del hold
        server = Broker(out=tmp_path / "serve2.log").start()
        r = httpx.post(
            server.url + URL,
            json={"code": made["code"], "tenant": "acme"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        assert r.status_code == 201, r.text
        assert [c["name"] for c in r.json()["credentials"]] == [f"acme/{made['waba_id']}"]
        assert exchanges(sandbox) == 1
        name = f"acme/{made['waba_id']}"
        assert [v.version for v in store.versions(name)] == [1]
        with connect(store.url) as conn:
            assert conn.execute(sa.text("select count(*) from credentials")).scalar() == 1
        assert [row[1] for row in onboarding_rows(store)] == ["done"]
        log = (tmp_path / "serve.log").read_text() + (tmp_path / "serve2.log").read_text()
        assert made["code"] not in log and store.reveal(name).reveal() not in log
        assert json.dumps(r.json()).find(store.reveal(name).reveal()) == -1
    finally:
        server.stop()


def test_a_meta_error_after_the_exchange_is_finished_by_repeating_the_same_code(
    live_broker: LiveBroker, sandbox: ThreadSandbox, store: Store, registered: Any
) -> None:
    """subscribed_apps fails (Meta 500) after the exchange: 502 saying the token is stored and
    to repeat; the repeat (fault gone) finishes without a second exchange."""
    made = sandbox.state.embedded_signup()
    sandbox.state.inject_fault(
        endpoint="POST /{waba-id}/subscribed_apps", kind="error", code=2, http_status=500
    )
    c = live_broker.client(live_broker.key("operator", "acme/*"))
    r = c.post(URL, json={"code": made["code"], "tenant": "acme"})
    assert r.status_code == 502 and "repeat the same call" in r.json()["error"]["message"]
    assert store.list_status() == [] and [row[1] for row in onboarding_rows(store)] == ["exchanged"]
    sandbox.state.clear_faults()
    r = c.post(URL, json={"code": made["code"], "tenant": "acme"})
    assert r.status_code == 201 and exchanges(sandbox) == 1
    assert len(store.list_status()) == 1


def test_signing_up_again_gives_the_named_credential_a_new_version(
    live_broker: LiveBroker, sandbox: ThreadSandbox, store: Store, registered: Any
) -> None:
    """The client removed the app (token dead, credential invalid) and signs up again under the
    same name: the new business token becomes version 2, healthy; nothing is duplicated."""
    c = live_broker.client(live_broker.key("operator", "acme/*"))
    first = sandbox.state.embedded_signup()
    assert (
        c.post(URL, json={"code": first["code"], "tenant": "acme", "name": "acme/shop"}).status_code
        == 201
    )
    old = store.reveal("acme/shop")
    sandbox.state.uninstall_app(first["business_id"])
    second = sandbox.state.embedded_signup()
    r = c.post(URL, json={"code": second["code"], "tenant": "acme", "name": "acme/shop"})
    assert r.status_code == 201, r.text
    assert r.json()["credentials"][0]["version"] == 2
    status = store.status("acme/shop")
    assert status.current is not None and status.current.version == 2
    assert store.reveal("acme/shop") != old and status.credential.health.value == "ok"
    assert status.credential.waba_ids == (second["waba_id"],)
    assert len(store.list_status()) == 1
