"""A store with something in every table, fast bulk credentials, and whole-store comparisons."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from conftest import random_token
from permatoken._secret import Secret, fingerprint
from permatoken.models import NewCredential, VersionMeta, VersionState
from permatoken.notify import notices as nt
from permatoken.notify.delivery import Channel, Outbox
from permatoken.server.audit import AuditLog, AuditRecord
from permatoken.server.keystore import KeyStore
from permatoken.store import Store
from permatoken.store import engine as store_engine
from permatoken.store.backups import BackupLog
from permatoken.store.repository import _aad_version
from permatoken.store.schema import credentials, events, metadata, versions
from permatoken.store.schema_scheduler import budget_spend, scheduler_leader
from permatoken.store.snapshot import sealed_columns

T0 = datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)


def seed_small(store: Store) -> list[str]:
    """One or more rows in every table, through the store's own API; returns every secret."""
    app_secret, token1, token2, refresh = (random_token() for _ in range(4))
    store.put_app("1234567890", Secret(app_secret), name="Acme app", actor="test")
    store.add_credential(
        NewCredential(name="acme/messaging", issuer="oauth2-refresh", waba_ids=("111",)),
        Secret(token1),
        VersionMeta(token_type="USER", expires_at=T0 + timedelta(days=60), scopes=("a", "b")),
        secrets={"refresh_token": Secret(refresh)},
        actor="test",
    )
    store.add_pending("acme/messaging", Secret(token2), VersionMeta(expires_at=T0))
    store.promote("acme/messaging", 2)
    store.set_version_state("acme/messaging", 1, VersionState.RETIRED, reason="test")
    store.update_credential("acme/messaging", rotation_detail={"k": [1, 2.5, None]})
    app_key, api_key = KeyStore(store).create("app", ["acme/*"], label="app key", actor="test")
    AuditLog(store).append(
        [
            AuditRecord(actor="test", action="token.read", result="ok", target="acme/messaging"),
            AuditRecord(actor="test", action="auth.failed", result="denied", detail={"n": 1.5}),
        ]
    )
    notice = nt.renewed("acme/messaging", "acme", 2, previous=1, expires_at=T0, now=T0)
    Outbox(store, owner="test", clock=store.clock).enqueue(notice, [Channel("json://x.test/y")])
    from permatoken.scheduler.policies import set_tenant_policy

    set_tenant_policy(store, "acme", {"grace": "2h"})
    with store.write() as conn:
        conn.execute(
            scheduler_leader.insert().values(
                name="scheduler", owner="test", expires_at=T0, acquired_at=T0
            )
        )
        conn.execute(budget_spend.insert().values(key="app:1234567890", bucket=7, calls=3))
    from permatoken.store.sinks import SinkTable

    SinkTable(store).add(
        "acme/messaging", "aws-sm://acme/wa", {}, uid="0" * 32, delivered_version=2, actor="test"
    )
    # The dashboard's tables (migration 0007_ui): a session and an acknowledged notice.
    from permatoken.store import ui_notices, ui_sessions

    ui_sessions.create_session(store, app_key.id, T0, "127.0.0.1")
    (first,) = Outbox(store, owner="test", clock=store.clock).all_notices("acme/messaging")
    assert ui_notices.acknowledge(store, first["id"], "key:test", T0)
    log = BackupLog(store)
    claim = log.claim("manual", "test", T0)
    assert claim is not None
    log.finish(claim, T0, ok=True, path="/x/y.ptbackup", size=10, counts={"versions": 2})
    # Tech Provider tables: a recorded Meta delivery and a staged Embedded Signup token.
    from permatoken.store.providers import Deliveries, Onboardings, code_hash

    business_token = random_token()
    Deliveries(store).record(
        [
            {
                "key": "k" * 64,
                "source": "webhook",
                "app_id": "1234567890",
                "event": "PARTNER_APP_UNINSTALLED",
                "waba_id": "111",
                "business_id": None,
                "user_id": None,
                "event_time": T0,
                "payload": {"event": "PARTNER_APP_UNINSTALLED", "n": [1, 2.5]},
            }
        ]
    )
    Onboardings(store).stage(
        code_hash(Secret("AQcode")), Secret(business_token), tenant="acme", name=None, app_id="1"
    )
    return [app_secret, token1, token2, refresh, api_key.reveal(), business_token]


