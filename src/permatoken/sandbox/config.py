"""Every behaviour the reference is unsure about, as one typed knob with a documented default.

The defaults follow ``reference/meta-graph-api.md``; where the reference marks something as
uncertain (sections 3.4, 3.5, 5.2, 6 and 9) the choice made here is written next to the field and
repeated in ``docs/sandbox.md``. Change them per test with ``dataclasses.replace`` or at run time
with ``PATCH /_sandbox/config``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from permatoken.graph_defaults import DEFAULT_GRAPH_VERSION

DAY = 86_400

#: HTTP status of an auth (190/10/200) error per endpoint. Meta answers 401 on the Cloud API's
#: ``/messages`` and 400 on classic Graph nodes (reference 5.2); anything not listed uses 400.
DEFAULT_AUTH_ERROR_STATUS = {"POST /{phone-number-id}/messages": 401}


@dataclass
class SandboxConfig:
    graph_version: str = DEFAULT_GRAPH_VERSION
    #: Largest accepted request body; bigger ones get a Meta-shaped 413.
    max_body_bytes: int = 64 * 1024
    #: Largest media upload (``POST /{phone-number-id}/media``): Meta's 100 MB document limit.
    max_media_bytes: int = 100 * 1024 * 1024

    # -- token lifetimes (seconds) ---------------------------------------------------------
    dashboard_lifetime: int = 23 * 3600  # "expires in less than 24 hours" (S9)
    user_short_lifetime: int = 2 * 3600  # "typically about 1-2 h" (S4)
    #: 60 days minus the little Meta keeps back: the documented ``expires_in: 5183944``.
    long_lived_lifetime: int = 5_183_944
    data_access_lifetime: int = 90 * DAY
    #: Embedded Signup tokens "default to never expire"; True gives them 60 days instead.
    bisu_expires_in_60_days: bool = False
    #: Whether the code exchange answer carries ``expires_in`` (uncertain, reference 3.4).
    code_exchange_returns_expires_in: bool = False
    #: Whether ``POST /{system-user-id}/access_tokens`` returns ``expires_in`` (undocumented).
    mint_returns_expires_in: bool = False
    code_ttl_seconds: int = 30

    # -- revocation and invalidation ---------------------------------------------------------
    #: Subcode a revoked token reports (reference 3.5: undocumented). 466 is the legacy "session
    #: explicitly invalidated through an API call"; ``None`` sends code 190 with no subcode.
    revoked_subcode: int | None = 466
    #: ``fb_exchange_token`` + ``set_token_expires_in_60_days`` on a *non-expiring* system-user
    #: token (open question, reference 9): "error" refuses with code 100, "convert" returns a
    #: 60-day token.
    exchange_non_expiring_system_user: str = "error"
    #: Refusal of a non-expiring mint for a business that must use expiring tokens (undocumented).
    must_expire_error_code: int = 100
    must_expire_error_message: str = (
        "(#100) This business requires expiring system user access tokens: "
        "set set_token_expires_in_60_days=true"
    )
    #: ``debug_token`` of an unparseable or badly signed ``input_token``: Meta answers 200 with
    #: ``data.is_valid: false`` and ``data.error`` (reference 10); "top_level" gives the
    #: top-level 400/190 envelope some older captures show (reference 3.6, LOW-MEDIUM).
    debug_token_unparseable: str = "data_error"  # noqa: S105
    #: ``{"success": true}`` or Meta's documented-verbatim string ``"true"``.
    revoke_success_as_string: bool = False
    appsecret_time_window: int = 300

    # -- HTTP statuses (reference 5.2: unsettled) ------------------------------------------
    auth_error_status: dict[str, int] = field(
        default_factory=lambda: dict(DEFAULT_AUTH_ERROR_STATUS)
    )
    #: Status of throttling errors 4 / 80007 / 80008 / 130429 / 131056 (400 vs 429 unsettled).
    throttle_http_status: int = 400
    content_type: str = "application/json; charset=UTF-8"

    # -- rate limits (reference 3.7, 6) ------------------------------------------------------
    app_calls_per_hour: int = 5000
    #: Seconds of handler time per hour that count as 100 % ``total_time``/``total_cputime``.
    app_time_budget_seconds: float = 600.0
    waba_calls_per_hour: int = 200  # per app per WABA
    active_waba_calls_per_hour: int = 5000  # WABAs with a registered number
    #: Error for an exhausted WABA budget: 80008 (Graph reference for WABA edges) or 80007.
    waba_throttle_code: int = 80008
    #: ``type`` inside ``X-Business-Use-Case-Usage`` (LOW in the reference; captures show it).
    buc_type: str = "whatsapp"
    #: Emit ``X-App-Usage`` even at 0 % (captures show it on errors with all values 0).
    usage_headers_at_zero: bool = True
    messages_per_second: int = 80
    pair_burst: int = 45
    pair_interval_seconds: float = 6.0
    #: ``message_status`` added to template sends; ``None`` leaves it out.
    template_message_status: str | None = "accepted"

    # -- Embedded Signup, webhooks and callbacks (reference 10b; docs/sandbox.md) -----------------
    #: Where signed ``account_update`` events go; set with ``PATCH /_sandbox/config``, which runs
    #: Meta's verification handshake first. ``None``: events are logged, not sent.
    webhook_url: str | None = None
    webhook_verify_token: str | None = None
    #: Where the deauthorize ``signed_request`` goes (Meta does not verify this URL).
    deauthorize_url: str | None = None
    #: Deliver every event twice (Meta "may deliver the same event more than once").
    webhook_duplicates: bool = False
    #: Hold events until ``webhook_reorder_batch`` wait (or a flush), then send them newest first.
    webhook_reorder: bool = False
    webhook_reorder_batch: int = 2
    #: Retry back-off: base * 2**(n-1) seconds, capped, for up to the window (WhatsApp: 7 days,
    #: MEDIUM). Real time, not the sandbox clock. Tests shrink the base and the cap.
    webhook_retry_base_seconds: float = 15.0
    webhook_retry_cap_seconds: float = 3600.0
    webhook_retry_window_seconds: float = 7 * DAY
    webhook_timeout_seconds: float = 10.0
    #: Events other than ``PARTNER_*`` reach the app only for WABAs subscribed to it
    #: (``POST /{waba-id}/subscribed_apps``); ``PARTNER_*`` ones concern the app itself.
    webhooks_need_subscription: bool = True
    #: Embedded Signup announces ``PARTNER_APP_INSTALLED`` for the new WABA (MEDIUM).
    embedded_signup_sends_installed: bool = True
    #: ``entry[].id`` of ``PARTNER_*`` events: "waba" (the reference) or "partner_business" (some
    #: of Meta's own examples put the partner's business id there).
    partner_event_entry_id: str = "waba"
    #: Subcode the business's tokens report once it removed the app: 458 "App Not Installed".
    uninstall_subcode: int = 458
    #: Subcode a person's tokens report after the deauthorize callback.
    deauthorize_subcode: int = 458
    #: ``PARTNER_REMOVED`` / ``ACCOUNT_DELETED``: False takes the WABA out of the app's tokens
    #: (they stay valid, reaching less); True revokes the tokens that reached it (uninstall_subcode).
    waba_removal_revokes_tokens: bool = False
    #: Sends from an offboarded WABA's numbers (until ``ACCOUNT_RECONNECTED``): 133010 "Account
    #: not registered" (undocumented for this case). A disabled WABA answers 368.
    offboarded_send_error_code: int = 133010

    # -- BSP stand-ins -------------------------------------------------------------------------
    login_token_lifetime: int = 7 * DAY  # On-Prem "7 days" is MEDIUM
    oauth2_access_token_lifetime: int = 3600
    #: Seed for the random choices of fractional fault injection, so runs repeat.
    random_seed: int = 0

    def updated(self, changes: dict[str, Any]) -> SandboxConfig:
        """A copy with ``changes`` applied; unknown names or wrong types raise ``ValueError``."""
        known = {f.name: f for f in dataclasses.fields(self)}
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown config field {name!r}")
            current = getattr(self, name)
            if current is not None and value is not None and not _same_kind(current, value):
                raise ValueError(f"config field {name!r} expects {type(current).__name__}")
            clean[name] = value
        return dataclasses.replace(self, **clean)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _same_kind(current: Any, value: Any) -> bool:
    if isinstance(current, bool) or isinstance(value, bool):
        return isinstance(current, bool) and isinstance(value, bool)
    if isinstance(current, float):
        return isinstance(value, int | float)
    return isinstance(value, type(current))
