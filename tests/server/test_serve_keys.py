"""A running `permatoken serve` and its keys: rotation in another process, wrong keys, readiness."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import random_token
from permatoken.crypto import generate_key, kek_id_of, read_key_file_keys
from permatoken.server.keystore import KeyStore
from permatoken.settings import Settings
from permatoken.store import Store, open_store

from ._serve import Serve
from .conftest import add_manual

pytestmark = pytest.mark.slow


def _admin(store: Store) -> str:
    return KeyStore(store).create("admin", actor="test")[1].reveal()


def test_keys_rotate_and_prune_while_serve_runs(
    settings: Settings, store: Store, run_cli: Any, emitted: Any
) -> None:
    """serve reads what `keys rotate` (another process) re-wrapped, seals new values under the
    new key at once, and keeps reading after `keys rotate --prune`: no restart needed."""
    values = {f"k/c{i}": random_token() for i in range(4)}
    for name, value in values.items():
        add_manual(store, name, value)
    emitted.watch(*values.values())
    admin = _admin(store)
    with Serve("--no-scheduler") as serve:
        serve.start()
        with serve.client(admin) as api:
            assert api.get("/v1/tokens/k/c0").json()["token"] == values["k/c0"]
            assert run_cli("keys", "rotate").rc == 0
            new = read_key_file_keys(settings.resolved_key_file)[-1]
            # The first thing serve does after the rotation is to seal a value: under the new key.
            values["k/added"] = random_token()
            r = api.post(
                "/v1/credentials",
                json={
                    "name": "k/added",
                    "token": values["k/added"],
                    "inspect": False,
                    "never_expires": True,
                },
            )
            assert r.status_code == 201, r.text
            assert store.version("k/added").kek_id == kek_id_of(new), "sealed under the old key"
            # Never read before, so not cached: its data key is now wrapped by the new KEK.
            r = api.get("/v1/tokens/k/c1")
            assert r.status_code == 200, r.text
            assert r.json()["token"] == values["k/c1"]
            # Rotates once more (a third key), then removes the two no row uses any more.
            pruned = run_cli("keys", "rotate", "--prune")
            assert pruned.rc == 0 and "removed 2 unused key(s)" in pruned.stdout, pruned.output
            (newest,) = read_key_file_keys(settings.resolved_key_file)
            for name in ("k/c2", "k/c3", "k/added"):
                r = api.get(f"/v1/tokens/{name}")
                assert r.status_code == 200 and r.json()["token"] == values[name], r.text
            values["k/later"] = random_token()
            r = api.post(
                "/v1/credentials",
                json={
                    "name": "k/later",
                    "token": values["k/later"],
                    "inspect": False,
                    "never_expires": True,
                },
            )
            assert r.status_code == 201, r.text
            assert store.version("k/later").kek_id == kek_id_of(newest)
            assert api.get("/readyz").json()["status"] == "ready"
        emitted.add("serve output", serve.output())
    assert store.kek_usage() == {kek_id_of(newest): len(values)}
    fresh = open_store(settings)  # a restart: the key file alone opens everything
    try:
        for name, value in values.items():
            assert fresh.reveal(name).reveal() == value
    finally:
        fresh.close()


def test_serve_with_a_wrong_key_refuses_to_start(
    settings: Settings, store: Store, emitted: Any
) -> None:
    """A PERMATOKEN_KEY that does not open the stored data stops serve before it listens
    (exit 6), naming the key it lacks and a row that needs it."""
    add_manual(store, "acme/wa", random_token())
    needed = store.keyring.active_id
    wrong = base64.b64encode(generate_key()).decode()
    emitted.watch(wrong)
    with Serve("--no-scheduler", env={"PERMATOKEN_KEY": wrong}) as serve:
        rc = serve.run_to_exit()
        out = serve.output()
    emitted.add("serve output", out)
    assert rc == 6, out
    assert "serving on" not in out and "Traceback" not in out
    assert needed in out and "'acme/wa' version 1" in out
    assert "backup" in out and "PERMATOKEN_KEY" in out


def test_readyz_reports_data_the_keys_cannot_open(
    settings: Settings, store: Store, run_cli: Any, tmp_path: Path, emitted: Any
) -> None:
    """A rotation run on another host with its own copy of the key file leaves serve unable to
    open the data: /readyz answers 503 naming the key and a row, and serve refuses to seal."""
    add_manual(store, "acme/one", random_token())
    admin = _admin(store)
    elsewhere = tmp_path / "other-host-key"
    shutil.copy2(settings.resolved_key_file, elsewhere)
    with Serve("--no-scheduler") as serve:
        serve.start()
        with serve.client(admin) as api:
            assert api.get("/readyz").status_code == 200
            r = run_cli("keys", "rotate", env={"PERMATOKEN_KEY_FILE": str(elsewhere)})
            assert r.rc == 0, r.output
            foreign = read_key_file_keys(elsewhere)[-1]
            r = api.get("/readyz")
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["checks"]["key"] is False and body["checks"]["database"] is True
            assert kek_id_of(foreign) in body["reasons"]["key"]
            assert "'acme/one' version 1" in body["reasons"]["key"]
            refused = api.post(
                "/v1/credentials",
                json={
                    "name": "acme/two",
                    "token": random_token(),
                    "inspect": False,
                    "never_expires": True,
                },
            )
            assert refused.json()["error"]["code"] == "crypto_error", refused.text
            assert "cannot open data already in the store" in refused.text
        emitted.add("serve output", serve.output())
    assert [c.credential.name for c in store.list_status()] == ["acme/one"]
