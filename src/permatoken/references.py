"""Issuer options that reach beyond their credential, and who configured them.

Two kinds of issuer option are privileged; :data:`PRIVILEGED_BY_ISSUER` declares them once per
issuer that takes any, :data:`ISSUER_OPTIONS` extends that to every issuer, and everything else
(API checks, the engine's check at use, status) derives from it:

- **credential references**: the value names another stored credential whose token the issuer
  uses (the Meta mint's ``admin_credential``). Whoever sets one must be allowed to manage the
  credential it names, and that is checked again every time the token is used, since grants
  change: a failed check is a rotation failure naming the option, and the foreign token is never
  decrypted.
- **upstream destinations**: the value decides where stored secrets are sent (``token_url``,
  ``login_url``). Through the API only admins change them; each change is audited, and the host
  and the last host change are part of the status (``upstream``).

Who set each privileged option, and when, is kept in the credential's own options under the
reserved key ``_provenance`` (``{"admin_credential": {"by": "key:k…", "at": "…"}}``). Option keys
starting with ``_`` are permatoken's own; the API refuses them as input. ``by`` is the API key
(``key:ID``) or a local actor such as ``cli``: the store owner, who can read every token anyway.
An option without provenance was set locally or before provenance was recorded, and is trusted
the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ._exceptions import InputError, NotFoundError, RotationError
from .vocabulary import ISSUERS, IssuerName

if TYPE_CHECKING:
    from ._secret import Secret
    from .models import Credential
    from .store import Store

PROVENANCE = "_provenance"


@dataclass(frozen=True)
class IssuerOptions:
    #: Options whose value is the name of another stored credential the issuer reads.
    credentials: frozenset[str] = frozenset()
    #: Options whose value is a URL the issuer sends stored secrets to.
    upstream: frozenset[str] = frozenset()


_MINT_REFS = IssuerOptions(credentials=frozenset({"admin_credential"}))

#: The issuers that take privileged options; an issuer left out takes none.
PRIVILEGED_BY_ISSUER: Mapping[IssuerName, IssuerOptions] = {
    # The 60-day refresh falls back to the mint when the token already died.
    "meta-system-refresh": _MINT_REFS,
    "meta-system-mint": _MINT_REFS,
    "oauth2-refresh": IssuerOptions(upstream=frozenset({"token_url"})),
    "login": IssuerOptions(upstream=frozenset({"login_url"})),
}

#: Per issuer kind, every one of :data:`permatoken.vocabulary.ISSUERS` (the keys of
#: ``permatoken.issuers.ISSUER_CLASSES``; a test checks it).
ISSUER_OPTIONS: Mapping[str, IssuerOptions] = {
    name: PRIVILEGED_BY_ISSUER.get(name, IssuerOptions()) for name in ISSUERS
}

#: Any issuer's privileged option names: a value set while another issuer is configured becomes
#: live when the issuer is changed, so every one of them is checked whenever it is written.
CREDENTIAL_OPTIONS = frozenset().union(*(o.credentials for o in ISSUER_OPTIONS.values()))
UPSTREAM_OPTIONS = frozenset().union(*(o.upstream for o in ISSUER_OPTIONS.values()))
PRIVILEGED_OPTIONS = CREDENTIAL_OPTIONS | UPSTREAM_OPTIONS


def is_reserved(option: str) -> bool:
    return option.startswith("_")


def upstream_host(url: object) -> str | None:
    """``host[:port]`` of a URL option's value (None if it is not a usable http(s) URL)."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.hostname + (f":{port}" if port else "")


def changed(before: Mapping[str, Any], after: Mapping[str, Any], names: frozenset[str]) -> set[str]:
    """The options among ``names`` whose value differs between two option sets."""
    return {k for k in names if before.get(k) != after.get(k)}


def stamp(
    before: Mapping[str, Any], after: Mapping[str, Any], actor: str, now: datetime | None = None
) -> dict[str, Any]:
    """``after`` with provenance: options changed from ``before`` are now ``actor``'s (pure).

    Unchanged privileged options keep who set them; removed ones lose their entry; an upstream
    URL that moves to another host remembers the host it had (``previous_host``).
    """
    at = (now or datetime.now(UTC)).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    old = before.get(PROVENANCE)
    old_prov: Mapping[str, Any] = old if isinstance(old, Mapping) else {}
    out = {k: v for k, v in after.items() if not is_reserved(k)}
    prov: dict[str, Any] = {}
    for key in sorted(PRIVILEGED_OPTIONS):
        if after.get(key) in (None, ""):
            continue
        if after.get(key) == before.get(key):
            if key in old_prov:
                prov[key] = old_prov[key]
            continue
        entry: dict[str, Any] = {"by": actor[:120], "at": at}
        if key in UPSTREAM_OPTIONS:
            was, now_host = upstream_host(before.get(key)), upstream_host(after.get(key))
            previous = was if was is not None and was != now_host else None
            if previous is None and isinstance(old_prov.get(key), Mapping):
                previous = old_prov[key].get("previous_host")
            if previous is not None:
                entry["previous_host"] = previous
        prov[key] = entry
    if prov:
        out[PROVENANCE] = prov
    return out


