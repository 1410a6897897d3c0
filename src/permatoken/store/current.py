"""The current version of one credential, opened: the broker's hot read path (``TokenCache``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from .._exceptions import DecryptionError, KmsUnavailableError, NotFoundError, PermatokenError
from .._secret import Secret
from ..crypto import Sealed
from ..timeutil import ensure_utc
from .records import aad_version
from .schema import credentials, versions

if TYPE_CHECKING:
    from .repository import Store


@dataclass(frozen=True, slots=True)
class OpenedCurrent:
    version: int
    token: Secret
    fingerprint: str | None
    token_type: str | None
    expires_at: datetime | None
    health: str


def open_current(store: Store, name: str) -> OpenedCurrent:
    """One query and one decryption.

    Deliberately not :meth:`Store.reveal`: that registers every value for log redaction, whose
    regex is rebuilt per new secret (quadratic over 100k tokens). Nothing here logs token values;
    redaction stays a second line of defence for the rest.
    """
    q = (
        sa.select(
            credentials.c.id,
            versions.c.version,
            versions.c.ciphertext,
            versions.c.wrapped_key,
            versions.c.kek_id,
            versions.c.fingerprint,
            versions.c.token_type,
            versions.c.expires_at,
            credentials.c.health,
        )
        .select_from(credentials.join(versions, versions.c.credential_id == credentials.c.id))
        .where(credentials.c.name == name, versions.c.state == "current")
    )
    with store.read() as conn:
        row = conn.execute(q).first()
    if row is None:
        store.version(name)  # raises the precise NotFoundError / InvalidNameError
        raise NotFoundError(f"credential {name!r} has no current version", name=name)
    cid, number, ciphertext, wrapped, kek_id, fp, token_type, expires_at, health = row
    try:
        data = json.loads(
            store.keyring.open(Sealed(ciphertext, wrapped, kek_id), aad_version(cid, number))
        )
    except KmsUnavailableError:
        raise  # AWS KMS is down: a dependency outage (503), not a damaged value
    except PermatokenError as exc:
        raise DecryptionError(
            f"cannot decrypt {name!r} version {number}: {exc.message}",
            name=name,
            version=number,
        ) from exc
    return OpenedCurrent(
        number, Secret(data["token"]), fp, token_type, ensure_utc(expires_at), health
    )


__all__ = ["OpenedCurrent", "open_current"]
