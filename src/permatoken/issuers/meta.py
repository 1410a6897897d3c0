"""Meta's three ways of getting a token: 60-day system-user refresh, system-user mint, user exchange.

- ``meta-system-refresh``: ``GET /oauth/access_token`` with ``fb_exchange_token`` and
  ``set_token_expires_in_60_days=true``. Works only while the current token is valid; the old
  token stays valid until its own expiry.
- ``meta-system-mint``: ``POST /{system-user-id}/access_tokens`` with an admin/system-user token
  stored in permatoken (option ``admin_credential``). Rotates never-expiring tokens and is the
  break-glass path when a token already died.
- ``meta-user-exchange``: long-lived user token via ``fb_exchange_token``. Honest limit: user
  tokens need a human to log in again eventually (data access lapses after 90 days).
"""

from __future__ import annotations

from typing import ClassVar

from ..meta.endpoints import WHATSAPP_SCOPES
from .base import IssueContext, Obtained, needs_human

MINT_HINT = (
    "configure a break-glass mint: --option system_user_id=ID --option admin_credential=NAME "
    "(a stored admin or system-user token of the same business), or add a fresh token by hand"
)


def _expired_or_dead(ctx: IssueContext) -> bool:
    if ctx.current_dead:
        return True
    cur = ctx.current
    return bool(cur and cur.meta.expires_at is not None and cur.meta.expires_at <= ctx.now)


class MetaSystemRefreshIssuer:
    kind: ClassVar[str] = "meta-system-refresh"
    required_options: ClassVar[tuple[str, ...]] = ()
    needs_app: ClassVar[bool] = True
    automatic: ClassVar[bool] = True
    recovers_dead: ClassVar[bool] = False
    meta: ClassVar[bool] = True
    secrets: ClassVar[frozenset[str]] = frozenset()

    def obtain(self, ctx: IssueContext) -> Obtained:
        app_id = ctx.require_app()
        if _expired_or_dead(ctx):
            if ctx.option("admin_credential") and ctx.option("system_user_id"):
                return MetaSystemMintIssuer().obtain(ctx, expiring=True)
            raise needs_human(
                ctx,
                "the token already expired or was revoked; an expired token can never be refreshed",
                MINT_HINT,
            )
        issued = ctx.graph.exchange_token(
            ctx.current_token(), app_id=app_id, app_secret=ctx.app_secret(), set_60_days=True
        )
        return Obtained(
            issued.value, issued.expires_at, issued.expires_at is not None, "SYSTEM_USER", True
        )


class MetaSystemMintIssuer:
    kind: ClassVar[str] = "meta-system-mint"
    required_options: ClassVar[tuple[str, ...]] = ("system_user_id", "admin_credential")
    needs_app: ClassVar[bool] = True
    automatic: ClassVar[bool] = True
    recovers_dead: ClassVar[bool] = True
    meta: ClassVar[bool] = True
    secrets: ClassVar[frozenset[str]] = frozenset()

    def obtain(self, ctx: IssueContext, *, expiring: bool | None = None) -> Obtained:
        app_id = ctx.require_app()
        system_user_id = str(ctx.option("system_user_id", required=True))
        admin = str(ctx.option("admin_credential", required=True))
        if expiring is None:
            expiring = bool(ctx.option("expiring", False))
        scopes = ctx.option("scopes") or WHATSAPP_SCOPES
        if isinstance(scopes, str):
            scopes = [s.strip() for s in scopes.split(",") if s.strip()]
        issued = ctx.graph.mint_system_user_token(
            system_user_id,
            caller_token=ctx.reveal_credential(admin),
            app_id=app_id,
            app_secret=ctx.app_secret(),
            scopes=scopes,
            expiring=expiring,
        )
        # Meta documents only access_token in the answer: expiry is learned by inspection.
        return Obtained(
            issued.value, issued.expires_at, issued.expires_at is not None, "SYSTEM_USER", True
        )


class MetaUserExchangeIssuer:
    kind: ClassVar[str] = "meta-user-exchange"
    required_options: ClassVar[tuple[str, ...]] = ()
    needs_app: ClassVar[bool] = True
    automatic: ClassVar[bool] = True
    recovers_dead: ClassVar[bool] = False
    meta: ClassVar[bool] = True
    secrets: ClassVar[frozenset[str]] = frozenset()
    #: Shown with every renewal: user tokens are not a permanent setup.
    warning: ClassVar[str] = (
        "long-lived user tokens last about 60 days per exchange and need a human to log in again "
        "eventually; a system-user token (meta-system-refresh or meta-system-mint) is permanent"
    )

    def obtain(self, ctx: IssueContext) -> Obtained:
        app_id = ctx.require_app()
        if _expired_or_dead(ctx):
            raise needs_human(
                ctx,
                "the user token already expired or was invalidated; it cannot be exchanged",
                "log in again to get a fresh user token, or switch to a system-user token",
            )
        issued = ctx.graph.exchange_token(
            ctx.current_token(), app_id=app_id, app_secret=ctx.app_secret(), set_60_days=False
        )
        return Obtained(
            issued.value, issued.expires_at, issued.expires_at is not None, "USER", True
        )
