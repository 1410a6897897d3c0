"""A sandbox in its own process, and a local store holding a credential that can be re-minted.

``acme/messaging`` uses the ``meta-system-mint`` issuer with the break-glass options
(``system_user_id`` + ``admin_credential``): ``acme/admin`` holds the sandbox's admin
system-user token, so a revoked messaging token is replaced by exactly one
``POST /{system-user-id}/access_tokens``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from _live_sandbox import ProcessSandbox
from permatoken._secret import Secret
from permatoken.models import NewCredential, VersionMeta
from permatoken.settings import Settings

MINT = "POST /{system-user-id}/access_tokens"
SEND = "POST /{phone-number-id}/messages"
NAME = "acme/messaging"
ADMIN = "acme/admin"

#: Limits high enough that only the behaviour under test can trip them.
FAST = {"messages_per_second": 1_000_000, "app_calls_per_hour": 10_000_000, "pair_burst": 1_000_000}


class Sandbox(ProcessSandbox):
    """The sandbox in a child process (``_live_sandbox.ProcessSandbox``) with :data:`FAST` limits."""

    def __init__(self, **config: Any) -> None:
        super().__init__(**(FAST | config))

    def mints(self) -> int:
        return len([c for c in self.calls(MINT) if c["status"] == 200])

    def accepted_bodies(self) -> list[str]:
        return [m["content"]["body"] for m in self.messages() if m["type"] == "text"]


@dataclass
class World:
    sandbox: Sandbox
    settings: Settings
    phone_id: str
    token: str  # the first value of acme/messaging

    @property
    def url(self) -> str:
        return self.sandbox.url

    def revoke_current(self, store: Any) -> str:
        value = store.reveal(NAME).reveal()
        self.sandbox.revoke(value)
        return value


def add_credentials(store: Any, sandbox: Sandbox) -> tuple[str, str]:
    """Register the app, the admin credential and the mintable messaging credential."""
    fx = sandbox.fixtures
    app = fx["apps"][0]
    store.put_app(app["id"], Secret(app["secret"]))
    admin_user = next(u for u in fx["system_users"] if u["name"] == "Sandbox Admin")
    admin = fx["tokens"]["system_user"]["value"]
    store.add_credential(
        NewCredential(name=ADMIN, issuer="manual", app_id=app["id"]), Secret(admin), VersionMeta()
    )
    first = sandbox.create_token(kind="system_user", system_user_id=admin_user["id"])["value"]
    phone = fx["phone_numbers"][0]
    spec = NewCredential(
        name=NAME,
        issuer="meta-system-mint",
        app_id=app["id"],
        phone_number_id=phone["id"],
        waba_ids=(phone["waba_id"],),
        options={"system_user_id": admin_user["id"], "admin_credential": ADMIN},
    )
    store.add_credential(spec, Secret(first), VersionMeta())
    return phone["id"], first
