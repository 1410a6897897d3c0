"""Typed settings, built on demand (never at import time).

Precedence, highest first: explicit arguments (CLI options) > environment ``PERMATOKEN_*`` >
the config file (``$PERMATOKEN_HOME/config.toml`` or ``PERMATOKEN_CONFIG``) > defaults.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ._exceptions import ConfigError
from ._secret import Secret
from .graph_defaults import DEFAULT_GRAPH_URL, DEFAULT_GRAPH_VERSION


def default_home() -> Path:
    return Path(platformdirs.user_data_dir("permatoken", appauthor=False))


class _TomlSource(PydanticBaseSettingsSource):
    """Reads ``config.toml`` from the home directory (or ``PERMATOKEN_CONFIG``)."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(
        self, field: Any, field_name: str
    ) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            data = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(
                f"cannot read config file {self.path}: {exc}",
                hint="fix the TOML syntax or remove the file",
                path=str(self.path),
            ) from exc
        section = data.get("permatoken", data)
        if not isinstance(section, dict):
            raise ConfigError(f"config file {self.path}: [permatoken] must be a table")
        out = {k.replace("-", "_"): v for k, v in section.items()}
        # Nested settings (e.g. [backup]) may also be top-level tables beside [permatoken].
        for name, info in self.settings_cls.model_fields.items():
            if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
                table = out.get(name, data.get(name))
                if isinstance(table, dict):
                    out[name] = {k.replace("-", "_"): v for k, v in table.items()}
        return out


