"""The Store facade: one aggregate object per table family, the flat methods bound to them, and
writes that span several aggregates still being one transaction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from conftest import random_token
from permatoken._exceptions import AlreadyExistsError, ConflictError, NotFoundError
from permatoken._secret import Secret
from permatoken.crypto import Keyring, generate_key
from permatoken.models import NewCredential, VersionMeta, VersionState
from permatoken.store import Store
from permatoken.store.apps import Apps
from permatoken.store.credential_secrets import CredentialSecrets
from permatoken.store.credentials import Credentials
from permatoken.store.events import EventLog
from permatoken.store.repository import _Delegate
from permatoken.store.versions import TokenVersions
from permatoken.timeutil import ManualClock

AGGREGATES = {
    "credentials": Credentials,
    "token_versions": TokenVersions,
    "secrets": CredentialSecrets,
    "apps": Apps,
    "event_log": EventLog,
}

#: Every flat method the callers use, and the aggregate that holds it.
FLAT = {
    "record": "event_log",
    "events": "event_log",
    "put_app": "apps",
    "get_app": "apps",
    "list_apps": "apps",
    "app_secret": "apps",
    "add_credential": "credentials",
    "get": "credentials",
    "status": "credentials",
    "list_status": "credentials",
    "update_credential": "credentials",
    "remove": "credentials",
    "_credential": "credentials",
    "versions": "token_versions",
    "version": "token_versions",
    "reveal": "token_versions",
    "reveal_payload": "token_versions",
    "add_pending": "token_versions",
    "promote": "token_versions",
    "set_version_state": "token_versions",
    "live_versions_with_fingerprint": "token_versions",
    "update_version_meta": "token_versions",
    "put_secret": "secrets",
    "get_secret": "secrets",
}


@pytest.fixture
def bare_store() -> Store:
    """A store object over an empty in-memory database (nothing is queried)."""
    return Store(
        sa.create_engine("sqlite://"), Keyring([generate_key()], source="test"), url="sqlite://"
    )


def test_the_store_exposes_one_object_per_aggregate(bare_store: Store) -> None:
    """`store.credentials`, `store.token_versions`, … are the aggregates, each over this store."""
    for attr, cls in AGGREGATES.items():
        aggregate = getattr(bare_store, attr)
        assert type(aggregate) is cls, attr
        assert aggregate._store is bare_store, attr


def test_every_flat_method_is_its_aggregates_own_method(bare_store: Store) -> None:
    """`store.get` is `store.credentials.get` bound to the aggregate, for every delegate."""
    delegates = {name for name, v in vars(Store).items() if isinstance(v, _Delegate)}
    written_out = {"update_credential"}  # ``**kwargs``: plain methods
    assert delegates | written_out == set(FLAT)
    for name in delegates:
        bound = getattr(bare_store, name)
        aggregate = getattr(bare_store, FLAT[name])
        assert bound.__self__ is aggregate, name
        assert bound.__func__ is vars(Store)[name].method, name
        assert getattr(type(aggregate), bound.__func__.__name__) is bound.__func__, name
        assert bound.__doc__ == bound.__func__.__doc__, name


def test_flat_and_aggregate_calls_see_the_same_data(store: Store) -> None:
    """A credential added through the flat API is the one the aggregates read, and back."""
    store.add_credential(NewCredential(name="acme/wa"), Secret(random_token()), VersionMeta())
    value = Secret(random_token())
    pending = store.token_versions.add_pending("acme/wa", value, VersionMeta())
    store.token_versions.promote("acme/wa", pending.version)
    assert store.reveal("acme/wa") == value
    assert store.credentials.get("acme/wa") == store.get("acme/wa")
    assert [v.state for v in store.versions("acme/wa")] == [
        VersionState.PREVIOUS,
        VersionState.CURRENT,
    ]
    kinds = [e.kind for e in store.event_log.recent("acme/wa")]
    assert kinds == ["version.promoted", "version.pending", "credential.created"]
    store.secrets.put("acme/wa", "refresh_token", Secret("zqRefresh123456"))
    assert store.get_secret("acme/wa", "refresh_token").reveal() == "zqRefresh123456"


def test_a_failed_add_leaves_no_new_app_behind(store: Store) -> None:
    """The app registered with a credential is in the credential's transaction: both or neither."""
    spec = NewCredential(name="acme/wa", app_id="111")
    store.add_credential(spec, Secret(random_token()), VersionMeta(), new_app_secret=Secret("zqS1"))
    assert store.apps.get("111").id == "111"
    again = NewCredential(name="acme/wa", app_id="222")
    with pytest.raises(AlreadyExistsError):
        store.add_credential(
            again, Secret(random_token()), VersionMeta(), new_app_secret=Secret("zqS2")
        )
    with pytest.raises(NotFoundError):
        store.apps.get("222")
    assert [e.kind for e in store.events()].count("app.added") == 1


def test_a_pending_version_and_its_secrets_are_one_transaction(store: Store) -> None:
    """A refused pending version stores none of the secrets that came with it."""
    store.add_credential(NewCredential(name="acme/wa"), Secret(random_token()), VersionMeta())
    store.put_secret("acme/wa", "refresh_token", Secret("zqOldRefresh1"))
    store.add_pending("acme/wa", Secret(random_token()), VersionMeta())
    with pytest.raises(ConflictError, match="pending"):
        store.add_pending(
            "acme/wa",
            Secret(random_token()),
            VersionMeta(),
            secrets={"refresh_token": Secret("zqNewRefresh1")},
        )
    assert store.get_secret("acme/wa", "refresh_token").reveal() == "zqOldRefresh1"


def test_the_aggregates_read_the_clock_the_store_has_now(store: Store) -> None:
    """A clock set on the store after opening (as the sandbox does) times every aggregate's rows."""
    when = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
    store.clock = ManualClock(when)
    store.add_credential(NewCredential(name="acme/wa"), Secret(random_token()), VersionMeta())
    assert store.get("acme/wa").created_at == when
    assert store.version("acme/wa").created_at == when
    assert store.event_log.recent("acme/wa")[0].at == when
    store.apps.put("333", Secret("zqAppSecret1"))
    assert store.get_app("333").created_at == when
