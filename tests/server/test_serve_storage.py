"""`permatoken serve` processes against a database that goes away, a read-only one, and a
rotation whose worker was SIGKILLed."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import init_store, random_token
from permatoken.server.keystore import KeyStore
from permatoken.settings import Settings, load_settings
from permatoken.store import Store, open_store

from ._serve import Serve, wait_for
from .conftest import add_manual
from .test_reports import MINT, mintable

pytestmark = pytest.mark.slow

_NEW = {"token": "zqNewValue0123456789", "inspect": False, "never_expires": True}


@pytest.fixture
def sqlite_store(home: Path) -> Any:
    settings = load_settings()
    init_store(settings)
    store = open_store(settings)
    try:
        yield settings, store
    finally:
        store.close()


def test_a_database_deleted_under_serve_is_reported_not_served(
    sqlite_store: tuple[Settings, Store], emitted: Any
) -> None:
    """serve notices its SQLite file deleted: /readyz 503 with the reason, writes 503, the
    file is not re-created empty, and the log says it once (not once per request or tick)."""
    settings, store = sqlite_store
    add_manual(store, "acme/one", random_token())
    admin = KeyStore(store).create("admin", actor="test")[1].reveal()
    path = Path(settings.resolved_database_url.removeprefix("sqlite:///"))
    with Serve(env={"PERMATOKEN_SCHEDULER_INTERVAL": "0.1"}) as serve:
        serve.start()
        with serve.client(admin) as api:
            assert api.get("/readyz").status_code == 200
            path.unlink()
            for _ in range(3):
                r = api.get("/readyz")
                assert r.status_code == 503, r.text
                assert r.json()["checks"]["database"] is False
                assert "was deleted" in r.json()["reasons"]["database"]
            r = api.post("/v1/credentials", json=_NEW | {"name": "acme/two"})
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "store_unavailable"
        serve.stop()
        out = serve.output()
    emitted.add("serve output", out)
    detected = [ln for ln in out.splitlines() if "ERROR permatoken.store.engine" in ln]
    assert len(detected) == 1 and "was deleted since this process opened it" in detected[0], out
    assert "the scheduler pauses" in out
    assert "scheduler tick failed" not in out
    assert not path.exists()


def test_a_read_only_database_answers_503(
    sqlite_store: tuple[Settings, Store], emitted: Any
) -> None:
    """Writes to a database SQLite opened read-only answer 503 "read-only", not 500."""
    settings, store = sqlite_store
    add_manual(store, "acme/one", random_token())
    admin = KeyStore(store).create("admin", actor="test")[1].reveal()
    path = settings.resolved_database_url.removeprefix("sqlite:///")
    env = {"PERMATOKEN_DATABASE_URL": f"sqlite:///file:{path}?mode=ro&uri=true"}
    with Serve("--no-scheduler", env=env) as serve:
        serve.start()
        with serve.client(admin) as api:
            r = api.post("/v1/credentials", json=_NEW | {"name": "acme/two"})
            assert r.status_code == 503, r.text
            assert "read-only" in r.json()["error"]["message"]
            assert api.get("/v1/tokens/acme/one").status_code == 200
        emitted.add("serve output", serve.output())


def test_a_rotation_whose_serve_was_sigkilled_is_resumed_by_the_next_serve(
    settings: Settings, store: Store, sandbox: Any, world: dict[str, Any], emitted: Any
) -> None:
    """serve A dies (SIGKILL) mid API rotation holding the lease; serve B starts before the
    lease expires (its start-up resume must skip it) and its scheduler finishes the rotation
    once the lease has expired: one mint upstream, version 2 current, no restart needed."""
    mintable(store, world, sandbox)
    admin = KeyStore(store).create("admin", actor="test")[1].reveal()
    env = {
        "PERMATOKEN_GRAPH_URL": sandbox.url,
        "PERMATOKEN_CLOCK": "sandbox",  # lease expiry is then the test's to decide
        "PERMATOKEN_SCHEDULER_INTERVAL": "0.1",
        "PERMATOKEN_SCHEDULER_LEASE_TTL": "120",
        "PERMATOKEN_LEASE_TTL": "120",
    }
    crashing = env | {"PERMATOKEN_CRASH_AT": "pending"}  # SIGKILLs itself after the step
    with Serve("--no-scheduler", "--owner", "replica-a", env=crashing) as a:
        a.start()
        with a.client(admin) as api, pytest.raises(httpx.TransportError):
            api.post("/v1/credentials/acme/wa/rotate", json={"force": True})
        assert a.wait_exit() == -signal.SIGKILL
        emitted.add("serve A output", a.output())
    assert store.get("acme/wa").rotation_step == "pending"
    assert store.lease_holder("acme/wa")[0] == "replica-a"
    assert len(sandbox.state.calls(MINT)) == 1
    with Serve("--owner", "replica-b", env=env) as b:
        b.start()
        # B's start-up resume ran while A's lease was still valid, so it left it alone.
        assert store.get("acme/wa").rotation_step == "pending"
        assert store.version("acme/wa").version == 1
        sandbox.state.clock.advance(121)  # A's lease expires
        wait_for(
            lambda: (
                store.get("acme/wa").rotation_step is None and store.version("acme/wa").version == 2
            ),
            what="serve B to finish the dead rotation",
        )
        with b.client(admin) as api:
            assert api.get("/v1/tokens/acme/wa").json()["version"] == 2
        emitted.add("serve B output", b.output())
    assert len(sandbox.state.calls(MINT)) == 1, "the resumed rotation minted again"
    assert store.get("acme/wa").health.value == "ok"
    with sandbox.state.lock:
        emitted.watch(*sandbox.state.tokens)
    emitted.watch(admin)