def configured_by(options: Mapping[str, Any], option: str) -> str | None:
    prov = options.get(PROVENANCE)
    entry = prov.get(option) if isinstance(prov, Mapping) else None
    by = entry.get("by") if isinstance(entry, Mapping) else None
    return by if isinstance(by, str) else None


def upstream_status(cred: Credential) -> dict[str, Any] | None:
    """Where this credential's issuer sends its secrets, and the last host change (for status)."""
    options = ISSUER_OPTIONS.get(cred.issuer, IssuerOptions()).upstream
    if not options:
        return None
    key = sorted(options)[0]
    prov = cred.options.get(PROVENANCE)
    entry = prov.get(key) if isinstance(prov, Mapping) else None
    entry = entry if isinstance(entry, Mapping) else {}
    return {
        "option": key,
        "host": upstream_host(cred.options.get(key)),
        "previous_host": entry.get("previous_host"),
        "changed_at": entry.get("at"),
        "changed_by": entry.get("by"),
    }


# --- at use -----------------------------------------------------------------------------------


def check_reference(store: Store, cred: Credential, target: str) -> str:
    """Raise a RotationError unless ``cred`` may use the token of ``target``; return the option.

    Called by the engine just before an issuer decrypts another credential's token.
    """
    options = ISSUER_OPTIONS.get(cred.issuer, IssuerOptions()).credentials
    option = next((o for o in sorted(options) if cred.options.get(o) == target), None)
    if option is None:
        raise _refused(
            cred, "a credential option", target, "no declared option of this issuer names it"
        )
    by = configured_by(cred.options, option)
    if by is None or not by.startswith("key:"):
        return option  # set by the store owner (or before provenance was recorded)
    why = _key_still_covers(store, by.removeprefix("key:"), target)
    if why is not None:
        raise _refused(cred, option, target, why)
    return option


def guarded_reveal(store: Store, cred: Credential) -> Callable[[str], Secret]:
    """``store.reveal`` for the issuers of ``cred``: every referenced credential checked first."""

    def reveal(target: str) -> Secret:
        check_reference(store, cred, target)
        return store.reveal(target)

    return reveal


def _key_still_covers(store: Store, key_id: str, target: str) -> str | None:
    from .access import Action, Principal
    from .store.apikeys import KeyStore

    try:
        key = KeyStore(store).get(key_id)
    except NotFoundError:
        return f"the API key that set it ({key_id}) no longer exists"
    if key.revoked_at is not None:
        return f"the API key that set it ({key_id}) was revoked"
    if not key.usable_at(datetime.now(UTC)):
        return f"the API key that set it ({key_id}) has expired"
    if not Principal(key.id, key.role, key.grants).may(Action.MANAGE, target):
        return f"the API key that set it ({key_id}) may not manage {target!r}"
    return None


def _refused(cred: Credential, option: str, target: str, why: str) -> RotationError:
    return RotationError(
        f"{cred.name}: refusing to use the token of {target!r} named by {option}: {why}",
        hint=(
            f"have a key allowed to manage {target} set {option} again "
            f"(PATCH /v1/credentials/{cred.name}), or point it at a credential of its own tenant; "
            "`permatoken keys list` shows the keys"
        ),
        name=cred.name,
        option=option,
        reason="misconfigured",
        needs_human=True,
    )


def check_upstream_url(option: str, value: object) -> None:
    if upstream_host(value) is None:
        raise InputError(f"option {option} must be an http:// or https:// URL with a host")


__all__ = [
    "CREDENTIAL_OPTIONS",
    "ISSUER_OPTIONS",
    "PRIVILEGED_BY_ISSUER",
    "PRIVILEGED_OPTIONS",
    "PROVENANCE",
    "UPSTREAM_OPTIONS",
    "IssuerOptions",
    "changed",
    "check_reference",
    "check_upstream_url",
    "configured_by",
    "guarded_reveal",
    "is_reserved",
    "stamp",
    "upstream_host",
    "upstream_status",
]
