"""Scheduled backups in `serve`: one replica per period, pruning, failure notices, the age of
the last good backup in status and metrics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from permatoken.backup.schedule import BackupSchedule, to_prune
from permatoken.backup.status import METRIC
from permatoken.notify.delivery import Deliverer, Outbox
from permatoken.settings import Settings, load_settings
from permatoken.store import open_store
from permatoken.store.backups import BackupLog
from permatoken.timeutil import ManualClock

HOUR = 3600.0


def _settings(tmp_path: Path, **backup: Any) -> Settings:
    return load_settings(
        backup={"every": "1h", "dir": str(tmp_path / "backups")} | backup,
        notify_urls=["json://hooks.invalid/permatoken"],
    )


def test_one_replica_takes_each_period(
    settings: Settings, seeded: list[str], tmp_path: Path
) -> None:
    """Four replicas try at once, period after period: each period has exactly one backup."""
    s = _settings(tmp_path)
    clock = ManualClock(datetime(2026, 7, 1, 0, 30, tzinfo=UTC))
    stores = [open_store(s, clock=clock) for _ in range(4)]
    try:
        schedules = [
            BackupSchedule(s, st, owner=f"replica-{i}", clock=clock) for i, st in enumerate(stores)
        ]
        for period in range(3):
            outcomes = _all_at_once([s.run_once for s in schedules])
            taken = [o for o in outcomes if o is not None]
            assert len(taken) == 1, outcomes
            assert taken[0].error is None and taken[0].result is not None
            assert len(list((tmp_path / "backups").iterdir())) == period + 1
            assert schedules[0].run_once() is None  # later in the same period: nothing
            clock.advance(HOUR)
    finally:
        for st in stores:
            st.close()


def _all_at_once(calls: list[Any]) -> list[Any]:
    """Run ``calls`` in threads released together; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_old_scheduled_backups_are_pruned(
    settings: Settings, seeded: list[str], tmp_path: Path
) -> None:
    s = _settings(tmp_path, keep=2)
    clock = ManualClock(datetime(2026, 7, 1, 0, 30, tzinfo=UTC))
    store = open_store(s, clock=clock)
    manual = tmp_path / "backups" / "by-hand.ptbackup"
    try:
        schedule = BackupSchedule(s, store, owner="r", clock=clock)
        for _ in range(4):
            assert schedule.run_once() is not None
            clock.advance(HOUR)
            if not manual.exists():
                manual.write_text("not ours")
    finally:
        store.close()
    names = sorted(p.name for p in (tmp_path / "backups").iterdir())
    assert names == [
        "by-hand.ptbackup",
        "permatoken-20260701T023000Z.ptbackup",
        "permatoken-20260701T033000Z.ptbackup",
    ]
    assert to_prune(["c", "a", "b"], 2) == ["a"] and to_prune(["a"], 2) == []


def test_a_failed_scheduled_backup_is_recorded_and_notified(
    settings: Settings, seeded: list[str], tmp_path: Path, emitted: Any
) -> None:
    """The failure is in the backup log and becomes a backup_failed notice that the deliverer
    sends to the configured channels; the last good backup is still the older one."""
    emitted.watch(*seeded)
    (tmp_path / "backups").write_text("a file where the directory should be")
    s = _settings(tmp_path)
    clock = ManualClock(datetime(2026, 7, 1, 0, 30, tzinfo=UTC))
    store = open_store(s, clock=clock)
    sent: list[tuple[str, str, str]] = []

    def sender(url: str, title: str, body: str) -> tuple[bool, str | None]:
        sent.append((url, title, body))
        return True, None

    try:
        outcome = BackupSchedule(s, store, owner="r", clock=clock).run_once()
        assert outcome is not None and outcome.result is None and outcome.error
        log = BackupLog(store)
        failed = log.last(state=None)
        assert failed is not None and failed.state == "failed" and failed.error
        good = log.last()
        assert good is not None and good.path == "/x/y.ptbackup"
        notices = Outbox(store, owner="t", clock=clock).all_notices("permatoken/backup")
        assert [n["event"] for n in notices] == ["backup_failed"]
        assert Deliverer(store, s, owner="t", clock=clock, sender=sender).run_once() == 1
    finally:
        store.close()
    assert [(u, t) for u, t, _ in sent] == [
        ("json://hooks.invalid/permatoken", "[permatoken] scheduled backup failed")
    ]
    assert "permatoken backup --out FILE" in sent[0][2]


