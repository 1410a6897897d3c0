"""Embedded Signup and what a client business does afterwards, with its effects on tokens.

The world changes here run under the state lock (callers go through :class:`SandboxState`, which
takes it) and hand the events they raise to the outbox (:mod:`permatoken.sandbox.webhooks`),
which sends them from its own thread. Effects, where the reference (10b) is unsure a
``SandboxConfig`` knob says which reading is used:

=========================  ======================================================================
event                      effect
=========================  ======================================================================
PARTNER_APP_INSTALLED      the business has the app again; tokens killed earlier stay dead
PARTNER_APP_UNINSTALLED    every system-user token of the business for the app dies (190 /
                           ``uninstall_subcode``, 458), its unused codes and subscriptions go
PARTNER_REMOVED            the app's tokens lose the WABA (or die: ``waba_removal_revokes_tokens``)
                           and its subscription goes
ACCOUNT_DELETED            the WABA and its numbers are gone; tokens lose it (or die, same knob)
ACCOUNT_OFFBOARDED         its numbers cannot send (``offboarded_send_error_code``) until
ACCOUNT_RECONNECTED        which lifts that; tokens are untouched by both
DISABLED_UPDATE            ``DISABLE`` refuses sends with 368, ``REINSTATE`` lifts it; tokens stay
=========================  ======================================================================
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import TYPE_CHECKING, Any

from permatoken.sandbox.errors import GraphAPIError
from permatoken.sandbox.models import SYSTEM_KINDS, App, Token, Waba
from permatoken.sandbox.signing import (
    BAN_STATES,
    AccountEvent,
    account_update,
    deauthorize_payload,
    event_value,
    signed_request,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from permatoken.sandbox.state import SandboxState

_MONTHS = (
    "January February March April May June July August September October November December"
).split()


def embedded_signup(
    state: SandboxState, app_id: str | None, business_name: str | None
) -> dict[str, Any]:
    """A client business finishes the popup: business, WABA, number, installation and a code."""
    app = state._app_or_default(app_id)
    name = business_name or f"Signup Business {len(state.businesses) + 1}"
    business = state.create_business(name)
    # The business integration system user the code exchange issues the business token for.
    state.create_system_user(
        business["id"], f"{app.name} integration", role="INTEGRATION", apps=[app.id]
    )
    waba = state.create_waba(business["id"], f"{name} WABA")
    number = "1555" + "".join(secrets.choice("0123456789") for _ in range(7))
    phone = state.create_phone_number(waba["id"], number, verified_name=name)
    state.installations[(business["id"], app.id)] = state.clock.now()
    code = state.create_code(app_id=app.id, business_id=business["id"])
    if state.config.embedded_signup_sends_installed:
        _announce(state, AccountEvent.PARTNER_APP_INSTALLED, state.wabas[waba["id"]], app)
    return {
        "code": code,
        "business_id": business["id"],
        "waba_id": waba["id"],
        "phone_number_id": phone["id"],
    }


def install(state: SandboxState, business_id: str, app_id: str | None) -> dict[str, Any]:
    """``PARTNER_APP_INSTALLED`` for each WABA of the business; dead tokens stay dead."""
    business = state._need(state.businesses, business_id, "business")
    app = state._app_or_default(app_id)
    state.installations[(business.id, app.id)] = state.clock.now()
    for user in state.system_users.values():
        if user.business_id == business.id and user.role == "INTEGRATION":
            user.apps.add(app.id)
    wabas = _wabas_of(state, business.id)
    deliveries = [
        d for w in wabas for d in _announce(state, AccountEvent.PARTNER_APP_INSTALLED, w, app)
    ]
    return _result(AccountEvent.PARTNER_APP_INSTALLED, business.id, app, wabas, 0, deliveries)


def uninstall(state: SandboxState, business_id: str, app_id: str | None) -> dict[str, Any]:
    """The client removes the app (Business Settings > Connected apps)."""
    business = state._need(state.businesses, business_id, "business")
    app = state._app_or_default(app_id)
    if state.installations.pop((business.id, app.id), None) is None:
        raise ValueError(f"business {business.id} has not installed app {app.id}")
    killed = _kill(
        state,
        lambda t: t.business_id == business.id and t.app_id == app.id and t.kind in SYSTEM_KINDS,
        state.config.uninstall_subcode,
    )
    for value, code in list(state.codes.items()):
        if code.business_id == business.id and code.app_id == app.id:
            del state.codes[value]
    for user in state.system_users.values():
        if user.business_id == business.id:
            user.apps.discard(app.id)
    wabas = _wabas_of(state, business.id)
    deliveries = []
    for waba in wabas:
        deliveries += _announce(state, AccountEvent.PARTNER_APP_UNINSTALLED, waba, app)
        unsubscribe(state, waba.id, app.id)
    return _result(
        AccountEvent.PARTNER_APP_UNINSTALLED, business.id, app, wabas, killed, deliveries
    )


def account_event(
    state: SandboxState,
    waba_id: str,
    event: AccountEvent,
    app_id: str | None,
    ban_state: str | None,
) -> dict[str, Any]:
    """Raise ``event`` on one WABA; the two app-level events act on the WABA's business."""
    waba = state._need(state.wabas, waba_id, "WABA")
    app = state._app_or_default(app_id)
    if ban_state is not None and (
        event is not AccountEvent.DISABLED_UPDATE or ban_state not in BAN_STATES
    ):
        raise ValueError(f"ban_state is one of {', '.join(BAN_STATES)}, for DISABLED_UPDATE only")
    if event is AccountEvent.PARTNER_APP_INSTALLED:
        return install(state, waba.business_id, app.id)
    if event is AccountEvent.PARTNER_APP_UNINSTALLED:
        return uninstall(state, waba.business_id, app.id)
    killed = 0
    deliveries = _announce(state, event, waba, app, ban_state=ban_state)
    if event is AccountEvent.PARTNER_REMOVED:
        killed = _lose_waba(state, waba.id, lambda t: t.app_id == app.id)
        unsubscribe(state, waba.id, app.id)
    elif event is AccountEvent.ACCOUNT_DELETED:
        killed = _lose_waba(state, waba.id, lambda t: True)
        for phone_id in [p.id for p in state.phone_numbers.values() if p.waba_id == waba.id]:
            del state.phone_numbers[phone_id]
        state.subscriptions.pop(waba.id, None)
        del state.wabas[waba.id]
    elif event in (AccountEvent.ACCOUNT_OFFBOARDED, AccountEvent.ACCOUNT_RECONNECTED):
        waba.offboarded = event is AccountEvent.ACCOUNT_OFFBOARDED
    else:  # DISABLED_UPDATE
        state_now = ban_state or "DISABLE"
        waba.ban_state = None if state_now == "REINSTATE" else state_now
    return _result(event, waba.business_id, app, [waba], killed, deliveries)