class BackupSettings(BaseModel):
    """Scheduled backups taken by ``permatoken serve`` (docs/backup.md); off unless ``every``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: How often (``6h``, ``1d``…); one replica takes each period's backup. None: off.
    every: float | None = None
    #: Where the files go (default ``$PERMATOKEN_HOME/backups``).
    dir: Path | None = None
    #: How many scheduled backups to keep in ``dir``; older ones are removed.
    keep: int = Field(default=7, ge=1)
    #: Also seal the keys under this passphrase, so the backups restore without the key file.
    passphrase_file: Path | None = None

    @field_validator("every", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "off")):
            return None
        if isinstance(value, str):
            from ._exceptions import InputError
            from .timeutil import parse_duration

            try:
                return parse_duration(value, what="backup interval").total_seconds()
            except InputError as exc:
                raise ValueError(exc.message) from None
        return value


class SinkSettings(BaseModel):
    """Deliveries to sinks made by ``permatoken serve`` (``[sinks]`` table; docs/aws.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Seconds between looks for sinks behind (a promotion in this process wakes it at once).
    interval: float = Field(default=5.0, gt=0)
    #: Back-off after a failed delivery: first wait, doubling up to ``retry_max`` (plus jitter).
    retry_min: float = Field(default=5.0, gt=0)
    retry_max: float = Field(default=300.0, gt=0)
    #: A sink still behind this many seconds after a promotion gets a ``sink_behind`` notice.
    notice_after: float = Field(default=900.0, ge=0)
    #: How long one replica holds a delivery it took before another may take it over.
    lease: float = Field(default=60.0, gt=0)


class ProxySettings(BaseModel):
    """The Graph proxy of ``permatoken serve`` (docs/proxy.md; ``[proxy]``, ``PERMATOKEN_PROXY__*``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Serve ``/graph/{credential-name}/-/…``.
    enabled: bool = True
    #: Request bodies up to this size are buffered, so a request can be sent again with a new
    #: token after a dead one; larger bodies are streamed and never sent twice.
    replay_bytes: int = Field(default=1024 * 1024, ge=0, le=64 * 1024 * 1024)
    #: Largest request body: Meta's largest upload (100 MB) plus room for the form around it.
    max_body_bytes: int = Field(default=101 * 1024 * 1024, ge=1)
    #: Cloud API sends paced per phone number (Meta's default limit is 80/s); 0 turns pacing off.
    messages_per_second: float = Field(default=80.0, ge=0)
    #: A send whose turn is further away than this is answered as Meta answers a 130429.
    pacing_max_wait: float = Field(default=5.0, ge=0)
    #: Keep-alive connections to the Graph API.
    connections: int = Field(default=100, ge=1)
    #: Seconds to wait for Meta's answer, and to connect.
    timeout: float = Field(default=60.0, gt=0)
    connect_timeout: float = Field(default=10.0, gt=0)


class UiSettings(BaseModel):
    """The dashboard at ``/ui/`` of ``permatoken serve`` (docs/dashboard.md; ``[ui]``,
    ``PERMATOKEN_UI__*``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Serve the dashboard.
    enabled: bool = True
    #: Seconds without a request after which a signed-in session ends.
    session_idle: float = Field(default=30 * 60.0, gt=0)
    #: Seconds after sign-in after which a session ends however busy it is.
    session_max: float = Field(default=12 * 3600.0, gt=0)
    #: Credentials per overview page.
    page_size: int = Field(default=50, ge=5, le=500)
    #: Seconds the overview's counts and timeline are reused per grants and filter (they scan
    #: the fleet; the page's rows are always fresh). 0: computed on every request.
    summary_ttl: float = Field(default=10.0, ge=0)


class Settings(BaseSettings):
    """Everything permatoken can be configured with. See docs/configuration.md."""

    model_config = SettingsConfigDict(
        env_prefix="PERMATOKEN_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    home: Path = Field(default_factory=default_home)
    database_url: str | None = None
    key_file: Path | None = None
    key: Secret | None = None
    #: AWS KMS key (id, ARN or alias) that wraps data keys instead of a key file (docs/aws.md).
    kms_key_id: str | None = None
    #: How long a data key unwrapped by KMS stays in memory, so reads go on while KMS is down.
    kms_cache_seconds: float = Field(default=300.0, ge=0)
    graph_url: str = DEFAULT_GRAPH_URL
    graph_version: str = DEFAULT_GRAPH_VERSION
    log_level: str = "INFO"
    #: "system", or "sandbox" to follow the sandbox's controllable clock at PERMATOKEN_GRAPH_URL
    #: (for demos and time-travel tests; never use it against Meta).
    clock: Literal["system", "sandbox"] = "system"
    #: Serve /metrics without an API key (for a Prometheus on a trusted network): totals only.
    metrics_public: bool = False
    #: With metrics_public, also show per-credential series (credential names) without a key.
    metrics_public_names: bool = False
    #: Reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For the API
    #: believes for the client address (throttling, audit). Default: none, the peer is the client.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # -- scheduler and notifications (docs/scheduler.md, docs/notifications.md) -------------
    #: Global policy layer (same keys as ``permatoken policy set``), below tenant and credential.
    policy: dict[str, Any] = Field(default_factory=dict)
    #: Apprise URLs every notice goes to (``mailto://…``, ``json://…``, ``slack://…``…).
    notify_urls: list[str] = Field(default_factory=list)
    #: Apprise URLs per tenant (the first segment of a credential name), added to the global ones.
    tenant_notify_urls: dict[str, list[str]] = Field(default_factory=dict)
    #: Which notice events are sent ("renewed" is off by default).
    notify_events: list[str] = Field(
        default_factory=lambda: [
            "reminder",
            "expired",
            "renewal_failed",
            "needs_human",
            "token_invalid",
            "recovered",
            "backup_failed",
            "account_update",
            "sink_behind",
        ]
    )
    #: Seconds between scheduler ticks when nothing is due (a tick also runs after busy ones).
    scheduler_interval: float = 5.0
    #: Credentials claimed per tick, and how long a claim (lease) lasts before another replica
    #: may take it over (a replica that died holds its claims this long).
    scheduler_batch: int = 100
    scheduler_lease_ttl: float = 120.0
    #: Verifications (``debug_token``) a tick's batched renewals run at the same time.
    scheduler_concurrency: int = Field(default=16, ge=1, le=256)
    #: Exchanges/mints run at the same time. Each creates a token: a crash loses the answers in
    #: flight (the renewal is redone), so this is also how many a crash can repeat.
    scheduler_obtain_concurrency: int = Field(default=1, ge=1, le=256)
    #: Graph calls per hour the scheduler may spend per app, and per app and WABA (reference
    #: section 6: 200/h per WABA, 5000/h for a WABA with a registered number), shared by every
    #: replica through the database; ``budget_share`` keeps a margin for the applications.
    budget_app_per_hour: int = 5000
    budget_waba_per_hour: int = 200
    budget_waba_overrides: dict[str, int] = Field(default_factory=dict)
    budget_share: float = 0.9
    #: Seconds a rotation lease lives without renewal: how long a crashed worker's half-done
    #: rotation waits before another process resumes it (PERMATOKEN_LEASE_TTL).
    lease_ttl: float = Field(default=120.0, gt=0)
    #: The token Meta's webhook verification handshake must present (``GET /webhooks/meta``,
    #: docs/providers.md); unset, the handshake is refused. A secret: never logged or shown.
    webhook_verify_token: Secret | None = None
    #: Forward every verified delivery (body and signature unchanged) to the application's own
    #: webhook URL, so permatoken can be the one endpoint registered with Meta; Meta gets a 502
    #: (and retries) when the application does not take it.
    webhook_forward_url: str | None = None
    #: Scheduled backups (``[backup]`` table, ``PERMATOKEN_BACKUP__EVERY``…; docs/backup.md).
    backup: BackupSettings = Field(default_factory=BackupSettings)
    #: Sink deliveries (``[sinks]`` table, ``PERMATOKEN_SINKS__RETRY_MAX``…; docs/aws.md).
    sinks: SinkSettings = Field(default_factory=SinkSettings)
    #: The Graph proxy (``[proxy]`` table, ``PERMATOKEN_PROXY__MESSAGES_PER_SECOND``…; docs/proxy.md).
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    #: The dashboard (``[ui]`` table, ``PERMATOKEN_UI__SESSION_IDLE``…; docs/dashboard.md).
    ui: UiSettings = Field(default_factory=UiSettings)

    @field_validator("key", "webhook_verify_token", mode="before")
    @classmethod
    def _wrap_key(cls, value: Any) -> Any:
        if value is None or isinstance(value, Secret):
            return value
        if isinstance(value, str):
            return Secret(value.strip()) if value.strip() else None
        raise ValueError("must be a base64 string")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        import ipaddress

        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            return value
        try:
            return [str(ipaddress.ip_network(str(v).strip(), strict=False)) for v in value]
        except ValueError:
            raise ValueError(
                "must be IP addresses or networks, e.g. 10.0.0.1,10.1.0.0/16"
            ) from None

    @field_validator("graph_version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        import re

        if not re.fullmatch(r"v\d{1,3}\.\d{1,2}", value):
            raise ValueError("must look like v25.0")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        import re

        if value is None:
            return None
        scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", value)
        if scheme is None:
            raise ValueError("not a database URL")
        backend = scheme.group(1).split("+")[0].lower()
        if backend not in ("sqlite", "postgresql", "postgres"):
            raise ValueError(f"unsupported database {backend[:20]!r}")
        return value

    @field_validator("webhook_forward_url")
    @classmethod
    def _check_forward_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value or None

    @field_validator("graph_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        home = Path(os.environ.get("PERMATOKEN_HOME") or default_home())
        config = os.environ.get("PERMATOKEN_CONFIG")
        path = Path(config) if config else home / "config.toml"
        return (init_settings, env_settings, _TomlSource(settings_cls, path))

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'permatoken.db'}"

    @property
    def resolved_key_file(self) -> Path:
        return self.key_file or self.home / "key"


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, translating validation errors into a precise :class:`ConfigError`."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first.get("loc", ())]
        field = ".".join(loc) or "settings"
        message = str(first.get("msg")).removeprefix("Value error, ")
        hint = "see docs/configuration.md for accepted values"
        if field == "database_url":
            hint = "use sqlite:///path/to/file.db or postgresql+psycopg://user@host:5432/db"
        raise ConfigError(
            f"invalid setting {field} ({_source_of(loc or [field], clean)}): {message}",
            hint=hint,
            setting=field,
        ) from None


def _source_of(loc: list[str], arguments: dict[str, Any]) -> str:
    """Where a setting came from, named the way the user gave it (nested ones with ``__``)."""
    field = loc[0]
    if field in arguments:
        return f"--{field.replace('_', '-')}"
    env = "PERMATOKEN_" + "__".join(loc).upper()
    if env in os.environ:
        return env
    config = os.environ.get("PERMATOKEN_CONFIG")
    home = Path(os.environ.get("PERMATOKEN_HOME") or default_home())
    return f"{Path(config) if config else home / 'config.toml'} or {env}"