def seed_bulk(store: Store, n: int, *, prefix: str = "bulk") -> dict[str, str]:
    """``n`` credentials with a previous and a current version each, an event per credential
    and an audit record per credential, in bulk inserts; returns {name: current token}."""
    current: dict[str, str] = {}
    with store.write() as conn:
        top = conn.execute(sa.select(sa.func.max(credentials.c.id))).scalar() or 0
        rows, vrows, erows = [], [], []
        for i in range(n):
            cid, name = top + 1 + i, f"{prefix}/c{i:06d}"
            rows.append(
                {
                    "id": cid,
                    "name": name,
                    "tenant": prefix,
                    "issuer": "manual",
                    "waba_ids": [],
                    "options": {"i": i},
                    "policy": {},
                    "health": "ok",
                    "created_at": T0,
                    "updated_at": T0,
                }
            )
            for number, state in ((1, "previous"), (2, "current")):
                token = random_token(length=40)
                sealed = store.keyring.seal(
                    json.dumps({"token": token}).encode(), _aad_version(cid, number)
                )
                vrows.append(
                    {
                        "credential_id": cid,
                        "version": number,
                        "state": state,
                        "ciphertext": sealed.ciphertext,
                        "wrapped_key": sealed.wrapped_key,
                        "kek_id": sealed.kek_id,
                        "fingerprint": fingerprint(token),
                        "token_type": "SYSTEM_USER",
                        "expires_at": T0 + timedelta(days=i % 90),
                        "scopes": ["whatsapp_business_messaging"],
                        "waba_ids": [],
                        "created_at": T0,
                        "state_changed_at": T0,
                    }
                )
                current[name] = token
            erows.append(
                {
                    "credential_id": cid,
                    "credential_name": name,
                    "kind": "credential.created",
                    "at": T0,
                    "actor": "bulk",
                    "detail": {"version": 2},
                }
            )
        for chunk in range(0, n, 2000):
            conn.execute(credentials.insert(), rows[chunk : chunk + 2000])
        for chunk in range(0, 2 * n, 2000):
            conn.execute(versions.insert(), vrows[chunk : chunk + 2000])
        for chunk in range(0, n, 2000):
            conn.execute(events.insert(), erows[chunk : chunk + 2000])
        AuditLog(store).append_in(
            conn,
            [
                AuditRecord(
                    actor="bulk", action="credential.created", result="ok", target=name, at=T0
                )
                for name in current
            ],
        )
    return current


def current_values(store: Store) -> dict[str, str]:
    """Every credential's current token, decrypted in bulk (the verify path's registry)."""
    sealed = sealed_columns()["versions"]
    out: dict[str, str] = {}
    with store.read() as conn:
        q = (
            sa.select(versions, credentials.c.name)
            .join(credentials, credentials.c.id == versions.c.credential_id)
            .where(versions.c.state == "current")
        )
        for row in conn.execute(q).mappings():
            plain = store.keyring.open(sealed.sealed(row), sealed.aad(row))
            out[row["name"]] = json.loads(plain)["token"]
    return out


def _normal(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def all_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the metadata, engine-neutral (to compare SQLite and PostgreSQL)."""
    engine = store_engine.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t.name: [
                    tuple(_normal(v) for v in row)
                    for row in conn.execute(
                        sa.select(t).order_by(*(t.primary_key.columns or t.columns))
                    )
                ]
                for t in metadata.sorted_tables
            }
    finally:
        engine.dispose()


def without_restore_records(rows: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[Any]]:
    """The restored store minus the event and audit record that the restore itself appended."""
    out = dict(rows)
    assert out["events"][-1][3] == "backup.restored"
    assert out["audit_log"][-1][3] == "backup.restored"
    out["events"] = out["events"][:-1]
    out["audit_log"] = out["audit_log"][:-1]
    return out


def encodings(values: Iterable[str]) -> dict[str, bytes]:
    """Each value as it could end up in a file: raw, hex, base64, JSON-escaped."""
    import base64

    out: dict[str, bytes] = {}
    for i, v in enumerate(values):
        raw = v.encode()
        out[f"secret #{i} raw"] = raw
        out[f"secret #{i} hex"] = raw.hex().encode()
        out[f"secret #{i} base64"] = base64.b64encode(raw)
    return out


def new_secret() -> str:
    return "pp-" + secrets.token_urlsafe(24)


def file_views(path: Path) -> dict[str, bytes]:
    """A backup (or a partial one) as bytes to scan for plaintext: the raw file, its body
    decompressed as far as it goes, and every base64 value in the body decoded."""
    import base64
    import re
    import struct
    import zlib

    data = path.read_bytes()
    views = {f"{path.name} raw": data}
    if len(data) < 14:
        return views
    start = 14 + struct.unpack(">I", data[10:14])[0]
    z = zlib.decompressobj()
    try:
        body = z.decompress(data[start:])
    except zlib.error:
        body = b""
    views[f"{path.name} body"] = body
    decoded = [
        base64.b64decode(m.group(1))
        for m in re.finditer(rb'"([A-Za-z0-9+/]{16,}={0,2})"', body + data[:start])
        if len(m.group(1)) % 4 == 0
    ]
    views[f"{path.name} decoded base64"] = b"\n".join(decoded)
    return views


def assert_no_plaintext(paths: Iterable[Path], values: Iterable[str]) -> None:
    views: dict[str, bytes] = {}
    for p in paths:
        views |= file_views(p)
    for label, needle in encodings(values).items():
        found = [name for name, blob in views.items() if needle in blob]
        assert not found, f"{label} found in {found}"
