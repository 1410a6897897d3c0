"""State of the non-Meta token providers the sandbox stands in for (reference section 7).

* A BSP login endpoint (``POST /v1/users/login``): Basic auth in, one bearer token out; a new
  login invalidates the previous token of that user, as Turn.io warns.
* A generic OAuth2 authorization server with the ``refresh_token`` grant and *rotating* refresh
  tokens. Each refresh token may be used once; replaying a used one is taken as theft and
  revokes the whole family (every access and refresh token descending from the same grant),
  as real providers do (OAuth 2.0 Security BCP, section 4.14).
"""

from __future__ import annotations

import base64
import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any


def _jwt_shaped() -> str:
    # On-Premises tokens are JWTs; only the shape matters, nothing parses them.
    def part(n: int) -> str:
        return base64.urlsafe_b64encode(secrets.token_bytes(n)).decode().rstrip("=")

    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=")
    return f"{header}.{part(48)}.{part(32)}"


@dataclass
class LoginAccount:
    username: str
    password: str
    token: str | None = None
    expires_at: float = 0.0


@dataclass
class Grant:
    """One family: everything issued from one original authorization."""

    id: int
    client_id: str
    revoked: bool = False
    access_tokens: dict[str, float] = field(default_factory=dict)  # value -> expires_at
    refresh_tokens: dict[str, bool] = field(default_factory=dict)  # value -> used


class ProviderStore:
    """Not thread-safe by itself: :class:`SandboxState` calls it under its lock."""

    def __init__(self) -> None:
        self.accounts: dict[str, LoginAccount] = {}
        self.clients: dict[str, str] = {}  # client_id -> client_secret
        self.grants: list[Grant] = []
        self._by_refresh: dict[str, Grant] = {}
        self._by_access: dict[str, Grant] = {}
        self._ids = itertools.count(1)

    # -- login -------------------------------------------------------------------------------

    def add_account(self, username: str, password: str) -> LoginAccount:
        account = self.accounts[username] = LoginAccount(username, password)
        return account

    def login(self, username: str, password: str, now: float, lifetime: int) -> LoginAccount | None:
        account = self.accounts.get(username)
        if account is None or not secrets.compare_digest(account.password, password):
            return None
        account.token = _jwt_shaped()  # the previous token stops working here
        account.expires_at = now + lifetime
        return account

    def logout(self, token: str) -> bool:
        for account in self.accounts.values():
            if account.token is not None and secrets.compare_digest(account.token, token):
                account.token = None
                return True
        return False

    def login_token_valid(self, token: str, now: float) -> bool:
        return any(
            a.token is not None and secrets.compare_digest(a.token, token) and now < a.expires_at
            for a in self.accounts.values()
        )

    # -- OAuth2 ------------------------------------------------------------------------------

    def add_client(self, client_id: str, client_secret: str) -> None:
        self.clients[client_id] = client_secret

    def client_ok(self, client_id: str, client_secret: str) -> bool:
        expected = self.clients.get(client_id)
        return expected is not None and secrets.compare_digest(expected, client_secret)

    def new_grant(self, client_id: str, now: float, lifetime: int) -> dict[str, Any]:
        grant = Grant(id=next(self._ids), client_id=client_id)
        self.grants.append(grant)
        return self._issue(grant, now, lifetime)

    def refresh(
        self, client_id: str, refresh_token: str, now: float, lifetime: int
    ) -> dict[str, Any]:
        """Rotate; raises ``ValueError(reason)`` for an ``invalid_grant`` answer."""
        grant = self._by_refresh.get(refresh_token)
        if grant is None or grant.client_id != client_id:
            raise ValueError("Invalid refresh token")
        if grant.revoked:
            raise ValueError("Refresh token has been revoked")
        if grant.refresh_tokens[refresh_token]:
            # Reuse: someone holds a copy. Kill the family so neither party keeps access.
            grant.revoked = True
            raise ValueError("Refresh token reuse detected; the grant has been revoked")
        grant.refresh_tokens[refresh_token] = True
        return self._issue(grant, now, lifetime)

    def access_token_active(self, token: str, now: float) -> bool:
        grant = self._by_access.get(token)
        return grant is not None and not grant.revoked and now < grant.access_tokens[token]

    def revoke_refresh(self, refresh_token: str) -> bool:
        grant = self._by_refresh.get(refresh_token)
        if grant is None:
            return False
        grant.revoked = True
        return True

    def _issue(self, grant: Grant, now: float, lifetime: int) -> dict[str, Any]:
        access = secrets.token_urlsafe(32)
        refresh = "rt_" + secrets.token_urlsafe(32)
        grant.access_tokens[access] = now + lifetime
        grant.refresh_tokens[refresh] = False
        self._by_access[access] = grant
        self._by_refresh[refresh] = grant
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "refresh_token": refresh,
            "scope": "",
        }
