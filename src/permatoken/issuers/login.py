"""login: username and password against a ``/v1/users/login``-style endpoint (Meta On-Prem, BSPs).

Options: ``login_url``, ``username``. Secret: ``password``. Answer:
``{"users": [{"token": "…", "expires_after": "YYYY-MM-DD HH:MM:SS+00:00"}]}``. A new login
invalidates the previous token on such servers, so the old value does not stay valid.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

import httpx

from .._secret import Secret, register_secret
from ..models import check_instant, json_kind
from .base import IssueContext, Obtained
from .http_issuers import post, token_field, upstream_error


class LoginIssuer:
    kind: ClassVar[str] = "login"
    required_options: ClassVar[tuple[str, ...]] = ("login_url", "username")
    needs_app: ClassVar[bool] = False
    automatic: ClassVar[bool] = True
    recovers_dead: ClassVar[bool] = True
    meta: ClassVar[bool] = False
    secrets: ClassVar[frozenset[str]] = frozenset({"password"})

    def obtain(self, ctx: IssueContext) -> Obtained:
        url = str(ctx.option("login_url", required=True))
        user = str(ctx.option("username", required=True))
        auth = httpx.BasicAuth(user, ctx.secret("password").reveal())
        data = post(ctx, url, auth=auth, json={})
        users = data.get("users")
        first = users[0] if isinstance(users, list) and users and isinstance(users[0], dict) else {}
        token = token_field(ctx, first.get("token"), "users[0].token")
        register_secret(token)
        try:
            expires_at = _parse_expires_after(first.get("expires_after"))
        except ValueError as exc:
            raise upstream_error(ctx, f"the login answer has an impossible {exc}") from None
        return Obtained(
            Secret(token), expires_at, expires_at is not None, "BSP_LOGIN", old_stays_valid=False
        )


def _parse_expires_after(value: object) -> datetime | None:
    """``"YYYY-MM-DD HH:MM:SS+00:00"`` (naive = UTC); absent is None; garbage is a ValueError."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expires_after ({json_kind(value)}, not a date string)")
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("expires_after (not a date)") from None
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return check_instant(dt, "expires_after")
