"""What keeps a key inside its grants beyond the name in the URL.

A grant check on the route's credential name is not enough when a request carries other names
or shared objects:

- issuer options that name another credential (``admin_credential``) or an upstream server that
  receives stored secrets (``token_url``, ``login_url``), declared in
  :mod:`permatoken.references`: a reference must be within the caller's grants, an upstream
  change of an existing credential is admin-only, and both are stamped with who set them;
- API keys a grant-limited admin creates, lists or revokes: never wider than its own grants;
- Meta apps, which credentials of several tenants may share: a grant-limited key changes an app
  only if every credential using it is within its grants, and lists only those apps.

Every refusal is a 403 recorded in the audit log (``denied.manage`` …) and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from .. import references as refs
from .._exceptions import InvalidNameError
from ..access import Action, ApiKey, Principal, Role
from ..models import App, CredentialStatus, validate_name
from .broker import Broker
from .errors import ApiError


def options_for_write(
    b: Broker,
    request: Request,
    p: Principal,
    name: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    *,
    creating: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``after`` stamped with provenance, and what to audit; 403/422 if the caller may not.

    ``before`` is the stored options (empty when creating). Only options whose value changes
    are checked: what the caller leaves alone stays with whoever set it.
    """
    reserved = sorted(k for k in after if refs.is_reserved(k))
    if reserved:
        raise ApiError(
            422, "validation_error", f"option {reserved[0]!r}: names starting with _ are reserved"
        )
    audit: dict[str, Any] = {}
    for option in sorted(refs.changed(before, after, refs.CREDENTIAL_OPTIONS)):
        target = after.get(option)
        if target in (None, ""):
            continue
        try:
            validate_name(str(target))
        except InvalidNameError as exc:
            raise ApiError(422, "validation_error", f"option {option}: {exc.message}") from None
        if not p.may(Action.MANAGE, str(target)):
            _deny(b, request, p, name, f"{option} names {str(target)!r}, outside this key's grants")
        audit.setdefault("references", {})[option] = str(target)
    for option in sorted(refs.changed(before, after, refs.UPSTREAM_OPTIONS)):
        value = after.get(option)
        if value in (None, ""):
            continue
        if not refs.upstream_host(value):
            raise ApiError(
                422,
                "validation_error",
                f"option {option} must be an http:// or https:// URL with a host",
            )
        if not creating and p.role is not Role.ADMIN:
            # Otherwise an operator could send the stored refresh token or password anywhere.
            _deny(
                b,
                request,
                p,
                name,
                f"{option} decides where the stored secrets are sent: only an admin key may "
                "change it (or remove the credential and add it again with its secrets)",
            )
        audit.setdefault("upstream", {})[option] = {
            "from": refs.upstream_host(before.get(option)),
            "to": refs.upstream_host(value),
        }
    return refs.stamp(before, after, p.actor, datetime.now(UTC)), audit


def _deny(b: Broker, request: Request, p: Principal, name: str, why: str) -> None:
    b.recorder.add(b.denial(request, p, Action.MANAGE, name, reason=why))
    raise ApiError(403, "forbidden", f"this API key ({p.role.value}) may not do this: {why}")


# --- API keys -------------------------------------------------------------------------------
def key_visible(p: Principal, key: ApiKey) -> bool:
    """A grant-limited admin sees and revokes only keys that reach nothing beyond its grants."""
    return p.contains(key.grants)


def check_new_key_grants(b: Broker, request: Request, p: Principal, grants: list[str]) -> None:
    if not p.contains(tuple(grants)):
        wanted = ", ".join(grants) if grants else "no grants (every credential)"
        b.recorder.add(b.denial(request, p, Action.KEYS, None, reason=f"grants {wanted}"))
        raise ApiError(
            403,
            "forbidden",
            f"this API key may only create keys within its own grants ({', '.join(p.grants)}); "
            f"asked for {wanted}",
        )


# --- Meta apps --------------------------------------------------------------------------------
def app_users(statuses: list[CredentialStatus]) -> dict[str, list[str]]:
    """App id → names of the credentials that use it."""
    users: dict[str, list[str]] = {}
    for st in statuses:
        if st.credential.app_id:
            users.setdefault(st.credential.app_id, []).append(st.credential.name)
    return users


def app_visible(p: Principal, app: App, users: Mapping[str, list[str]]) -> bool:
    """Apps that no credential uses yet, or that one within the grants uses."""
    names = users.get(app.id, [])
    return not p.grants or not names or any(p.sees(n) for n in names)


def check_app_change(
    b: Broker, request: Request, p: Principal, app_id: str, users: Mapping[str, list[str]]
) -> None:
    """A grant-limited key may change an app only if no credential outside its grants uses it."""
    foreign = [n for n in users.get(app_id, []) if not p.sees(n)]
    if p.grants and foreign:
        b.recorder.add(b.denial(request, p, Action.MANAGE, None, reason=f"app {app_id} is shared"))
        raise ApiError(
            403,
            "forbidden",
            f"app {app_id} is used by credentials outside this key's grants; "
            "only a key without grant limits may change it",
        )


__all__ = [
    "app_users",
    "app_visible",
    "check_app_change",
    "check_new_key_grants",
    "key_visible",
    "options_for_write",
]
