"""The default world and its fixtures JSON (shape documented in ``docs/sandbox.md``).

Two businesses: the developer's own (non-expiring tokens allowed) and a client business that must
use expiring tokens and reached the developer's app through Embedded Signup. Two apps: the
developer's, and a foreign one whose tokens ``debug_token`` must refuse.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from permatoken.sandbox.models import TOKEN_KINDS

if TYPE_CHECKING:
    from permatoken.sandbox.state import SandboxState

LOGIN_PATH = "/v1/users/login"
OAUTH2_TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a URL path, not a secret


def seed_world(state: SandboxState) -> None:
    app = state.create_app("Sandbox App")
    state.create_app("Foreign App", require_app_secret=True)
    own = state.create_business("Sandbox Developer Co")
    client = state.create_business("Client Business Ltd", requires_expiring_tokens=True)
    state.apps[app["id"]].business_id = own["id"]
    state.create_system_user(own["id"], "Sandbox Admin")
    state.create_system_user(client["id"], "Client Admin")
    state.create_system_user(client["id"], "Sandbox App integration", role="INTEGRATION")
    own_waba = state.create_waba(own["id"], "Sandbox Shop WABA")
    client_waba = state.create_waba(client["id"], "Client Shop WABA")
    state.create_phone_number(own_waba["id"], "15550783881", verified_name="Sandbox Shop")
    state.create_phone_number(client_waba["id"], "15550001234", verified_name="Client Shop")
    # The client reached the app through Embedded Signup; both WABAs send the app their webhooks.
    state.installations[(client["id"], app["id"])] = state.clock.now()
    for waba in (own_waba, client_waba):
        state.subscriptions[waba["id"]] = [app["id"]]
    for kind in TOKEN_KINDS:
        business = client["id"] if kind in ("system_user_60d", "bisu") else own["id"]
        token = state.issue(kind, app_id=app["id"], business_id=business)
        state.seeded_tokens[kind] = token.value

    username, password = "sandbox-bsp", secrets.token_urlsafe(12)
    state.providers.add_account(username, password)
    client_id, client_secret = "sandbox-client", secrets.token_urlsafe(24)
    state.providers.add_client(client_id, client_secret)
    grant = state.providers.new_grant(
        client_id, state.clock.now(), state.config.oauth2_access_token_lifetime
    )
    state.provider_fixtures = {
        "login": {"url_path": LOGIN_PATH, "username": username, "password": password},
        "oauth2": {
            "token_url_path": OAUTH2_TOKEN_PATH,
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": grant["refresh_token"],
        },
    }


def fixtures_of(state: SandboxState) -> dict[str, Any]:
    tokens = {
        kind: state.tokens[value].to_fixture()
        for kind, value in state.seeded_tokens.items()
        if value in state.tokens
    }
    return {
        "graph_url": state.graph_url,
        "graph_version": state.config.graph_version,
        "apps": [a.to_fixture() for a in state.apps.values()],
        "businesses": [b.to_fixture() for b in state.businesses.values()],
        "system_users": [u.to_fixture() for u in state.system_users.values()],
        "wabas": [w.to_fixture() for w in state.wabas.values()],
        "phone_numbers": [p.to_fixture() for p in state.phone_numbers.values()],
        "tokens": tokens,
        "providers": state.provider_fixtures,
        "installations": [
            {"business_id": business_id, "app_id": app_id}
            for business_id, app_id in state.installations
        ],
        "subscriptions": [
            {"waba_id": waba_id, "app_id": app_id}
            for waba_id, app_ids in state.subscriptions.items()
            for app_id in app_ids
        ],
    }
