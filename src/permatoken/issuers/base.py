"""The issuer interface and the context an issuer works in."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

import httpx

from .._exceptions import InputError, RotationError
from .._secret import Secret
from ..meta.graph import GraphClient
from ..models import Credential, TokenVersion


@dataclass(frozen=True)
class Obtained:
    """A value an issuer just obtained. Nothing here has been stored yet."""

    token: Secret
    #: Expiry as the issuer learned it (None = never, or unknown when ``expiry_known`` is False).
    expires_at: datetime | None = None
    expiry_known: bool = False
    token_type: str | None = None
    #: Does the previous value keep working until its own expiry?
    old_stays_valid: bool = True
    #: Secrets stored encrypted with the new version (e.g. the refresh token that came with it).
    companions: dict[str, Secret] = field(default_factory=dict)
    #: Credential-level secrets to replace atomically with the pending version.
    secret_updates: dict[str, Secret] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Obtained(token={self.token!r}, expires_at={self.expires_at}, old_stays_valid={self.old_stays_valid})"


@dataclass
class IssueContext:
    """What an issuer may use. Secrets are fetched lazily so unused ones are never decrypted."""

    credential: Credential
    current: TokenVersion | None
    now: datetime
    graph: GraphClient
    http: httpx.Client
    current_token: Callable[[], Secret]
    app_secret: Callable[[], Secret]
    secret: Callable[[str], Secret]
    reveal_credential: Callable[[str], Secret]
    #: The current token is known to be dead (a 190 from Meta or an invalid debug_token).
    current_dead: bool = False

    def option(self, key: str, default: Any = None, *, required: bool = False) -> Any:
        value = self.credential.options.get(key, default)
        if required and value in (None, ""):
            raise RotationError(
                f"{self.credential.name}: the {self.credential.issuer} issuer needs option {key!r}",
                hint=f"set it with `permatoken add … --option {key}=VALUE`",
                name=self.credential.name,
                reason="misconfigured",
                needs_human=True,
            )
        return value

    def require_app(self) -> str:
        app_id = self.credential.app_id
        if not app_id:
            raise RotationError(
                f"{self.credential.name}: the {self.credential.issuer} issuer needs the Meta app id",
                hint="add the credential with --app-id and --app-secret-file",
                name=self.credential.name,
                reason="misconfigured",
                needs_human=True,
            )
        return app_id


class Issuer(Protocol):
    kind: ClassVar[str]
    #: Can obtain new values without a human.
    automatic: ClassVar[bool]
    #: Can still obtain a value when the current one is dead (expired or revoked).
    recovers_dead: ClassVar[bool]
    #: Is the value verifiable through Meta's debug_token?
    meta: ClassVar[bool]
    #: Options ``obtain`` cannot work without (``ctx.option(key, required=True)``).
    required_options: ClassVar[tuple[str, ...]]
    #: Does ``obtain`` call Meta with the credential's app (``ctx.require_app()``)?
    needs_app: ClassVar[bool]
    #: The credential secrets it reads with ``ctx.secret(name)`` (names from
    #: :data:`permatoken.vocabulary.SECRET_NAMES`; the app secret is not one of them).
    secrets: ClassVar[frozenset[str]]

    def obtain(self, ctx: IssueContext) -> Obtained: ...


def check_can_obtain(
    issuer: Issuer, name: str, options: Mapping[str, Any], app_id: str | None
) -> None:
    """Refuse, as the caller's input error, a credential its issuer could not obtain a value for.

    Checked before a first value is asked for (``add`` without a token): a missing option is
    the caller's mistake to fix, not a failed call upstream. The same holes found at a later
    renewal are :class:`RotationError` s that need a human (:meth:`IssueContext.option`).
    """
    missing = [key for key in issuer.required_options if options.get(key) in (None, "")]
    if missing:
        said = " and ".join(repr(key) for key in missing)
        key = missing[0]
        raise InputError(
            f"{name}: the {issuer.kind} issuer needs option{'s' if len(missing) > 1 else ''} "
            f"{said}; nothing was stored",
            hint=f"`permatoken add {name} --issuer {issuer.kind} --option {key}=VALUE …` "
            "(one --option per missing name)",
            name=name,
        )
    if issuer.needs_app and not app_id:
        raise InputError(
            f"{name}: the {issuer.kind} issuer needs the Meta app id; nothing was stored",
            hint=f"give it: `permatoken add {name} --issuer {issuer.kind} --app-id APP_ID "
            "--app-secret-file FILE …`",
            name=name,
        )


def needs_human(ctx: IssueContext, message: str, hint: str) -> RotationError:
    return RotationError(
        f"{ctx.credential.name}: {message}",
        hint=hint,
        name=ctx.credential.name,
        reason="needs_human",
        needs_human=True,
    )
