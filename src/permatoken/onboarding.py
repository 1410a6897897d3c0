"""Adding a credential the way a user expects: register the app, ask Meta, store, explain."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from ._exceptions import GraphError, InputError, NotFoundError
from ._secret import Secret
from .health import assess
from .issuers import IssueContext, issuer_for
from .models import CredentialStatus, Health, NewCredential, VersionMeta
from .rotation import meta_from_debug, plan_next
from .settings import Settings
from .store import Store


@dataclass(frozen=True)
class AddResult:
    status: CredentialStatus
    verdict: str | None
    advice: str | None


def add_credential(
    settings: Settings,
    store: Store,
    spec: NewCredential,
    token: Secret | None,
    *,
    secrets: Mapping[str, Secret] | None = None,
    app_secret: Secret | None = None,
    inspect_online: bool = True,
    expiry: datetime | None = None,
    never_expires: bool = False,
    token_type: str | None = None,
    actor: str = "cli",
) -> AddResult:
    """Validate, inspect with Meta (unless offline), and store ``token`` as version 1.

    An invalid token is refused with Meta's reason and nothing is stored. With ``token=None``
    the first value is obtained from the issuer (mint, oauth2-refresh, login).
    """
    from .service import build_engine

    if spec.app_id is not None:
        try:
            store.get_app(spec.app_id)
            if app_secret is not None:
                store.put_app(spec.app_id, app_secret, actor=actor)
        except NotFoundError:
            if app_secret is None:
                raise InputError(
                    f"app {spec.app_id} is not registered yet",
                    hint="give its secret once with --app-secret-file FILE (or --app-secret-env VAR)",
                ) from None
            store.put_app(spec.app_id, app_secret, actor=actor)
    engine = build_engine(settings, store)
    try:
        now = engine.clock.now()
        if token is None:
            issuer = issuer_for(spec.issuer)
            if not issuer.recovers_dead:
                raise InputError(
                    f"the {spec.issuer} issuer cannot obtain a first value; supply the token"
                )
            from .models import Credential

            draft = Credential(
                0,
                spec.name,
                "",
                spec.issuer,
                spec.purpose,
                spec.business_id,
                spec.waba_ids,
                spec.phone_number_id,
                spec.app_id,
                Health.OK,
                None,
                dict(spec.options),
                dict(spec.policy),
            )
            ctx = IssueContext(
                credential=draft,
                current=None,
                now=now,
                graph=engine.graph,
                http=engine.http,
                current_token=_no_current_token,
                app_secret=lambda: store.app_secret(spec.app_id or ""),
                secret=lambda s: _draft_secret(secrets or {}, s),
                reveal_credential=store.reveal,
                current_dead=True,
            )
            obtained = issuer.obtain(ctx)
            token = obtained.token
            secrets = dict(secrets or {}) | obtained.secret_updates
            if obtained.expiry_known:
                expiry, never_expires = obtained.expires_at, obtained.expires_at is None
            token_type = token_type or obtained.token_type
        verdict_text: str | None = None
        advice: str | None = None
        if inspect_online and spec.app_id:
            try:
                result = engine.inspect_value(token, spec.app_id)
            except GraphError as exc:
                raise InputError(
                    f"Meta could not inspect the token: {exc.error.describe()}",
                    hint=exc.error.advice or "check --app-id and the app secret, or use --offline",
                ) from exc
            said = engine.describe(result)
            if not result.is_valid:
                raise InputError(
                    f"refusing to store an invalid token. {said.summary}", hint=said.advice
                )
            if result.app_id and result.app_id != spec.app_id:
                raise InputError(
                    f"the token belongs to app {result.app_id}, not {spec.app_id}",
                    hint="pass the right --app-id",
                )
            meta = meta_from_debug(result, now=now, summary=said.summary)
            verdict_text, advice = said.summary, said.advice
        else:
            if not never_expires and expiry is None and token_type is None:
                raise InputError(
                    "cannot learn the expiry offline: give --expires-at or --never-expires"
                )
            meta = VersionMeta(
                token_type=token_type,
                expires_at=None if never_expires else expiry,
                waba_ids=spec.waba_ids,
            )
        status = store.add_credential(
            spec, token, meta, secrets=secrets, health=assess(Health.OK, meta, now), actor=actor
        )
        cur = status.current
        assert cur is not None
        policy = engine.policy_for(status.credential)
        due, action = plan_next(policy, cur, status.credential, now)
        if (
            not issuer_for(spec.issuer).automatic
            and meta.expires_at is not None
            and policy.remind_before
            and (meta.expires_at - now).total_seconds() <= max(policy.remind_before)
        ):
            # Added inside a reminder threshold: the first reminder is due now, not at the next one.
            due, action = now, "remind"
        store.update_credential(spec.name, next_due_at=due, next_action=action)
        if verdict_text and status.credential.issuer == "manual" and meta.expires_at is not None:
            advice = (
                advice
                or "this token is renewed by hand: permatoken will remind you before it expires"
            )
        return AddResult(store.status(spec.name), verdict_text, advice)
    finally:
        engine.close()


def _no_current_token() -> Secret:
    raise InputError("there is no current token yet: this issuer cannot obtain a first value")


def _draft_secret(secrets: Mapping[str, Secret], name: str) -> Secret:
    if name not in secrets:
        raise InputError(
            f"the issuer needs a {name.replace('_', ' ')}; give it with --{name.replace('_', '-')}-file"
        )
    return secrets[name]
