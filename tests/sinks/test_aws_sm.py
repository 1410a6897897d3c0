"""AWS Secrets Manager sinks against a real moto server, with rotations by the real engine."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from _moto import MotoServer, boto
from conftest import connect
from permatoken.rotation import RenewalEngine
from permatoken.sinks import Delivery
from permatoken.sinks.worker import SinkWorker
from permatoken.store.schema_sinks import sinks
from permatoken.store.sinks import SinkTable

NAME = "acme/messaging"
SECRET = "prod/acme/whatsapp"


def aws_versions(secret_id: str = SECRET) -> dict[str, list[str]]:
    """AWS's versions of the secret: version id -> staging labels."""
    listed = boto("secretsmanager").list_secret_version_ids(SecretId=secret_id)
    return {v["VersionId"]: v.get("VersionStages", []) for v in listed["Versions"]}


def aws_value(stage: str = "AWSCURRENT", secret_id: str = SECRET) -> Any:
    got = boto("secretsmanager").get_secret_value(SecretId=secret_id, VersionStage=stage)
    return got["SecretString"]


def key_of(store: Any, version: int, name: str = NAME) -> str:
    """The AWS version id permatoken must use for ``version`` of ``name`` on its one sink."""
    (rec,) = SinkTable(store).all(name)
    return Delivery(rec.uid, rec.credential_id, name, version, None, None).idempotency_key  # type: ignore[arg-type]


def worker(settings: Any, store: Any) -> SinkWorker:
    return SinkWorker(settings, store, owner="test", clock=store.clock)


@pytest.fixture
def aws_sink(moto: MotoServer, onboarded: str, cli: Any) -> str:
    """``acme/messaging`` delivered to ``aws-sm://prod/acme/whatsapp`` by `sink add` (version 1
    already in AWS); the value is version 1's token."""
    assert cli("sink", "add", NAME, "--to", f"aws-sm://{SECRET}").rc == 0
    return onboarded


@pytest.fixture
def sink_worker(aws_sink: str, settings: Any, world: Any) -> SinkWorker:
    """One replica's sink worker, made once the sink exists."""
    return worker(settings, world)


@pytest.fixture
def rotate(engine: RenewalEngine, world: Any, emitted: Any) -> Callable[[], int]:
    """``rotate()``: a forced rotation by the real engine; the new token is watched, the new
    version number returned."""

    def rotate_once() -> int:
        outcome = engine.rotate(NAME, force=True)
        assert outcome.status == "rotated", outcome.message
        emitted.watch(world.reveal(NAME).reveal())
        assert outcome.version is not None
        return outcome.version

    return rotate_once


def test_sink_add_delivers_the_current_token_at_once(
    moto: MotoServer, onboarded: str, cli: Any, world: Any, emitted: Any
) -> None:
    """`sink add` writes JSON {token, version, expires_at} as AWSCURRENT, created if missing"""
    added = cli("sink", "add", NAME, "--to", f"aws-sm://{SECRET}", "--json")
    assert added.rc == 0, added.stderr
    assert added.json()["delivered_version"] == 1 and added.json()["behind"] is False
    value = json.loads(aws_value())
    assert value["token"] == onboarded and value["version"] == 1
    assert value["expires_at"] == cli("status", NAME, "--json").json()[0]["expires_at"]
    assert list(aws_versions()) == [key_of(world, 1)]
    listed = cli("sink", "list", "--json").json()
    assert [(s["name"], s["url"], s["delivered_version"]) for s in listed] == [
        (NAME, f"aws-sm://{SECRET}", 1)
    ]
    assert onboarded not in moto.logs()


def test_format_raw_stores_the_bare_token(
    moto: MotoServer, onboarded: str, cli: Any, world: Any
) -> None:
    """?format=raw: the secret is the token itself"""
    assert cli("sink", "add", NAME, "--to", f"aws-sm://{SECRET}?format=raw").rc == 0
    assert aws_value() == onboarded


def test_two_rotations_leave_awscurrent_and_awsprevious(
    aws_sink: str, sink_worker: SinkWorker, rotate: Callable[[], int], world: Any
) -> None:
    """after two rotations AWSCURRENT holds v3, AWSPREVIOUS v2: one AWS version each"""
    for expected in (2, 3):
        assert rotate() == expected
        assert sink_worker.run_once() == 1
        assert sink_worker.run_once() == 0  # nothing behind any more
    assert json.loads(aws_value())["token"] == world.reveal(NAME, 3).reveal()
    assert json.loads(aws_value("AWSPREVIOUS"))["token"] == world.reveal(NAME, 2).reveal()
    versions = aws_versions()
    assert set(versions) == {key_of(world, n) for n in (1, 2, 3)}
    assert versions[key_of(world, 3)] == ["AWSCURRENT"]
    assert versions[key_of(world, 2)] == ["AWSPREVIOUS"]
    kinds = [e.kind for e in world.events(NAME) if e.kind.startswith("sink.")]
    assert kinds.count("sink.delivered") == 2 and "sink.added" in kinds


