"""login: username and password against a ``/v1/users/login``-style endpoint (Meta On-Prem, BSPs).

Options: ``login_url``, ``username``. Secret: ``password``. Answer:
``{"users": [{"token": "…", "expires_after": "YYYY-MM-DD HH:MM:SS+00:00"}]}``. A new login
invalidates the previous token on such servers, so the old value does not stay valid.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

import httpx

from .._exceptions import RotationError
from .._secret import Secret, register_secret
from .base import IssueContext, Obtained
from .http_issuers import post


class LoginIssuer:
    kind: ClassVar[str] = "login"
    automatic: ClassVar[bool] = True
    recovers_dead: ClassVar[bool] = True
    meta: ClassVar[bool] = False

    def obtain(self, ctx: IssueContext) -> Obtained:
        url = str(ctx.option("login_url", required=True))
        user = str(ctx.option("username", required=True))
        auth = httpx.BasicAuth(user, ctx.secret("password").reveal())
        data = post(ctx, url, auth=auth, json={})
        users = data.get("users")
        first = users[0] if isinstance(users, list) and users and isinstance(users[0], dict) else {}
        token = first.get("token")
        if not isinstance(token, str) or not token:
            raise RotationError(
                f"{ctx.credential.name}: no users[0].token in the login answer",
                name=ctx.credential.name,
                reason="upstream",
            )
        register_secret(token)
        expires_at = _parse_expires_after(first.get("expires_after"))
        return Obtained(
            Secret(token), expires_at, expires_at is not None, "BSP_LOGIN", old_stays_valid=False
        )


def _parse_expires_after(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
