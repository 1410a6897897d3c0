"""`make mutate`: mutation testing of the security-critical modules, one summary per module.

    python tools/mutate.py [MODULE ...] [--jobs N]

Runs mutmut (configured in pyproject.toml, ``[tool.mutmut]``) on the named modules (default:
all of them), then prints, per module, how many mutants were made, killed and survived, and
the diff of every survivor. Exits 1 if a module that must have no survivor has one.
See docs/development.md for when to run it and how to read it.
"""

from __future__ import annotations

import argparse
import fnmatch
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

#: Short name → the mutmut mutant names of that module (functions are mangled ``x_name`` and
#: ``xǁClassǁmethod``). Only the pure rotation/steps.py: the engine is tested end to end.
MODULES = {
    "crypto": "permatoken.crypto.*",
    "secret": "permatoken._secret.*",
    "access": "permatoken.access.*",
    "audit": "permatoken.store.audit.*",
    "errors": "permatoken.meta.error[s_]*",  # errors.py and the tables it reads, error_codes.py
    "auth": "permatoken.client.auth.*",
    "steps": "permatoken.rotation.steps.*",
}
#: Modules where a survivor fails the run (an equivalent mutant is excluded in the source with
#: ``# pragma: no mutate`` and explained in docs/development.md).
NO_SURVIVORS = ("crypto", "access", "audit")

#: mutmut statuses: a mutant that hangs the tests (timeout) is caught as surely as a failing
#: one; a mutant no selected test even runs ("no tests") survives as surely as an unnoticed one.
KILLED = {"killed", "timeout", "caught by type check", "segfault"}
SURVIVED = {"survived", "no tests"}

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = [sys.executable, "-m", "mutmut"]


def _results() -> dict[str, str]:
    out = subprocess.run(
        [*MUTMUT, "results", "--all", "true"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = {}
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep:
            found[name] = status
    return found


def _show(name: str) -> str:
    out = subprocess.run(
        [*MUTMUT, "show", name], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout
    return "\n".join(
        ln for ln in out.splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=", ".join(MODULES))
    parser.add_argument("--jobs", type=int, default=2, help="parallel mutants (default 2)")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module {unknown[0]!r}; choose from {', '.join(MODULES)}")
    chosen = args.modules or list(MODULES)
    # A fresh start every time: mutmut keeps results across runs, and a stale cache (tests or
    # configuration changed, a run interrupted) can report old verdicts as new ones.
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    run = subprocess.run(
        [*MUTMUT, "run", "--max-children", str(args.jobs), *(MODULES[m] for m in chosen)],
        cwd=ROOT,
        check=False,
    )
    if run.returncode != 0:
        print(f"mutmut run failed (exit {run.returncode})", file=sys.stderr)
        return run.returncode
    results = _results()
    print(f"\n{'module':<8} {'mutants':>8} {'killed':>7} {'survived':>9} {'other':>6}")
    survivors: dict[str, list[tuple[str, str]]] = {}
    for module in chosen:
        mine = {n: s for n, s in results.items() if fnmatch.fnmatchcase(n, MODULES[module])}
        counts = Counter(
            "killed" if s in KILLED else "survived" if s in SURVIVED else "other"
            for s in mine.values()
        )
        survivors[module] = sorted((n, s) for n, s in mine.items() if s in SURVIVED)
        print(
            f"{module:<8} {len(mine):>8} {counts['killed']:>7} {counts['survived']:>9} "
            f"{counts['other']:>6}"
        )
    failed = False
    for module, names in survivors.items():
        for name, status in names:
            print(f"\n# {module}: {name} ({status})\n{_show(name)}")
        if names and module in NO_SURVIVORS:
            failed = True
    if failed:
        print(
            f"\nsurvivors in {', '.join(m for m in NO_SURVIVORS if survivors.get(m))}: "
            "kill them with a test, or explain an equivalent mutant (docs/development.md)",
            file=sys.stderr,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
