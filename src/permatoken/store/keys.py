"""Key-encryption keys in the store: which KEKs wrap data keys, whether the loaded keys open them,
and re-wrapping under the active KEK.

The key check is cheap enough for every ``/readyz``: the distinct KEK ids of each table are read
through their index one ``min()`` at a time (a handful of index lookups, not a scan), and one
data key per KEK id is unwrapped. A KEK whose sample unwraps is the right key (AES-GCM
authenticates), so this proves the loaded keys open the data without decrypting all of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from .._exceptions import CryptoError, KeyFileError, KmsUnavailableError, PermatokenError
from ..crypto import RESTORE_HINT, Keyring, Sealed
from ..events import EventKind
from ..live_keyring import LiveKeyring
from . import engine as eng
from .schema import apps, credential_secrets, credentials, versions
from .schema_providers import onboardings


@dataclass(frozen=True)
class _SealedColumns:
    """Where one table keeps sealed values, and how to name one of its rows to a human."""

    table: sa.Table
    wrapped: sa.Column[Any]
    kek: sa.Column[Any]
    ciphertext: sa.Column[Any]
    describe: Callable[[sa.Connection, tuple[Any, ...]], str]

    @property
    def key(self) -> list[sa.Column[Any]]:
        return list(self.table.primary_key.columns)


def _credential_name(conn: sa.Connection, cid: int) -> str:
    name = conn.execute(sa.select(credentials.c.name).where(credentials.c.id == cid)).scalar()
    return repr(name) if name is not None else f"credential #{cid}"


def _describe_version(conn: sa.Connection, key: tuple[Any, ...]) -> str:
    row = conn.execute(
        sa.select(versions.c.credential_id, versions.c.version).where(versions.c.id == key[0])
    ).first()
    if row is None:
        return f"version row #{key[0]}"
    return f"{_credential_name(conn, row[0])} version {row[1]}"


SEALED = (
    _SealedColumns(
        versions,
        versions.c.wrapped_key,
        versions.c.kek_id,
        versions.c.ciphertext,
        _describe_version,
    ),
    _SealedColumns(
        credential_secrets,
        credential_secrets.c.wrapped_key,
        credential_secrets.c.kek_id,
        credential_secrets.c.ciphertext,
        lambda conn, key: f"the {key[1]} of {_credential_name(conn, key[0])}",
    ),
    _SealedColumns(
        apps,
        apps.c.secret_wrapped_key,
        apps.c.secret_kek_id,
        apps.c.secret_ciphertext,
        lambda conn, key: f"the secret of app {key[0]}",
    ),
    _SealedColumns(
        onboardings,
        onboardings.c.wrapped_key,
        onboardings.c.kek_id,
        onboardings.c.ciphertext,
        lambda conn, key: "an Embedded Signup business token being onboarded",
    ),
)


@dataclass(frozen=True)
class KeyProblem:
    """A KEK id in use that the loaded keys cannot open; ``where`` names one row it wraps."""

    kek_id: str
    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.kek_id} {self.reason} (it wraps {self.where})"


def _kek_ids(conn: sa.Connection, column: sa.Column[Any]) -> Iterator[str]:
    """Distinct values of an indexed column, one index lookup each (a loose index scan)."""
    last: str | None = None
    while True:
        q = sa.select(sa.func.min(column))
        if last is not None:
            q = q.where(column > last)
        value = conn.execute(q).scalar()
        if value is None:
            return
        yield value
        last = value


def key_problems(
    engine: sa.Engine, url: str, ring: Keyring | None, *, tables_may_be_missing: bool = False
) -> list[KeyProblem]:
    """Every KEK id in use that ``ring`` does not hold or that does not open a sample of its data
    keys (``ring=None``: no key at all). Empty when the keys open everything stored."""
    problems: list[KeyProblem] = []
    seen: set[str] = set()
    with eng.reading(engine, url) as conn:
        present = set(sa.inspect(conn).get_table_names()) if tables_may_be_missing else None
        for t in SEALED:
            if present is not None and t.table.name not in present:
                continue
            for kek_id in _kek_ids(conn, t.kek):
                if kek_id in seen:
                    continue
                seen.add(kek_id)
                row = conn.execute(
                    sa.select(*t.key, t.wrapped).where(t.kek == kek_id).limit(1)
                ).first()
                if row is None:
                    continue  # removed meanwhile
                if ring is not None and kek_id in ring:
                    try:
                        ring.unwrap(kek_id, row[-1])
                        continue
                    except KmsUnavailableError as exc:
                        reason = f"cannot be used now ({exc.message})"
                    except CryptoError:
                        reason = "does not open it: a different key under the same id, or damaged"
                else:
                    reason = "is not loaded"
                problems.append(KeyProblem(kek_id, t.describe(conn, tuple(row[:-1])), reason))
    return problems


def keys_error(source: str, problems: list[KeyProblem]) -> CryptoError:
    shown = "; ".join(str(p) for p in problems[:3])
    more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
    if all(p.kek_id.startswith("kms:") for p in problems):
        return KmsUnavailableError(
            f"AWS KMS cannot open data already in the store: {shown}{more}",
            hint="check that AWS KMS is reachable (AWS_ENDPOINT_URL, network) and that this "
            "identity may kms:Decrypt with the key (docs/aws.md)",
            kek_ids=",".join(p.kek_id for p in problems),
        )
    return CryptoError(
        f"the key(s) from {source} cannot open data already in the store: {shown}{more}",
        hint=RESTORE_HINT,
        kek_ids=",".join(p.kek_id for p in problems),
    )


def require_keys(engine: sa.Engine, url: str, ring: Keyring) -> None:
    """Raise :class:`CryptoError` unless ``ring`` opens every KEK id in use."""
    problems = key_problems(engine, url, ring)
    if problems:
        raise keys_error(ring.source, problems)


def require_keys_before_init(url: str, ring: Keyring | None, key_file: Path) -> None:
    """Refuse ``permatoken init`` over a database holding data that ``ring`` (None: no key at
    all, a new one would be generated) cannot open; creates nothing, not even the SQLite file."""
    if not eng.database_exists(url):
        return
    engine = eng.create_engine(url)
    try:
        problems = key_problems(engine, url, ring, tables_may_be_missing=True)
    finally:
        engine.dispose()
    if not problems:
        return
    if ring is not None:
        raise keys_error(ring.source, problems)
    raise KeyFileError(
        f"key file {key_file} does not exist, but {eng.describe_url(url)} holds data sealed "
        f"under {', '.join(sorted({p.kek_id for p in problems}))} (e.g. {problems[0].where}); "
        "a new key would not open it, so nothing was written",
        hint="restore the key file from your backup (or set PERMATOKEN_KEY, or "
        "PERMATOKEN_KEY_FILE to where the key is), then run `permatoken init` again",
        path=str(key_file),
    )


class KeysMixin:
    """Mixed into :class:`~permatoken.store.repository.Store`."""

    engine: sa.Engine
    url: str
    keyring: LiveKeyring
    write: Any
    read: Any
    record: Any

    def key_problems(self) -> list[KeyProblem]:
        """KEK ids in use that this process's keys cannot open (empty: all good)."""
        return key_problems(self.engine, self.url, self.keyring.current())

    def require_keys(self) -> None:
        """Refuse (CryptoError naming a row) unless the loaded keys open every KEK id in use."""
        require_keys(self.engine, self.url, self.keyring.current())

    def kek_usage(self) -> dict[str, int]:
        return kek_usage(self.engine, self.url)

    @contextmanager
    def kek_usage_frozen(self) -> Iterator[dict[str, int]]:
        """KEK usage with every writer of sealed values held off until the block ends, so a key
        found unused stays unused while the caller removes it from the key file."""
        with self.write() as conn:
            if self.engine.dialect.name == "postgresql":
                # Waits for transactions already writing sealed rows, blocks new ones.
                tables = ", ".join(t.table.name for t in SEALED)
                conn.exec_driver_sql(f"LOCK TABLE {tables} IN SHARE MODE")
            yield _usage(conn)

    def rewrap(self, *, batch: int = 500, progress: Any = None) -> int:
        """Re-wrap every data key not under the active KEK, in committed batches (resumable).

        A row that cannot be re-wrapped stops the run with an error naming it; the batches
        before it stay committed.
        """
        ring = self.keyring.current()  # one key set for the whole run
        active = ring.active_id
        done = 0
        for t in SEALED:
            while True:
                with self.write() as conn:
                    rows = conn.execute(
                        sa.select(*t.key, t.wrapped, t.kek, t.ciphertext)
                        .where(t.kek != active)
                        .limit(batch)
                    ).all()
                    for row in rows:
                        key = tuple(row[: len(t.key)])
                        try:
                            sealed = ring.rewrap(Sealed(row[-1], row[-3], row[-2]))
                        except PermatokenError as exc:
                            raise CryptoError(
                                f"cannot re-wrap {t.describe(conn, key)}: {exc.message}",
                                hint=exc.hint or RESTORE_HINT,
                                kek_id=row[-2],
                                table=t.table.name,
                            ) from exc
                        conn.execute(
                            t.table.update()
                            .where(*(c == v for c, v in zip(t.key, key, strict=True)))
                            .where(t.kek == row[-2])
                            .values({t.wrapped.name: sealed.wrapped_key, t.kek.name: sealed.kek_id})
                        )
                    if rows:
                        self.record(
                            conn,
                            EventKind.KEYS_REWRAPPED,
                            detail={"table": t.table.name, "count": len(rows), "kek_id": active},
                        )
                done += len(rows)
                if progress is not None:
                    progress(len(rows))
                if len(rows) < batch:
                    break
        return done


def kek_usage(engine: sa.Engine, url: str) -> dict[str, int]:
    """How many data keys each KEK id wraps (needs no key at all)."""
    with eng.reading(engine, url) as conn:
        return _usage(conn)


def _usage(conn: sa.Connection) -> dict[str, int]:
    usage: dict[str, int] = {}
    for t in SEALED:
        for kek_id, n in conn.execute(sa.select(t.kek, sa.func.count()).group_by(t.kek)):
            usage[kek_id] = usage.get(kek_id, 0) + n
    return usage


__all__ = [
    "KeyProblem",
    "KeysMixin",
    "kek_usage",
    "key_problems",
    "keys_error",
    "require_keys",
    "require_keys_before_init",
]
