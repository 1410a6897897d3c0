"""File sinks, sinks run by a real `permatoken serve`, and the edges of `sink` commands."""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path
from typing import Any

from _moto import MotoServer, boto
from _waiting import wait_for
from permatoken.rotation import RenewalEngine
from permatoken.server.metrics import BrokerMetrics
from permatoken.sinks.worker import SinkWorker
from permatoken.store.sinks import SinkTable
from rotation._live import spawn_cli

NAME = "acme/messaging"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_file_sink_writes_atomically_with_mode_0600(
    onboarded: str,
    cli: Any,
    world: Any,
    engine: RenewalEngine,
    settings: Any,
    tmp_path: Path,
    emitted: Any,
) -> None:
    """the file holds the current token (0600, no temp file left), replaced on every rotation"""
    out = tmp_path / "run" / "wa-token"
    out.parent.mkdir(mode=0o700)
    assert cli("sink", "add", NAME, "--to", f"file://{out}").rc == 0
    assert out.read_text() == onboarded + "\n" and mode(out) == 0o600
    outcome = engine.rotate(NAME, force=True)
    assert outcome.status == "rotated"
    new = world.reveal(NAME).reveal()
    emitted.watch(new)
    assert SinkWorker(settings, world, owner="t", clock=world.clock).run_once() == 1
    assert out.read_text() == new + "\n" and mode(out) == 0o600
    assert os.listdir(out.parent) == ["wa-token"]


def test_file_sink_json_format(onboarded: str, cli: Any, tmp_path: Path) -> None:
    """?format=json writes the same JSON object as a Secrets Manager sink"""
    out = tmp_path / "wa.json"
    assert cli("sink", "add", NAME, "--to", f"file://{out}?format=json").rc == 0
    data = json.loads(out.read_text())
    assert data["token"] == onboarded and data["version"] == 1 and "expires_at" in data


def test_file_sink_into_a_missing_directory_is_refused(
    onboarded: str, cli: Any, world: Any, tmp_path: Path
) -> None:
    """no such directory: exit 16 with a hint, nothing saved, no file created"""
    out = tmp_path / "nowhere" / "token"
    refused = cli("sink", "add", NAME, "--to", f"file://{out}")
    assert refused.rc == 16
    assert "does not exist" in refused.stderr and "hint:" in refused.stderr
    assert SinkTable(world).all() == [] and not out.parent.exists()


def test_sink_commands_refuse_bad_input_and_unknown_names(
    onboarded: str, cli: Any, tmp_path: Path
) -> None:
    """unknown credential (3), bad URL (2), duplicate (4), removing a sink that is not there (3)"""
    out = tmp_path / "t"
    unknown = cli("sink", "add", "acme/nope", "--to", f"file://{out}")
    assert unknown.rc == 3 and "no credential named 'acme/nope'" in unknown.stderr
    assert not out.exists()
    bad = cli("sink", "add", NAME, "--to", "vault://kv/wa")
    assert bad.rc == 2 and "unknown sink kind 'vault'" in bad.stderr and "hint:" in bad.stderr
    assert cli("sink", "add", NAME, "--to", f"file://{out}").rc == 0
    twice = cli("sink", "add", NAME, "--to", f"file://{out}")
    assert twice.rc == 4 and "already has the sink" in twice.stderr
    missing = cli("sink", "remove", NAME, "--to", f"file://{tmp_path / 'other'}")
    assert missing.rc == 3 and "sink list" in missing.stderr
    removed = cli("sink", "remove", NAME, "--json")
    assert removed.rc == 0 and removed.json()["removed"] == [f"file://{out}"]
    assert cli("sink", "list", "--json").json() == []
    assert "no sinks yet" in cli("sink", "list").stdout


def test_removing_a_credential_removes_its_sinks(
    onboarded: str, cli: Any, world: Any, tmp_path: Path
) -> None:
    """a sink never outlives its credential (and the destination keeps its last value)"""
    out = tmp_path / "t"
    assert cli("sink", "add", NAME, "--to", f"file://{out}").rc == 0
    assert cli("remove", NAME, "--yes").rc == 0
    assert SinkTable(world).all() == []
    assert out.read_text() == onboarded + "\n"


def test_metrics_show_lag_per_kind_without_names(
    onboarded: str,
    cli: Any,
    world: Any,
    engine: RenewalEngine,
    tmp_path: Path,
    emitted: Any,
) -> None:
    """permatoken_sinks_behind counts a sink behind; no credential name or path in the series"""
    out = tmp_path / "t"
    assert cli("sink", "add", NAME, "--to", f"file://{out}").rc == 0

    def sink_lines() -> list[str]:
        text = BrokerMetrics(world).render().decode()
        return [ln for ln in text.splitlines() if ln.startswith("permatoken_sink")]

    assert 'permatoken_sinks{kind="file"} 1.0' in sink_lines()
    assert 'permatoken_sinks_behind{kind="file"} 0.0' in sink_lines()
    assert engine.rotate(NAME, force=True).status == "rotated"
    emitted.watch(world.reveal(NAME).reveal())
    lines = sink_lines()
    assert 'permatoken_sinks_behind{kind="file"} 1.0' in BrokerMetrics(world).render().decode()
    assert all(NAME not in ln and str(out) not in ln for ln in lines)


def test_serve_delivers_a_rotation_made_by_another_process(
    moto: MotoServer,
    onboarded: str,
    cli: Any,
    run_cli: Any,
    world: Any,
    tmp_path: Path,
    emitted: Any,
) -> None:
    """`permatoken serve` finds the sinks behind after a `permatoken rotate` in another process
    and brings both (Secrets Manager and file) to the new version; `status` shows no lag then"""
    out = tmp_path / "wa-token"
    assert cli("sink", "add", NAME, "--to", "aws-sm://acme/wa").rc == 0
    assert cli("sink", "add", NAME, "--to", f"file://{out}").rc == 0
    serve = spawn_cli(
        "serve",
        "--no-api",
        env={"PERMATOKEN_SINKS__INTERVAL": "0.2", "PERMATOKEN_SCHEDULER_INTERVAL": "3600"},
    )
    try:
        rotated = run_cli("rotate", NAME, "--force")
        assert rotated.rc == 0, rotated.stderr
        new = world.reveal(NAME).reveal()
        emitted.watch(new)

        def aws_current() -> str:
            got = boto("secretsmanager").get_secret_value(SecretId="acme/wa")
            return str(json.loads(got["SecretString"])["token"])

        wait_for(lambda: aws_current() == new, what="serve to deliver v2 to Secrets Manager")
        wait_for(lambda: out.read_text() == new + "\n", what="serve to write v2 to the file")
        wait_for(
            lambda: not any(s.behind for s in SinkTable(world).all()),
            what="both sinks recorded as delivered",
        )
        sinks = cli("status", NAME, "--json").json()[0]["sinks"]
        assert [(s["delivered_version"], s["behind"]) for s in sinks] == [(2, False), (2, False)]
    finally:
        serve.send_signal(signal.SIGTERM)
        stdout, stderr = serve.communicate(timeout=60)
        emitted.add("serve stdout", stdout)
        emitted.add("serve stderr", stderr)
    assert serve.returncode == 0, stderr.decode()
    emitted.assert_absent(onboarded, new)
    assert new not in moto.logs()