def deauthorize(state: SandboxState, user_id: str, app_id: str | None) -> dict[str, Any]:
    """A person removes the app: their tokens die and the app's callback gets a signed_request."""
    app = state._app_or_default(app_id)
    mine = [t for t in state.tokens.values() if t.app_id == app.id and t.user_id == user_id]
    if not mine or all(t.kind == "app" for t in mine):
        raise KeyError("unknown user for this app")
    killed = _kill(
        state,
        lambda t: t.app_id == app.id and t.user_id == user_id and t.kind != "app",
        state.config.deauthorize_subcode,
    )
    payload = deauthorize_payload(user_id, int(state.clock.now()))
    delivery = state.webhooks.deauthorize(
        app_id=app.id,
        url=state.config.deauthorize_url,
        payload=payload,
        signed_request=signed_request(app.secret, payload),
    )
    return {"user_id": user_id, "app_id": app.id, "revoked_tokens": killed, "delivery": delivery}


# -- subscriptions (``/{waba-id}/subscribed_apps``) ------------------------------------------------


def subscribe(state: SandboxState, waba_id: str, app_id: str) -> None:
    apps = state.subscriptions.setdefault(waba_id, [])
    if app_id not in apps:
        apps.append(app_id)


def unsubscribe(state: SandboxState, waba_id: str, app_id: str) -> None:
    apps = state.subscriptions.get(waba_id, [])
    if app_id in apps:
        apps.remove(app_id)


