"""oauth2-refresh: the generic ``refresh_token`` grant (RFC 6749 §6), with rotating refresh tokens.

Options: ``token_url``, ``client_id``, optional ``scope``. Secrets: ``client_secret`` (optional),
``refresh_token``. When the server rotates the refresh token, the new one is returned as a
credential-secret update that the engine stores in the same transaction as the pending version,
before the new access token is used anywhere: replaying the old refresh token would make a
server with reuse detection revoke the whole family.
"""

from __future__ import annotations

from typing import ClassVar

from .._exceptions import NotFoundError
from .._secret import Secret, register_secret
from ..models import expiry_from_lifetime
from .base import IssueContext, Obtained
from .http_issuers import post, token_field, upstream_error


class OAuth2RefreshIssuer:
    kind: ClassVar[str] = "oauth2-refresh"
    required_options: ClassVar[tuple[str, ...]] = ("token_url", "client_id")
    needs_app: ClassVar[bool] = False
    automatic: ClassVar[bool] = True
    recovers_dead: ClassVar[bool] = True
    meta: ClassVar[bool] = False
    secrets: ClassVar[frozenset[str]] = frozenset({"refresh_token", "client_secret"})

    def obtain(self, ctx: IssueContext) -> Obtained:
        url = str(ctx.option("token_url", required=True))
        form = {
            "grant_type": "refresh_token",
            "refresh_token": ctx.secret("refresh_token").reveal(),
            "client_id": str(ctx.option("client_id", required=True)),
        }
        if ctx.option("scope"):
            form["scope"] = str(ctx.option("scope"))
        try:
            form["client_secret"] = ctx.secret("client_secret").reveal()
        except NotFoundError:
            pass
        data = post(ctx, url, data=form, headers={"Accept": "application/json"})
        access = token_field(ctx, data.get("access_token"), "access_token")
        register_secret(access)
        updates: dict[str, Secret] = {}
        new_refresh = data.get("refresh_token")
        if new_refresh is not None and new_refresh != "":
            new_refresh = token_field(ctx, new_refresh, "refresh_token")
            register_secret(new_refresh)
            updates["refresh_token"] = Secret(new_refresh)
        try:
            expires_at = expiry_from_lifetime(data.get("expires_in"), ctx.now)
        except ValueError as exc:
            raise upstream_error(ctx, f"the token endpoint answered an impossible {exc}") from None
        token_type = data.get("token_type")
        return Obtained(
            Secret(access),
            expires_at,
            expires_at is not None,
            token_type if isinstance(token_type, str) and token_type.isprintable() else "bearer",
            old_stays_valid=True,
            secret_updates=updates,
        )
