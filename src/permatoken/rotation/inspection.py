"""Token inspection: what Meta's ``debug_token`` says, the verdict shown, the canary call.

Everything here is a plain function; the engine does the reading and writing around it
(:meth:`~permatoken.rotation.engine.RenewalEngine.inspect`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .._exceptions import GraphError
from .._secret import Secret
from ..health import assess
from ..meta.debug import DebugTokenResult, Verdict, verdict
from ..meta.errors import ErrorKind
from ..meta.graph import GraphClient
from ..models import Credential, Health, VersionMeta
from ..policy import Policy, renewal_due_at


@dataclass(frozen=True)
class Inspection:
    result: DebugTokenResult
    verdict: Verdict
    health: Health
    canary_ok: bool | None = None


def meta_from_debug(result: DebugTokenResult, *, now: datetime, summary: str | None) -> VersionMeta:
    return VersionMeta(
        token_type=result.type,
        issued_at=result.issued_at,
        expires_at=result.expires_at,
        data_access_expires_at=result.data_access_expires_at,
        scopes=tuple(result.scopes),
        waba_ids=tuple(result.waba_ids),
        user_id=result.user_id,
        is_valid=result.is_valid,
        verdict=summary,
        inspected_at=now,
    )


def describe_result(
    result: DebugTokenResult, *, now: datetime, cred: Credential | None, policy: Policy | None
) -> Verdict:
    """The verdict on ``result``, with when the credential's renewal is due if it is known."""
    renew_from = None
    if (
        cred is not None
        and policy is not None
        and result.is_valid
        and result.expires_at is not None
    ):
        renew_from = renewal_due_at(
            policy,
            issued_at=result.issued_at,
            expires_at=result.expires_at,
            created_at=now,
            jitter_seed=cred.name,
        )
    return verdict(result, now=now, renew_from=renew_from)


def health_after_inspection(
    result: DebugTokenResult, now: datetime, canary_ok: bool | None
) -> Health:
    """The current version's health once Meta (and the canary) answered."""
    if not result.is_valid or canary_ok is False:
        return Health.INVALID
    return assess(Health.OK, VersionMeta(expires_at=result.expires_at, is_valid=True), now)


def canary_call(
    graph: GraphClient, cred: Credential, token: Secret, app_secret: Secret | None
) -> bool:
    """One cheap real call with ``token`` (the phone number, else the WABA's numbers).

    False only for the errors that mean the token cannot do its job; True when nothing can be
    tried or the failure says nothing about the token (a throttle, an outage).
    """
    try:
        if cred.phone_number_id:
            graph.get_phone_number(cred.phone_number_id, token, app_secret)
        elif cred.waba_ids:
            graph.list_phone_numbers(cred.waba_ids[0], token, app_secret)
        else:
            return True
    except GraphError as exc:
        return (
            exc.error.kind is not ErrorKind.TOKEN_DEAD
            and exc.error.kind is not ErrorKind.PERMISSION
        )
    return True