def test_aws_down_during_a_promotion_the_sink_catches_up(
    moto: MotoServer,
    aws_sink: str,
    sink_worker: SinkWorker,
    rotate: Callable[[], int],
    cli: Any,
    world: Any,
    engine: RenewalEngine,
    settings: Any,
    sandbox: Any,
) -> None:
    """moto killed: the rotation completes, the sink is behind with a clear error and retries
    with back-off; moto back on the same port: exactly one AWS version for the new version"""
    w = sink_worker
    engine.events.subscribe_promotions(w.wake)
    moto.kill()
    assert rotate() == 2  # never blocked by the sink
    assert w._wake.is_set()  # the promotion woke the worker
    assert w.run_once() == 0
    (rec,) = SinkTable(world).all()
    assert rec.behind and rec.delivered_version == 1 and rec.current_version == 2
    assert rec.attempts == 1 and "AWS Secrets Manager" in (rec.last_error or "")
    assert w.run_once() == 0  # backing off: not retried before its time
    assert SinkTable(world).all()[0].attempts == 1
    status = cli("status", NAME, "--json").json()[0]
    assert status["version"] == 2
    (lag,) = status["sinks"]
    assert lag["behind"] is True and lag["delivered_version"] == 1 and lag["current_version"] == 2
    assert "AWS Secrets Manager" in lag["last_error"]

    moto.start()  # same port; moto starts empty, so the secret is created again
    sandbox.advance(settings.sinks.retry_max + 1)
    assert w.run_once() == 1
    assert list(aws_versions()) == [key_of(world, 2)]
    assert json.loads(aws_value())["token"] == world.reveal(NAME, 2).reveal()
    (rec,) = SinkTable(world).all()
    assert not rec.behind and rec.attempts == 0 and rec.last_error is None
    kinds = [e.kind for e in world.events(NAME)]
    assert "sink.failed" in kinds and kinds.count("sink.delivered") == 1
    assert all(aws_sink not in text for text in (moto.logs(), rec.last_error or ""))


def test_a_retry_after_a_crash_makes_no_second_aws_version(
    sink_worker: SinkWorker, rotate: Callable[[], int], world: Any, settings: Any
) -> None:
    """AWS took v2 but the record of it was lost (a crash): the retry adds no AWS version"""
    w = sink_worker
    rotate()
    assert w.run_once() == 1
    before = aws_versions()
    with connect(settings.resolved_database_url) as conn:  # the crash: delivery not recorded
        conn.execute(sinks.update().values(delivered_version=1))
    assert SinkTable(world).all()[0].behind
    assert w.run_once() == 1
    assert aws_versions() == before and len(before) == 2
    assert not SinkTable(world).all()[0].behind


def test_two_workers_at_once_deliver_once(
    aws_sink: str, rotate: Callable[[], int], world: Any, settings: Any
) -> None:
    """two replicas racing on one due sink: one claims it, AWS gets one version"""
    import threading

    rotate()
    workers = [worker(settings, world) for _ in range(2)]
    done: list[int] = []
    threads = [threading.Thread(target=lambda w=w: done.append(w.run_once())) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(done) == [0, 1]
    assert len(aws_versions()) == 2


def test_sink_add_refuses_when_aws_is_down_and_changes_nothing(
    moto: MotoServer, onboarded: str, cli: Any, world: Any, settings: Any, db_rows: Any
) -> None:
    """the first delivery fails: exit 16, an error naming Secrets Manager, no sink saved"""
    moto.kill()
    before = db_rows(settings.resolved_database_url)
    refused = cli("sink", "add", NAME, "--to", f"aws-sm://{SECRET}")
    assert refused.rc == 16
    assert "error: sink aws-sm://prod/acme/whatsapp: AWS Secrets Manager" in refused.stderr
    assert "hint:" in refused.stderr
    assert SinkTable(world).all() == []
    assert db_rows(settings.resolved_database_url) == before


def test_sink_add_without_an_aws_region_says_how_to_set_one(
    moto: MotoServer, onboarded: str, cli: Any, world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """no region in the AWS environment: a clear error naming AWS_DEFAULT_REGION, nothing saved"""
    from permatoken import aws

    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    aws.reset_clients()
    refused = cli("sink", "add", NAME, "--to", f"aws-sm://{SECRET}")
    assert refused.rc == 16 and "AWS Secrets Manager" in refused.stderr
    assert "AWS_DEFAULT_REGION" in refused.stderr
    assert SinkTable(world).all() == []


def test_no_token_reaches_a_log_even_at_debug(
    moto: MotoServer, onboarded: str, cli: Any, world: Any, emitted: Any, caplog: Any
) -> None:
    """botocore logs request bodies at DEBUG: permatoken keeps it quiet, so the token is in no
    log record, no CLI output and not in moto's own request log"""
    import logging

    caplog.set_level(logging.DEBUG)
    assert cli("sink", "add", NAME, "--to", f"aws-sm://{SECRET}").rc == 0
    assert json.loads(aws_value())["token"] == onboarded  # it did go to AWS
    emitted.assert_absent(onboarded)
    assert all(onboarded not in r.getMessage() for r in caplog.records)
    assert onboarded not in moto.logs()


def test_a_sink_left_behind_sends_one_notice_per_version(
    moto: MotoServer,
    aws_sink: str,
    rotate: Callable[[], int],
    world: Any,
    settings: Any,
    sandbox: Any,
) -> None:
    """behind past sinks.notice_after: one sink_behind notice naming the sink and the error,
    not one per retry; the notice holds no token"""
    from permatoken.settings import SinkSettings

    quick = settings.model_copy(update={"sinks": SinkSettings(notice_after=60)})
    w = worker(quick, world)
    moto.kill()
    rotate()
    assert w.run_once() == 0  # behind for less than notice_after: no notice yet

    def notices() -> list[tuple[Any, ...]]:
        with connect(settings.resolved_database_url) as conn:
            rows = conn.exec_driver_sql(
                "SELECT credential_name, version, event, body FROM notices"
            ).all()
            return [tuple(r) for r in rows]

    assert notices() == []
    for _ in range(3):
        sandbox.advance(quick.sinks.retry_max + 1)
        assert w.run_once() == 0
    (notice,) = notices()
    assert notice[:3] == (NAME, 2, "sink_behind")
    assert f"aws-sm://{SECRET}" in notice[3] and "AWS Secrets Manager" in notice[3]
    assert world.reveal(NAME).reveal() not in notice[3] and aws_sink not in notice[3]
