"""The README, followed top to bottom as a user would: every shell and Python block, in order.

The blocks run as one bash session in an empty directory with a fresh HOME and no PERMATOKEN_*
variables, `permatoken` and `python3` from this installation first on PATH. Blocks that need a
real Meta token or run forever carry ``<!-- readme-test: skip (reason) -->`` on the line before
their fence; everything else runs. The README's fixed ports (8787 for the sandbox, 8700 for the
service) are swapped for free ones so that runs on one machine do not collide. Background
processes the blocks start are stopped when the session ends.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)
SKIP = re.compile(r"<!-- readme-test: skip \(([^)]+)\) -->\s*$")
RUNS = {"sh": "sh", "bash": "sh", "python": "python"}
PORTS = ("8787", "8700")


@dataclass(frozen=True)
class Block:
    line: int
    lang: str
    code: str
    skip: str | None


def readme_blocks(text: str) -> list[Block]:
    blocks = []
    for m in FENCE.finditer(text):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        blocks.append(
            Block(text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2), skip and skip[1])
        )
    return blocks


def _free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def session_script(blocks: list[Block], ports: dict[str, str]) -> str:
    lines = [
        "set -euo pipefail",
        # Stop what the blocks left running in the background, whatever happened.
        "trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true' EXIT",
    ]
    for block in blocks:
        if block.skip:
            continue
        code = block.code
        for readme_port, port in ports.items():
            code = code.replace(readme_port, port)
        # On a line of its own even if a background process wrote half a line just before.
        lines.append(f"printf '\\n### README line {block.line}\\n'")
        if RUNS[block.lang] == "python":
            lines += ["python3 - <<'README_PYTHON'", code.rstrip("\n"), "README_PYTHON"]
        else:
            lines.append(code.rstrip("\n"))
    return "\n".join(lines) + "\n"


def test_every_block_runs_or_says_why_not() -> None:
    """Each fenced block is shell or Python, or is marked skip with a reason."""
    blocks = readme_blocks(README.read_text())
    assert len(blocks) >= 6
    for block in blocks:
        assert block.skip or block.lang in RUNS, f"README line {block.line}: ```{block.lang}"
    skipped = [b.skip for b in blocks if b.skip]
    assert len(skipped) <= 3, skipped  # the demo/suite, the install, a real Meta token


def test_the_readme_runs_top_to_bottom_in_a_fresh_home(tmp_path: Path) -> None:
    """init, the sandbox walk-through (add, 45 days, rotate), the quick start sending through
    a revocation, and the broker read all work as written; nothing touches the user's home."""
    blocks = readme_blocks(README.read_text())
    ports = {port: _free_port() for port in PORTS}
    script = tmp_path / "readme-session.sh"
    script.write_text(session_script(blocks, ports))
    work, user_home = tmp_path / "work", tmp_path / "user-home"
    work.mkdir()
    user_home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERMATOKEN_")}
    env |= {
        "HOME": str(user_home),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    proc = subprocess.run(
        ["bash", str(script)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    ran = re.findall(r"### README line (\d+)", proc.stdout)
    assert len(ran) == len([b for b in blocks if not b.skip]), ran
    assert "verdict: 60-day system-user token, expires in 60 days" in out
    assert "acme/messaging: rotated, version 2" in out
    assert proc.stdout.count("sent wamid.") == 2, out[-4000:]
    assert '"name":"acme/messaging"' in out.replace(" ", "") and '"version":2' in out.replace(
        " ", ""
    )
    assert "Traceback" not in out
    # The README's own home was used, never the user's default one.
    assert (work / "permatoken-home" / "key").exists()
    assert not any(user_home.rglob("permatoken*"))
    # Nothing the blocks started in the background outlives the session.
    for port in ports.values():
        with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
            sock.connect(("127.0.0.1", int(port)))


@pytest.mark.parametrize("command", ["make demo", "make test"])
def test_readme_shows_the_two_commands(command: str) -> None:
    assert command in README.read_text()
