"""POST /v1/credentials without a token: an issuer's missing configuration is the caller's
input error (422, naming what is missing), refused before anything is stored or asked upstream."""

from __future__ import annotations

from typing import Any

import pytest

from permatoken._secret import Secret

from .conftest import LiveBroker

MINT = "POST /{system-user-id}/access_tokens"


def _cases(world: dict[str, Any], url: str) -> dict[str, tuple[dict[str, Any], str]]:
    """case → (request body, text the error message must contain)."""
    login = world["providers"]["login"]
    oauth2 = world["providers"]["oauth2"]
    app = world["apps"][0]
    user = next(u for u in world["system_users"] if u["name"] == "Sandbox Admin")
    return {
        "login without login_url": (
            {
                "issuer": "login",
                "options": {"username": login["username"]},
                "secrets": {"password": login["password"]},
            },
            "the login issuer needs option 'login_url'",
        ),
        "login without any option": (
            {"issuer": "login", "secrets": {"password": login["password"]}},
            "needs options 'login_url' and 'username'",
        ),
        "oauth2-refresh without token_url": (
            {
                "issuer": "oauth2-refresh",
                "options": {"client_id": oauth2["client_id"]},
                "secrets": {"refresh_token": oauth2["refresh_token"]},
            },
            "the oauth2-refresh issuer needs option 'token_url'",
        ),
        "oauth2-refresh without client_id": (
            {
                "issuer": "oauth2-refresh",
                "options": {"token_url": url + oauth2["token_url_path"]},
                "secrets": {"refresh_token": oauth2["refresh_token"]},
            },
            "needs option 'client_id'",
        ),
        "mint without admin_credential": (
            {
                "issuer": "meta-system-mint",
                "app_id": app["id"],
                "options": {"system_user_id": user["id"]},
            },
            "the meta-system-mint issuer needs option 'admin_credential'",
        ),
        "mint with an empty system_user_id": (
            {
                "issuer": "meta-system-mint",
                "app_id": app["id"],
                "options": {"system_user_id": "", "admin_credential": "acme/admin"},
            },
            "needs option 'system_user_id'",
        ),
        "mint without the app": (
            {
                "issuer": "meta-system-mint",
                "options": {"system_user_id": user["id"], "admin_credential": "acme/admin"},
            },
            "needs the Meta app id",
        ),
        "mint naming a credential that does not exist": (
            {
                "issuer": "meta-system-mint",
                "app_id": app["id"],
                "options": {"system_user_id": user["id"], "admin_credential": "acme/nobody"},
            },
            "'acme/nobody'",
        ),
    }


CASES = [
    "login without login_url",
    "login without any option",
    "oauth2-refresh without token_url",
    "oauth2-refresh without client_id",
    "mint without admin_credential",
    "mint with an empty system_user_id",
    "mint without the app",
    "mint naming a credential that does not exist",
]


@pytest.mark.parametrize("case", CASES)
def test_a_missing_issuer_option_is_a_422_and_nothing_is_stored(
    live_broker: LiveBroker, world: dict[str, Any], sandbox: Any, case: str
) -> None:
    app = world["apps"][0]
    live_broker.store.put_app(app["id"], Secret(app["secret"]))
    body, says = _cases(world, sandbox.url)[case]
    sandbox.state.clear_logs()
    admin = live_broker.client(live_broker.key("admin"))
    r = admin.post("/v1/credentials", json={"name": "acme/x", **body})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_input"
    assert says in error["message"] and "nothing was stored" in error["message"], error
    assert admin.get("/v1/credentials/acme/x").status_code == 404
    assert live_broker.store.list_status() == []
    assert sandbox.state.calls(MINT) == []
    assert sandbox.state.calls("POST /v1/users/login") == []
    assert sandbox.state.calls("POST /oauth2/token") == []
