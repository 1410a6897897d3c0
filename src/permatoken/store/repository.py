"""The credential store: every read and write of credentials, versions, apps and events.

Writes that belong together are one transaction. On PostgreSQL the credential row is locked
(``FOR UPDATE``) before its versions change; on SQLite every write transaction holds the
database write lock from its first statement (``BEGIN IMMEDIATE``). Partial unique indexes make
the database itself refuse a second ``current`` (or ``pending``) version.

:class:`Store` is a facade over one aggregate object per table family, each in its own module
and holding its SQL: ``store.credentials`` (:mod:`.credentials`), ``store.token_versions``
(:mod:`.versions`), ``store.secrets`` (:mod:`.credential_secrets`), ``store.apps``
(:mod:`.apps`) and ``store.event_log`` (:mod:`.events`); leases and key re-wrapping are mixed in
from :mod:`.leases` and :mod:`.keys`. The aggregates share the store's connections and
transactions (``store.write()`` / ``store.read()``), so a write spanning several of them (a
credential with its first version, secrets, app and event) is still one transaction.

The older flat methods (``store.add_credential(...)``, ``store.get(...)``, ``store.promote(...)``
…) are thin delegates: each is declared once below as the aggregate's own method, bound to the
aggregate on access (:class:`_Delegate`), so their signatures and docstrings have one source.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

import sqlalchemy as sa

from .._secret import Secret, fingerprint
from ..crypto import Keyring
from ..live_keyring import LiveKeyring
from ..models import Credential
from ..timeutil import Clock, SystemClock
from . import engine as eng
from .apps import Apps
from .credential_secrets import CredentialSecrets
from .credentials import Credentials
from .events import EventLog
from .keys import KeysMixin
from .leases import LeaseMixin
from .records import (
    aad_app,
    aad_secret,
    aad_version,
    app_record,
    credential_record,
    meta_values,
    version_record,
)
from .versions import NOTIFY_CHANNEL, TokenVersions

# Older import paths of names that moved to .records (other modules and tests import them here).
_aad_app = aad_app
_aad_secret = aad_secret
_aad_version = aad_version
_app = app_record
_credential = credential_record
_meta_values = meta_values
_version = version_record

_A = TypeVar("_A")
_P = ParamSpec("_P")
_R = TypeVar("_R")


class _Delegate(Generic[_A, _P, _R]):
    """A flat :class:`Store` method that is an aggregate's method, bound to the aggregate on
    access: ``store.get`` is ``store.credentials.get``, with the same signature for mypy."""

    def __init__(self, aggregate: str, method: Callable[Concatenate[_A, _P], _R]) -> None:
        self.aggregate = aggregate
        self.method = method
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> _Delegate[_A, _P, _R]: ...
    @overload
    def __get__(self, obj: object, owner: type[Any]) -> Callable[_P, _R]: ...
    def __get__(self, obj: object | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        return types.MethodType(self.method, getattr(obj, self.aggregate))


class Store(LeaseMixin, KeysMixin):
    """Repository over one database. Construct with :func:`~permatoken.store.open_store`."""

    def __init__(
        self,
        engine: sa.Engine,
        keyring: LiveKeyring | Keyring,
        *,
        url: str,
        clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        self.keyring = keyring if isinstance(keyring, LiveKeyring) else LiveKeyring.fixed(keyring)
        self.url = url
        self.clock: Clock = clock or SystemClock()
        self.credentials = Credentials(self)
        self.token_versions = TokenVersions(self)
        self.secrets = CredentialSecrets(self)
        self.apps = Apps(self)
        self.event_log = EventLog(self)

    def __repr__(self) -> str:
        return f"Store({eng.describe_url(self.url)})"

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def unavailable(self) -> str | None:
        """Why this store cannot be used as opened (its SQLite file deleted, replaced or
        read-only since), or None. One ``stat``; PostgreSQL answers None."""
        guard = eng.database_file(self.engine)
        found = guard.problem() if guard is not None else None
        return found[1] if found is not None else None

    # --- transactions ---------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        self.keyring.prepare()  # the key check, if due, before the write lock is held
        with eng.translated(self.url), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        with eng.translated(self.url), self.engine.connect() as raw:
            conn = raw.execution_options(readonly=True)
            with conn.begin():
                yield conn

    def _now(self) -> datetime:
        # Read on every call: tests (and the sandbox) replace ``store.clock`` after opening.
        return self.clock.now()

    # --- the flat API: delegates to the aggregates -----------------------------------
    # events
    record = _Delegate("event_log", EventLog.record)
    events = _Delegate("event_log", EventLog.recent)
    # apps
    put_app = _Delegate("apps", Apps.put)
    get_app = _Delegate("apps", Apps.get)
    list_apps = _Delegate("apps", Apps.all)
    app_secret = _Delegate("apps", Apps.secret)

    # credentials
    add_credential = _Delegate("credentials", Credentials.add)
    get = _Delegate("credentials", Credentials.get)
    status = _Delegate("credentials", Credentials.status)
    list_status = _Delegate("credentials", Credentials.list_status)

    def update_credential(
        self,
        name: str,
        *,
        actor: str = "system",
        new_app_secret: Secret | None = None,
        **fields: Any,
    ) -> Credential:
        """Change fields of a credential (see :meth:`.Credentials.update`)."""
        return self.credentials.update(name, actor=actor, new_app_secret=new_app_secret, **fields)

    remove = _Delegate("credentials", Credentials.remove)
    _credential = _Delegate("credentials", Credentials.get_in)
    # versions
    versions = _Delegate("token_versions", TokenVersions.all)
    version = _Delegate("token_versions", TokenVersions.get)
    reveal = _Delegate("token_versions", TokenVersions.reveal)
    reveal_payload = _Delegate("token_versions", TokenVersions.reveal_payload)
    add_pending = _Delegate("token_versions", TokenVersions.add_pending)
    promote = _Delegate("token_versions", TokenVersions.promote)
    set_version_state = _Delegate("token_versions", TokenVersions.set_state)
    live_versions_with_fingerprint = _Delegate(
        "token_versions", TokenVersions.live_with_fingerprint
    )
    update_version_meta = _Delegate("token_versions", TokenVersions.update_meta)
    # credential-level secrets
    put_secret = _Delegate("secrets", CredentialSecrets.put)
    get_secret = _Delegate("secrets", CredentialSecrets.get)


__all__ = ["NOTIFY_CHANNEL", "Store", "fingerprint"]
