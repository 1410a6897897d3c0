"""Concurrent writers (real processes, and threads) never corrupt a credential or make two current.

Each worker process opens its own store, waits at a start line so that all of them really run
at once, races to add the same credential, then rotates it (add_pending + promote) repeatedly,
retrying when another writer holds the pending slot.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from permatoken._exceptions import ConflictError
from permatoken._secret import Secret
from permatoken.models import NewCredential, VersionMeta, VersionState
from permatoken.settings import Settings
from permatoken.store import Store, open_store

PROCESSES = 6
ITERATIONS = 20
NAME = "race/messaging"

WORKER = r"""
import json, os, random, sys, time
from pathlib import Path

from permatoken._exceptions import AlreadyExistsError, ConflictError
from permatoken._secret import Secret
from permatoken.models import NewCredential, VersionMeta
from permatoken.settings import load_settings
from permatoken.store import open_store

cfg = json.loads(sys.argv[1])
me = cfg["worker"]
store = open_store(load_settings())
Path(cfg["dir"], f"ready-{me}").touch()
go = Path(cfg["dir"], "go")
while not go.exists():
    time.sleep(0.002)

result = {"worker": me, "add": None, "created": {}, "conflicts": 0}
value = f"zqAdd{me}x{os.getpid()}abcdefgh"
try:
    store.add_credential(NewCredential(name=cfg["name"]), Secret(value), VersionMeta())
    result["add"] = "ok"
    result["created"]["1"] = value
except AlreadyExistsError:
    result["add"] = "exists"

for i in range(cfg["iterations"]):
    value = f"zqRot{me}x{i}x{os.getpid()}abcdefgh"
    tries = 0
    while True:
        try:
            v = store.add_pending(cfg["name"], Secret(value), VersionMeta())
        except ConflictError:
            # Another writer holds the pending slot until it promotes: back off, then retry.
            result["conflicts"] += 1
            backoff = min(0.01 * 2 ** min(tries, 3), 0.08)
            tries += 1
            time.sleep(random.uniform(0, backoff))
            continue
        store.promote(cfg["name"], v.version)
        result["created"][str(v.version)] = value
        break
store.close()
print(json.dumps(result))
"""


def _run_workers(tmp_path: Path, n: int, iterations: int) -> list[dict[str, Any]]:
    procs = []
    for i in range(n):
        cfg = json.dumps(
            {"worker": i, "dir": str(tmp_path), "name": NAME, "iterations": iterations}
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, cfg],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        while sum((tmp_path / f"ready-{i}").exists() for i in range(n)) < n:
            failed = [p for p in procs if p.poll() is not None]
            assert not failed, failed[0].communicate()[1]
            time.sleep(0.01)
        (tmp_path / "go").touch()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=180)
            assert p.returncode == 0, err
            results.append(json.loads(out))
        return results
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _check_history(store: Store, created: dict[int, str]) -> None:
    versions = store.versions(NAME)
    numbers = [v.version for v in versions]
    assert numbers == list(range(1, len(numbers) + 1)), "version numbers unique and contiguous"
    assert sorted(created) == numbers, "every version is one a worker reported creating"
    states = [v.state for v in versions]
    assert states.count(VersionState.CURRENT) == 1
    assert VersionState.PENDING not in states
    assert versions[-1].state is VersionState.CURRENT
    for v in versions:
        assert store.reveal(NAME, v.version).reveal() == created[v.version]
    assert store.get(NAME).current_version == numbers[-1]


def test_processes_racing_to_add_and_rotate(settings: Settings, tmp_path: Path) -> None:
    """6 processes: one add wins, the rest get AlreadyExistsError; 120 rotations stay consistent."""
    (tmp_path / "sync").mkdir()
    results = _run_workers(tmp_path / "sync", PROCESSES, ITERATIONS)
    adds = sorted(r["add"] for r in results)
    assert adds == ["exists"] * (PROCESSES - 1) + ["ok"]
    created: dict[int, str] = {}
    for r in results:
        for number, value in r["created"].items():
            assert int(number) not in created, f"version {number} created twice"
            created[int(number)] = value
    assert len(created) == 1 + PROCESSES * ITERATIONS
    store = open_store(settings)
    try:
        _check_history(store, created)
        promoted = [e for e in store.events(NAME, limit=1000) if e.kind == "version.promoted"]
        assert len(promoted) == PROCESSES * ITERATIONS
    finally:
        store.close()


def test_threads_rotating_one_credential(store: Store) -> None:
    """The same promise with threads sharing one store (one connection pool)."""
    store.add_credential(NewCredential(name=NAME), Secret("zqFirstValue1234"), VersionMeta())
    created = {1: "zqFirstValue1234"}
    lock = threading.Lock()
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(8):
                value = f"zqThread{t}x{i}abcdefgh"
                while True:
                    try:
                        v = store.add_pending(NAME, Secret(value), VersionMeta())
                    except ConflictError:
                        time.sleep(0.001)
                        continue
                    store.promote(NAME, v.version)
                    with lock:
                        created[v.version] = value
                    break
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    assert len(created) == 1 + 4 * 8
    _check_history(store, created)


@pytest.mark.parametrize("iterations", [0])
def test_worker_script_reports_failures(tmp_path: Path, iterations: int) -> None:
    """The harness itself fails loudly when a worker cannot open the store (no silent pass)."""
    (tmp_path / "sync").mkdir()
    with pytest.raises(AssertionError, match=r"not initialised|no such table|does not exist"):
        _run_workers(tmp_path / "sync", 1, iterations)
