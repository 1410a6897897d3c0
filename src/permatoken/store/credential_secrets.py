"""Credential-level secrets (refresh tokens, passwords, client secrets): one sealed value per
credential and name, replaced whole. They can be written inside another aggregate's transaction
(:meth:`CredentialSecrets.put_in`), so that a rotated refresh token is never stored apart from
the access token it came with."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from .._exceptions import NotFoundError
from .._secret import Secret
from ..crypto import Sealed
from .records import aad_secret, open_secret
from .schema import credential_secrets

if TYPE_CHECKING:
    from .repository import Store


class CredentialSecrets:
    """``store.secrets``: the ``credential_secrets`` table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def put_in(
        self, conn: sa.Connection, cid: int, sname: str, value: Secret, now: datetime
    ) -> None:
        """Seal and store ``value`` as secret ``sname`` of credential ``cid``, inside the
        caller's transaction (which holds the credential row)."""
        sealed = self._store.keyring.seal(value.reveal().encode(), aad_secret(cid, sname))
        conn.execute(
            credential_secrets.delete().where(
                credential_secrets.c.credential_id == cid, credential_secrets.c.name == sname
            )
        )
        conn.execute(
            credential_secrets.insert().values(
                credential_id=cid,
                name=sname,
                ciphertext=sealed.ciphertext,
                wrapped_key=sealed.wrapped_key,
                kek_id=sealed.kek_id,
                updated_at=now,
            )
        )

    def put(self, name: str, sname: str, value: Secret) -> None:
        with self._store.write() as conn:
            cred = self._store.credentials.get_in(conn, name, lock=True)
            self.put_in(conn, cred.id, sname, value, self._store._now())

    def get(self, name: str, sname: str) -> Secret:
        with self._store.read() as conn:
            cred = self._store.credentials.get_in(conn, name)
            row = (
                conn.execute(
                    sa.select(credential_secrets).where(
                        credential_secrets.c.credential_id == cred.id,
                        credential_secrets.c.name == sname,
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(f"credential {name!r} has no stored {sname}", name=name)
        sealed = Sealed(row["ciphertext"], row["wrapped_key"], row["kek_id"])
        return open_secret(
            self._store.keyring,
            sealed,
            aad_secret(cred.id, sname),
            f"the {sname} of {name!r}",
            name=name,
        )


__all__ = ["CredentialSecrets"]
