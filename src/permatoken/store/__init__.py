"""The credential store (SQLite or PostgreSQL) and how to open it."""

from __future__ import annotations

from ..live_keyring import load_live_keyring
from ..settings import Settings
from ..timeutil import Clock
from . import engine as _engine
from . import keys as _keys
from . import (  # noqa: F401  (register their tables on the shared metadata)
    schema_backup,
    schema_broker,
    schema_providers,
    schema_scheduler,
    schema_sinks,
    schema_ui,
)
from .repository import Store

__all__ = ["Store", "open_store"]


def open_store(
    settings: Settings, *, check_schema: bool = True, clock: Clock | None = None
) -> Store:
    """Open the configured database with the configured keys; refuse a wrong schema.

    Nothing is created here: a store that does not exist yet is refused with a hint to run
    `permatoken init` (which is what creates the home, the key and the database). Nothing is
    sealed under keys that cannot open the data already stored (a wrong ``PERMATOKEN_KEY`` would
    otherwise mix two keys in one store): the first seal under each key set proves it on a
    sample of the data keys (:func:`.keys.require_keys`).
    """
    url = settings.resolved_database_url
    engine = _engine.create_engine(url, create=False)
    try:
        with _engine.translated(url):
            if check_schema:
                _engine.check_schema(engine)
        keyring = load_live_keyring(
            settings.key,
            settings.resolved_key_file,
            verify=lambda ring: _keys.require_keys(engine, url, ring),
            kms_key_id=settings.kms_key_id,
            kms_cache_seconds=settings.kms_cache_seconds,
        )
    except BaseException:
        engine.dispose()
        raise
    if clock is None and settings.clock != "system":
        from ..clocks import build_clock  # lazily: the sandbox clock needs httpx

        clock = build_clock(settings)
    return Store(engine, keyring, url=url, clock=clock)
