"""Embedded Signup onboarding: one call from a client's code to stored, subscribed credentials.

The code lives 30 seconds and works once, and the business token it yields cannot be fetched
again the same way, so the order is fixed:

1. a code seen before answers from the store: the same result after a success, and a resume
   (no second exchange) after a crash that happened after step 2;
2. exchange the code and **seal the token into ``onboardings`` at once** (before any other call);
3. inspect it (``debug_token``: type, expiry, granular scopes → WABA ids), read each WABA's phone
   numbers, subscribe the app to each WABA (``POST /{waba-id}/subscribed_apps``);
4. store one credential per WABA named ``{tenant}/{waba-id}`` (or one named as asked, holding
   every WABA); a credential of that name already holding another token gets this one as a new
   version (the client signed up again after removing the app);
5. record the answer on the staged row, which makes step 1 answer it next time.

Steps 3-5 are idempotent, so a crash anywhere after step 2 is finished by retrying the same code.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from .._exceptions import GraphError, InputError, NotFoundError
from .._secret import Secret, register_secret
from ..health import assess
from ..models import Health, NewCredential, VersionMeta, validate_name
from ..rotation import RenewalEngine, meta_from_debug, plan_next
from ..settings import Settings
from ..store import Store
from ..store.providers import Onboardings, code_hash
from ..timeutil import isoformat

log = logging.getLogger("permatoken.onboarding")

ACTOR = "embedded-signup"


def check_target(tenant: str, name: str | None) -> str:
    """The tenant (and name, if given) as valid names; a given name must be in the tenant."""
    validate_name(f"{tenant}/x")
    if "/" in tenant:
        raise InputError(f"a tenant is one name segment, not {tenant[:60]!r}", hint="e.g. acme")
    if name is not None:
        validate_name(name)
        if not name.startswith(f"{tenant}/"):
            raise InputError(
                f"the name {name[:60]!r} is not in tenant {tenant!r}",
                hint=f"use a name that starts with {tenant}/ (or leave --name out)",
            )
    return tenant


def choose_app(store: Store, app_id: str | None) -> str:
    if app_id is not None:
        store.app_secret(app_id)  # NotFoundError names `permatoken app add`
        return app_id
    apps = store.list_apps()
    if len(apps) == 1:
        return apps[0].id
    raise InputError(
        "no Meta app registered" if not apps else "several Meta apps are registered",
        hint="register your Tech Provider app once: `permatoken app add APP_ID --secret-file FILE`"
        if not apps
        else 'say which one with --app-id (API: "app_id")',
    )


def onboard(
    settings: Settings,
    store: Store,
    engine: RenewalEngine,
    *,
    code: Secret,
    tenant: str,
    name: str | None = None,
    app_id: str | None = None,
) -> dict[str, Any]:
    """Run (or resume, or repeat) the onboarding of ``code``; the answer as a JSON object."""
    check_target(tenant, name)
    staged = Onboardings(store)
    key = code_hash(code)
    row = staged.get(key)
    if row is not None and (row["tenant"] != tenant or row["name"] != name):
        raise InputError(
            f"this code was already used to onboard tenant {row['tenant']!r}"
            + (f" as {row['name']!r}" if row["name"] else ""),
            hint="repeat the call with the same tenant and name, or run Embedded Signup again",
        )
    if row is not None and row["state"] == "done":
        return dict(row["result"]) | {"repeated": True}
    if row is not None:
        app, token = row["app_id"], staged.token(row)
        log.info("resuming an Embedded Signup onboarding for tenant %s", tenant)
    else:
        app = choose_app(store, app_id)
        secret = store.app_secret(app)
        try:
            issued = engine.graph.exchange_code(code, app_id=app, app_secret=secret)
        except GraphError as exc:
            raise _exchange_refused(exc) from exc
        token = issued.value
        register_secret(token)
        staged.stage(key, token, tenant=tenant, name=name, app_id=app)
    try:
        result = _finish(engine, store, token, app=app, tenant=tenant, name=name)
    except GraphError as exc:
        exc.hint = (
            "the business token is stored safely: repeat the same call with the same code "
            "to finish (it will not be exchanged again)"
        )
        raise
    staged.done(key, result)
    return result | {"repeated": False}


def _exchange_refused(exc: GraphError) -> InputError | GraphError:
    info = exc.error
    if info.http_status is None:
        return exc  # Meta did not answer: the code may still be good; say so as it is
    sub = {36007: "the code has expired (it lives 30 seconds)", 36009: "the code was already used"}
    why = sub.get(info.subcode or 0) or info.describe()
    hint = "run Embedded Signup again and send the new code within 30 seconds"
    if info.code == 1 or info.code == 101:
        hint = "check the app id and secret: `permatoken app update APP_ID --secret-file FILE`"
    return InputError(f"Meta refused the Embedded Signup code: {why}", hint=hint)


def _finish(
    engine: RenewalEngine, store: Store, token: Secret, *, app: str, tenant: str, name: str | None
) -> dict[str, Any]:
    secret = store.app_secret(app)
    now = engine.clock.now()
    result = engine.graph.debug_token(token, app_id=app, app_secret=secret)
    said = engine.describe(result)
    if not result.is_valid:
        raise InputError(
            f"Meta says the business token is not valid: {said.summary}",
            hint="run Embedded Signup again",
        )
    wabas = list(result.waba_ids)
    if not wabas:
        raise InputError(
            "the business token reaches no WhatsApp Business Account (no granular scopes)",
            hint="in Embedded Signup the client must share a WhatsApp Business Account",
        )
    phones: dict[str, list[str]] = {}
    for waba in wabas:
        numbers = engine.graph.list_phone_numbers(waba, token, secret)
        phones[waba] = [str(n["id"]) for n in numbers if isinstance(n.get("id"), str | int)]
        engine.graph.subscribe_app(waba, token, secret)
    business = _business_of(engine, token, secret)
    meta = meta_from_debug(result, now=now, summary=said.summary)
    targets = [(name, wabas)] if name is not None else [(f"{tenant}/{w}", [w]) for w in wabas]
    made = []
    for cname, its_wabas in targets:
        assert cname is not None
        phone = next((p for w in its_wabas for p in phones[w]), None)
        version = _store(engine, store, cname, token, meta, app, business, its_wabas, phone, now)
        made.append(
            {
                "name": cname,
                "version": version,
                "waba_ids": its_wabas,
                "phone_number_ids": [p for w in its_wabas for p in phones[w]],
                "subscribed": True,
            }
        )
    return {
        "tenant": tenant,
        "app_id": app,
        "business_id": business,
        "token_type": result.type,
        "expires_at": isoformat(result.expires_at),
        "verdict": said.summary,
        "credentials": made,
    }


def _business_of(engine: RenewalEngine, token: Secret, secret: Secret) -> str | None:
    try:
        me = engine.graph.me(token, ("id", "client_business_id"), app_secret=secret)
    except GraphError:
        return None  # nice to know, not worth failing the onboarding over
    value = me.get("client_business_id")
    return str(value) if isinstance(value, str | int) and str(value).isdigit() else None


def _store(
    engine: RenewalEngine,
    store: Store,
    name: str,
    token: Secret,
    meta: VersionMeta,
    app: str,
    business: str | None,
    wabas: list[str],
    phone: str | None,
    now: datetime,
) -> int:
    """Create ``name`` with ``token``, or give it ``token`` as a new version; its version number."""
    try:
        existing = store.status(name)
    except NotFoundError:
        existing = None
    if existing is None:
        spec = NewCredential(
            name=name,
            app_id=app,
            business_id=business,
            waba_ids=tuple(wabas),
            phone_number_id=phone,
            purpose="messaging",
        )
        status = store.add_credential(
            spec, token, meta, health=assess(Health.OK, meta, now), actor=ACTOR
        )
        cur = status.current
        assert cur is not None
        due, action = plan_next(engine.policy_for(status.credential), cur, status.credential, now)
        store.update_credential(name, next_due_at=due, next_action=action)
        return cur.version
    if existing.current is not None and existing.current.fingerprint == token.fingerprint:
        return existing.current.version  # a resumed run that had stored it already
    outcome = engine.rotate(name, value=token, reason=ACTOR, force=True)
    store.update_credential(
        name, app_id=app, business_id=business, waba_ids=list(wabas), phone_number_id=phone
    )
    return int(outcome.version or 0)


__all__ = ["check_target", "choose_app", "onboard"]
