"""Table definitions (SQLAlchemy Core), shared by SQLite and PostgreSQL.

The migrations in ``migrations/versions`` create these tables; this module is what the
repository queries against. A change here needs a new migration.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from ..timeutil import ensure_utc

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes on both databases.

    SQLite has no time zones: SQLAlchemy stores the wall-clock digits and drops the offset, so
    an aware non-UTC value would silently shift. Convert to UTC on the way in (naive values are
    taken as UTC) and mark results as UTC on the way out.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return ensure_utc(value)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return ensure_utc(value)


TS = UTCDateTime()
#: A KEK id: ``kek-`` + 12 hex digits for a local key, ``kms:{key ARN}`` for AWS KMS. Migration
#: 0006 widened it on PostgreSQL, which enforces lengths; SQLite never does, so its column stays.
KEK_ID = sa.String(32).with_variant(sa.String(255), "postgresql")

apps = sa.Table(
    "apps",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200)),
    sa.Column("secret_ciphertext", sa.LargeBinary, nullable=False),
    sa.Column("secret_wrapped_key", sa.LargeBinary, nullable=False),
    sa.Column("secret_kek_id", KEK_ID, nullable=False, index=True),
    sa.Column("require_app_secret", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

credentials = sa.Table(
    "credentials",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("tenant", sa.String(64), nullable=False, index=True),
    sa.Column("issuer", sa.String(40), nullable=False),
    sa.Column("purpose", sa.String(40)),
    sa.Column("business_id", sa.String(64)),
    sa.Column("waba_ids", sa.JSON, nullable=False),
    sa.Column("phone_number_id", sa.String(64)),
    sa.Column("app_id", sa.String(64)),
    sa.Column("options", sa.JSON, nullable=False),
    sa.Column("policy", sa.JSON, nullable=False),
    sa.Column("health", sa.String(20), nullable=False),
    sa.Column("health_reason", sa.Text),
    sa.Column("rotation_step", sa.String(20)),
    sa.Column("rotation_detail", sa.JSON),
    sa.Column("next_due_at", TS, index=True),
    sa.Column("next_action", sa.String(20)),
    sa.Column("lease_owner", sa.String(80)),
    sa.Column("lease_expires_at", TS),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

versions = sa.Table(
    "versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "credential_id",
        sa.Integer,
        sa.ForeignKey("credentials.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
    sa.Column("kek_id", KEK_ID, nullable=False, index=True),
    sa.Column("fingerprint", sa.String(24), nullable=False),
    sa.Column("token_type", sa.String(32)),
    sa.Column("issued_at", TS),
    sa.Column("expires_at", TS),
    sa.Column("data_access_expires_at", TS),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("waba_ids", sa.JSON, nullable=False),
    sa.Column("user_id", sa.String(64)),
    sa.Column("is_valid", sa.Boolean),
    sa.Column("verdict", sa.Text),
    sa.Column("inspected_at", TS),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("state_changed_at", TS, nullable=False),
    sa.UniqueConstraint("credential_id", "version"),
    sa.CheckConstraint(
        "state IN ('pending','current','previous','retired','revoked')", name="state_known"
    ),
)

# The database itself enforces "at most one current (and one pending) version per credential".
sa.Index(
    "uq_versions_one_current",
    versions.c.credential_id,
    unique=True,
    sqlite_where=versions.c.state == "current",
    postgresql_where=versions.c.state == "current",
)
# "Is this new value already held?" asks by fingerprint on every renewal (migration 0008_fleet).
sa.Index("ix_versions_fingerprint", versions.c.fingerprint)
sa.Index(
    "uq_versions_one_pending",
    versions.c.credential_id,
    unique=True,
    sqlite_where=versions.c.state == "pending",
    postgresql_where=versions.c.state == "pending",
)

credential_secrets = sa.Table(
    "credential_secrets",
    metadata,
    sa.Column(
        "credential_id",
        sa.Integer,
        sa.ForeignKey("credentials.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
    sa.Column("kek_id", KEK_ID, nullable=False, index=True),
    sa.Column("updated_at", TS, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("credential_id", sa.Integer, index=True),
    sa.Column("credential_name", sa.String(200), index=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
)
