"""CLI start-up time, as ratios to a bare ``python -c "import typer"`` (no assertions).

1. ``python -c "import permatoken"`` vs ``import typer``                       target <= 2x
2. ``permatoken --help`` vs ``import typer``                                   target <= 3x
3. ``permatoken status`` (one credential, SQLite) vs ``import typer``          target <= 5x

Every command runs as a fresh process in the same interpreter and environment, interleaved
round by round (so a busy neighbour slows every command alike), in a throw-away home; the
median of N rounds is compared. Run: ``python bench/bench_startup.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
#: The console script users run (falls back to ``python -m permatoken``).
SCRIPT = Path(PY).with_name("permatoken")
PERMATOKEN = [str(SCRIPT)] if SCRIPT.exists() else [PY, "-m", "permatoken"]

COMMANDS: dict[str, tuple[list[str], float]] = {
    "import typer (baseline)": ([PY, "-c", "import typer"], 1.0),
    "import permatoken": ([PY, "-c", "import permatoken"], 2.0),
    "permatoken --help": ([*PERMATOKEN, "--help"], 3.0),
    "permatoken status": ([*PERMATOKEN, "status"], 5.0),
}


def _run(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="runs of each command (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pt-bench-startup-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERMATOKEN_")}
        env["PERMATOKEN_HOME"] = str(Path(tmp) / "home")
        subprocess.run([*PERMATOKEN, "init"], env=env, capture_output=True, check=True)
        subprocess.run(
            [*PERMATOKEN, "add", "acme/messaging", "--offline", "--never-expires"],
            input=b"zqBenchStartupToken0123456789",
            env=env,
            capture_output=True,
            check=True,
        )
        times: dict[str, list[float]] = {label: [] for label in COMMANDS}
        for argv, _ in COMMANDS.values():
            _run(argv, env)  # warm the bytecode and file caches once
        for _ in range(args.rounds):
            for label, (argv, _) in COMMANDS.items():
                times[label].append(_run(argv, env))
    base = statistics.median(times["import typer (baseline)"])
    width = max(map(len, COMMANDS))
    print(f"median of {args.rounds} interleaved runs; baseline {base * 1000:.0f} ms")
    print(f"{'command':<{width}}  {'median':>8}  {'ratio':>7}  target")
    for label, (_, target) in COMMANDS.items():
        med = statistics.median(times[label])
        print(f"{label:<{width}}  {med * 1000:>6.0f}ms  {med / base:>6.2f}x  <= {target:g}x")


if __name__ == "__main__":
    main()