def test_status_and_metrics_show_the_last_good_backup(
    settings: Settings, store: Any, tmp_path: Path, cli: Any
) -> None:
    from permatoken.server.metrics import BrokerMetrics

    def metric() -> str:
        lines = BrokerMetrics(store).render().decode().splitlines()
        return "\n".join(ln for ln in lines if ln.startswith(METRIC))

    assert cli("add", "acme/x", "--never-expires", input="zqValue123456").rc == 0
    assert metric() == ""  # never backed up: no sample (an alert on absent() fires)
    s = _settings(tmp_path)
    clock = ManualClock(datetime(2026, 7, 1, 0, 30, tzinfo=UTC))
    other = open_store(s, clock=clock)
    try:
        assert BackupSchedule(s, other, owner="r", clock=clock).run_once() is not None
    finally:
        other.close()
    value = float(metric().split()[-1])
    assert value == datetime(2026, 7, 1, 0, 30, tzinfo=UTC).timestamp()
    assert "last backup: 2026-07-01T00:30:00Z" in cli("status").stdout
    data = cli("backup", "status", "--json").json()
    assert data["last_backup"]["kind"] == "scheduled"
    assert data["last_backup"]["age_seconds"] > 0


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_two_serve_replicas_take_one_scheduled_backup(
    settings: Settings, seeded: list[str], tmp_path: Path
) -> None:
    """Two real `serve` processes on one PostgreSQL: one writes the backup, the other says the
    period is taken; the file verifies; both stop cleanly on SIGTERM."""
    backups = tmp_path / "backups"
    env = dict(os.environ) | {
        "PERMATOKEN_BACKUP__EVERY": "1d",
        "PERMATOKEN_BACKUP__DIR": str(backups),
    }
    logs = [tmp_path / f"serve-{i}.log" for i in range(2)]
    procs = []
    for i, log in enumerate(logs):
        with log.open("wb") as err:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "permatoken", "serve", "--no-api", "--owner", f"r{i}"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
            )
    try:
        deadline = time.monotonic() + 120
        while True:
            text = "".join(log.read_text(errors="replace") for log in logs)
            if "scheduled backup written" in text and "taken by another replica" in text:
                break
            assert all(p.poll() is None for p in procs), text
            assert time.monotonic() < deadline, text
            time.sleep(0.1)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(60) for p in procs]
    assert codes == [0, 0], "".join(log.read_text() for log in logs)
    files = list(backups.iterdir())
    assert len(files) == 1
    from permatoken.backup import verify_backup
    from permatoken.crypto import load_keyring

    verify_backup(files[0], keyring=lambda: load_keyring(None, settings.resolved_key_file))


def test_backup_settings_from_the_environment_and_the_config_file(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`[backup]` beside `[permatoken]` in config.toml, `PERMATOKEN_BACKUP__…` over it; off by
    default; a bad interval names its environment variable."""
    from permatoken._exceptions import ConfigError

    assert load_settings().backup.every is None
    home.mkdir()
    (home / "config.toml").write_text(
        '[permatoken]\nlog_level = "INFO"\n\n[backup]\nevery = "1d"\nkeep = 3\n'
        'passphrase-file = "/etc/pp"\n'
    )
    s = load_settings()
    assert (s.backup.every, s.backup.keep, s.backup.dir) == (86400, 3, None)
    assert s.backup.passphrase_file == Path("/etc/pp")
    monkeypatch.setenv("PERMATOKEN_BACKUP__EVERY", "6h")
    monkeypatch.setenv("PERMATOKEN_BACKUP__DIR", "/var/backups/pt")
    s = load_settings()
    assert (s.backup.every, s.backup.keep) == (21600, 3)
    assert s.backup.dir == Path("/var/backups/pt")
    monkeypatch.setenv("PERMATOKEN_BACKUP__EVERY", "often")
    with pytest.raises(ConfigError, match=r"PERMATOKEN_BACKUP__EVERY\): .*cannot parse") as info:
        load_settings()
    assert info.value.hint


def test_stopping_serve_abandons_a_scheduled_backup_cleanly(
    settings: Settings, store: Any, tmp_path: Path
) -> None:
    """A backup under way when `serve` stops gives up at once: no file, no temporary file,
    no failure notice (nothing is wrong), the attempt recorded as interrupted."""
    from ._world import seed_bulk

    seed_bulk(store, 400)
    s = _settings(tmp_path)
    clock = ManualClock(datetime(2026, 7, 1, 0, 30, tzinfo=UTC))
    schedule = BackupSchedule(s, store, owner="r", clock=clock)
    schedule.stop()  # as serve does on SIGTERM, here before the backup reaches its 1,000th row
    outcome = schedule.run_once()
    assert outcome is not None and outcome.error == "interrupted"
    assert list((tmp_path / "backups").iterdir()) == []
    assert Outbox(store, owner="t", clock=clock).all_notices("permatoken/backup") == []
    attempt = BackupLog(store).last(state=None)
    assert (
        attempt is not None and attempt.state == "failed" and "interrupted" in (attempt.error or "")
    )
