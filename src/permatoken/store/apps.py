"""Meta apps in the store: registered once (id, name, sealed app secret), then shared by the
credentials that name them. A new app can be registered inside another aggregate's transaction
(:meth:`Apps.insert_in`), so that a failed credential add leaves no app behind."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._exceptions import (
    InputError,
    NotFoundError,
)
from .._secret import Secret
from ..crypto import Sealed
from ..events import EventKind
from ..models import App
from .records import aad_app, app_record, check_id, open_secret
from .schema import apps

if TYPE_CHECKING:
    from .repository import Store


class Apps:
    """``store.apps``: the ``apps`` table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def put(
        self,
        app_id: str,
        secret: Secret | None,
        *,
        name: str | None = None,
        require_app_secret: bool | None = None,
        actor: str = "system",
    ) -> App:
        """Register an app or update it; ``secret=None`` keeps the stored secret."""
        check_id(app_id, "app id")
        now = self._store._now()
        with self._store.write() as conn:
            row = (
                conn.execute(sa.select(apps).where(apps.c.id == app_id).with_for_update())
                .mappings()
                .first()
            )
            values: dict[str, Any] = {"updated_at": now}
            if name is not None:
                values["name"] = name[:200]
            if require_app_secret is not None:
                values["require_app_secret"] = require_app_secret
            if row is None:
                if secret is None:
                    raise InputError(f"app {app_id} is not registered yet: its secret is required")
                self.insert_in(conn, app_id, secret, now, actor=actor, **values)
            else:
                if secret is not None:
                    values |= self.sealed_secret(app_id, secret)
                conn.execute(apps.update().where(apps.c.id == app_id).values(**values))
                self._store.event_log.record(
                    conn,
                    EventKind.APP_UPDATED,
                    actor=actor,
                    detail={"app_id": app_id, "secret_changed": secret is not None},
                )
        return self.get(app_id)

    def sealed_secret(self, app_id: str, secret: Secret) -> dict[str, Any]:
        """The secret columns of an app row, sealed under the active key."""
        sealed = self._store.keyring.seal(secret.reveal().encode(), aad_app(app_id))
        return {
            "secret_ciphertext": sealed.ciphertext,
            "secret_wrapped_key": sealed.wrapped_key,
            "secret_kek_id": sealed.kek_id,
        }

    def insert_in(
        self,
        conn: sa.Connection,
        app_id: str,
        secret: Secret,
        now: datetime,
        *,
        actor: str,
        **values: Any,
    ) -> None:
        """Register a new app inside the caller's transaction."""
        check_id(app_id, "app id")
        conn.execute(
            apps.insert().values(
                id=app_id,
                created_at=now,
                **({"require_app_secret": False, "updated_at": now} | values),
                **self.sealed_secret(app_id, secret),
            )
        )
        self._store.event_log.record(
            conn, EventKind.APP_ADDED, actor=actor, detail={"app_id": app_id}
        )

    def get(self, app_id: str) -> App:
        with self._store.read() as conn:
            row = conn.execute(sa.select(apps).where(apps.c.id == app_id)).mappings().first()
        if row is None:
            raise NotFoundError(
                f"no app {app_id!r}", hint="register it with `permatoken app add`", app_id=app_id
            )
        return app_record(row)

    def all(self) -> list[App]:
        """Every registered app, by id."""
        with self._store.read() as conn:
            rows = conn.execute(sa.select(apps).order_by(apps.c.id)).mappings()
            return [app_record(r) for r in rows]

    def secret(self, app_id: str) -> Secret:
        """The app secret, decrypted."""
        with self._store.read() as conn:
            row = conn.execute(sa.select(apps).where(apps.c.id == app_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"no app {app_id!r}", app_id=app_id)
        sealed = Sealed(row["secret_ciphertext"], row["secret_wrapped_key"], row["secret_kek_id"])
        return open_secret(
            self._store.keyring,
            sealed,
            aad_app(app_id),
            f"the secret of app {app_id}",
            app_id=app_id,
        )


__all__ = ["Apps"]