def send_refusal(state: SandboxState, waba: Waba) -> GraphAPIError | None:
    """Why a number of ``waba`` cannot send right now, or ``None``."""
    if waba.ban_state == "DISABLE":
        return GraphAPIError(368)
    if waba.offboarded:
        code = state.config.offboarded_send_error_code
        return GraphAPIError(code, f"(#{code}) Account not registered")
    return None


# -- internals ---------------------------------------------------------------------------------


def _wabas_of(state: SandboxState, business_id: str) -> list[Waba]:
    return [w for w in state.wabas.values() if w.business_id == business_id]


def _kill(state: SandboxState, which: Callable[[Token], bool], subcode: int) -> int:
    killed = 0
    for token in state.tokens.values():
        if which(token) and not token.revoked:
            token.revoked, token.invalid_subcode = True, subcode
            killed += 1
    return killed


def _lose_waba(state: SandboxState, waba_id: str, which: Callable[[Token], bool]) -> int:
    """Tokens that reached the WABA lose it, or die when the config says so; how many died."""
    reached = [t for t in state.tokens.values() if waba_id in t.waba_ids and which(t)]
    if state.config.waba_removal_revokes_tokens:
        chosen = {id(t) for t in reached}
        return _kill(state, lambda t: id(t) in chosen, state.config.uninstall_subcode)
    for token in reached:
        token.waba_ids = [w for w in token.waba_ids if w != waba_id]
    return 0


def _announce(
    state: SandboxState,
    event: AccountEvent,
    waba: Waba,
    app: App,
    *,
    ban_state: str | None = None,
) -> list[dict[str, Any]]:
    """Hand one event to the outbox for every app it reaches; the delivery records."""
    config = state.config
    now = state.clock.now()
    subscribed = state.subscriptions.get(waba.id, [])
    if event.about_partner or not config.webhooks_need_subscription:
        recipients = [app.id, *(a for a in subscribed if a != app.id and not event.about_partner)]
    else:
        recipients = list(subscribed)
    if not recipients:
        recipients, reason = (
            [app.id],
            (f"WABA {waba.id} is not subscribed to any app (POST /{{waba-id}}/subscribed_apps)"),
        )
    else:
        reason = None
    moment = dt.datetime.fromtimestamp(int(now), tz=dt.UTC)
    ban_date = f"{_MONTHS[moment.month - 1]} {moment.day}, {moment.year}"
    deliveries: list[dict[str, Any]] = []
    for recipient_id in recipients:
        recipient = state.apps[recipient_id]
        value = event_value(
            event,
            waba_id=waba.id,
            owner_business_id=waba.business_id,
            app_id=recipient.id,
            ban_state=ban_state,
            ban_date=ban_date,
        )
        entry_id = waba.id
        if event.about_partner and config.partner_event_entry_id == "partner_business":
            entry_id = recipient.business_id or waba.id
        deliveries += state.webhooks.webhook(
            app_id=recipient.id,
            app_secret=recipient.secret,
            event=event.value,
            waba_id=waba.id,
            url=config.webhook_url,
            envelope=account_update(waba.id, int(now), value, entry_id=entry_id),
            reason=reason,
        )
    return deliveries


def _result(
    event: AccountEvent,
    business_id: str,
    app: App,
    wabas: list[Waba],
    killed: int,
    deliveries: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "event": event.value,
        "business_id": business_id,
        "app_id": app.id,
        "waba_ids": [w.id for w in wabas],
        "revoked_tokens": killed,
        "deliveries": deliveries,
    }
