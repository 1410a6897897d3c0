"""Adding a credential the way a user expects: register the app, ask Meta, store, explain."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._exceptions import (
    AlreadyExistsError,
    GraphError,
    InputError,
    NotFoundError,
    UpstreamUnreachableError,
)
from ._secret import Secret
from .health import assess
from .issuers import IssueContext, issuer_for
from .issuers.base import check_can_obtain
from .meta.errors import ErrorKind
from .models import Credential, CredentialStatus, Health, NewCredential, VersionMeta
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

    # Nothing is written before the whole add has succeeded: refuse a taken name before asking
    # Meta anything, and register a new app in the same transaction as the credential.
    _refuse_existing(store, spec.name)
    app_secret, new_app_secret = _app_secret_for(store, spec.app_id, app_secret)
    engine = build_engine(settings, store)
    try:
        now = engine.clock.now()
        if token is None:
            issuer = issuer_for(spec.issuer)
            if not issuer.recovers_dead:
                raise InputError(
                    f"the {spec.issuer} issuer cannot obtain a first value; supply the token"
                )
            check_can_obtain(issuer, spec.name, spec.options, spec.app_id)
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
                app_secret=lambda: _known(app_secret, "the app secret"),
                secret=lambda s: _draft_secret(secrets or {}, s),
                reveal_credential=lambda other: _referenced(store, spec.name, other),
                current_dead=True,
            )
            try:
                obtained = issuer.obtain(ctx)
            except GraphError as exc:
                upstream = unreachable(exc, settings, "obtain the first token", offline=False)
                if upstream is None:
                    raise
                raise upstream from exc
            token = obtained.token
            secrets = dict(secrets or {}) | obtained.secret_updates
            if obtained.expiry_known:
                expiry, never_expires = obtained.expires_at, obtained.expires_at is None
            token_type = token_type or obtained.token_type
        verdict_text: str | None = None
        advice: str | None = None
        if inspect_online and spec.app_id:
            try:
                result = engine.graph.debug_token(
                    token, app_id=spec.app_id, app_secret=_known(app_secret, "the app secret")
                )
            except GraphError as exc:
                upstream = unreachable(exc, settings, "inspect the token", offline=True)
                if upstream is not None:
                    raise upstream from exc
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
            spec,
            token,
            meta,
            secrets=secrets,
            health=assess(Health.OK, meta, now),
            actor=actor,
            new_app_secret=new_app_secret,
        )
        cur = status.current
        assert cur is not None
        policy = engine.policy_for(status.credential)
        due, action = plan_next(policy, cur, status.credential, now)
        by_hand = not issuer_for(spec.issuer).automatic
        if (
            by_hand
            and meta.expires_at is not None
            and policy.remind_before
            and (meta.expires_at - now).total_seconds() <= max(policy.remind_before)
        ):
            # Added inside a reminder threshold: the first reminder is due now, not at the next one.
            due, action = now, "remind"
        store.update_credential(spec.name, next_due_at=due, next_action=action)
        if verdict_text and by_hand and meta.expires_at is not None:
            advice = (
                advice
                or "this token is renewed by hand: permatoken will remind you before it expires"
            )
        return AddResult(store.status(spec.name), verdict_text, advice)
    finally:
        engine.close()


def update_credential(
    store: Store,
    name: str,
    changes: Mapping[str, Any],
    *,
    options: Mapping[str, object] | None = None,
    unset: tuple[str, ...] = (),
    app_secret: Secret | None = None,
    actor: str = "cli",
) -> Credential:
    """Change a credential's details (app, business, WABAs, phone number, purpose, options).

    A new app is registered in the same transaction; a registered app's secret is never
    changed here (``permatoken app update`` does that). Refused changes write nothing.
    """
    cred = store.get(name)
    if cred.rotation_step:
        raise InputError(
            f"{name} is being rotated (step {cred.rotation_step}); change it when that finished",
            hint="`permatoken status` shows the step",
        )
    fields = dict(changes)
    new_app_secret = None
    if fields.get("app_id"):
        _, new_app_secret = _app_secret_for(store, fields["app_id"], app_secret)
    if options or unset:
        merged = dict(cred.options) | dict(options or {})
        for key in unset:
            if key not in merged:
                raise InputError(
                    f"{name} has no option {key!r}",
                    hint=f"its options: {', '.join(sorted(cred.options)) or 'none'}",
                )
            del merged[key]
        fields["options"] = merged
    return store.update_credential(name, actor=actor, new_app_secret=new_app_secret, **fields)


def _refuse_existing(store: Store, name: str) -> None:
    try:
        store.get(name)
    except NotFoundError:
        return
    raise AlreadyExistsError(
        f"credential {name!r} already exists",
        hint="use `permatoken rotate` or `permatoken remove` first",
        name=name,
    )


def _app_secret_for(
    store: Store, app_id: str | None, given: Secret | None
) -> tuple[Secret | None, Secret | None]:
    """(the secret to call Meta with, the secret to register with the credential or None).

    A registered app keeps its secret: a different one given to ``add`` is refused, because
    overwriting it would break every other credential of the app if the new one is wrong.
    """
    if app_id is None:
        return given, None
    try:
        stored = store.app_secret(app_id)
    except NotFoundError:
        if given is None:
            raise InputError(
                f"app {app_id} is not registered yet",
                hint="give its secret once with --app-secret-file FILE (or --app-secret-env VAR)",
                app_id=app_id,
            ) from None
        return given, given
    if given is not None and given != stored:
        raise InputError(
            f"app {app_id} is already registered with a different secret; nothing was changed",
            hint=f"to change the app's secret run `permatoken app update {app_id} --secret-file FILE`; "
            "to use the stored one leave out --app-secret-file",
            app_id=app_id,
        )
    return stored, None


def _known(secret: Secret | None, what: str) -> Secret:
    if secret is None:
        raise InputError(f"{what} is needed: give --app-id and --app-secret-file")
    return secret


def unreachable(
    exc: GraphError, settings: Settings, doing: str, *, offline: bool
) -> UpstreamUnreachableError | None:
    """The error to show when Meta did not answer at all (``None`` for a real Graph answer)."""
    if exc.http_status is not None or exc.error.kind is not ErrorKind.TRANSIENT:
        return None
    hint = "check the network and PERMATOKEN_GRAPH_URL, then try again"
    if offline:
        hint += "; or store the token without asking Meta: --offline with --expires-at or --never-expires"
    return UpstreamUnreachableError(
        f"cannot reach Meta at {settings.graph_url} to {doing}: {exc.error.message}",
        hint=hint,
        error=exc.error,
        endpoint=exc.endpoint,
        ambiguous=exc.ambiguous,
        usage=exc.usage,
    )


def _no_current_token() -> Secret:
    raise InputError("there is no current token yet: this issuer cannot obtain a first value")


def _referenced(store: Store, name: str, other: str) -> Secret:
    """The current token of the credential an option names (the mint's admin credential)."""
    try:
        return store.reveal(other)
    except NotFoundError as exc:
        # The caller's option names nothing usable: their input, not a missing route or record.
        raise InputError(
            f"{name}: the credential {other!r} its options name cannot be used: "
            f"{exc.message}; nothing was stored",
            hint=f"add it first (`permatoken add {other} …`), or name another one",
            name=name,
        ) from None


def _draft_secret(secrets: Mapping[str, Secret], name: str) -> Secret:
    if name not in secrets:
        raise InputError(
            f"the issuer needs a {name.replace('_', ' ')}; give it with --{name.replace('_', '-')}-file"
        )
    return secrets[name]
