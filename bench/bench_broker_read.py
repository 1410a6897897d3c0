"""Broker token reads vs a bare Starlette endpoint returning a same-sized JSON body.

Seeds 100,000 credentials (bulk inserts, values sealed with the store's keyring), starts
``permatoken serve`` (uvicorn) and, separately, a bare Starlette app under the same uvicorn
settings, loads each with the same client (wrk if installed, else an httpx async load
generator) over the same set of 1,000 credential paths, and prints requests/s, p99 and ratios.

    python bench/bench_broker_read.py [--credentials 100000] [--duration 10] [--connections 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HOT_NAMES = 1000
BARE_APP = """
import sys
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
BODY = open(sys.argv[1], "rb").read()
async def token(request):
    headers = {"ETag": '"v1"', "Cache-Control": "no-store"}
    return Response(BODY, media_type="application/json", headers=headers)
app = Starlette(routes=[Route("/v1/tokens/{name:path}", token)])
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(home: Path, n: int) -> tuple[str, str]:
    """Initialise a store in ``home`` with ``n`` credentials; returns (app key, a sample body)."""
    import sqlalchemy as sa

    from permatoken._secret import fingerprint
    from permatoken.crypto import generate_key, write_key_file
    from permatoken.server.keystore import KeyStore
    from permatoken.settings import load_settings
    from permatoken.store import engine as store_engine
    from permatoken.store import open_store
    from permatoken.store.repository import _aad_version
    from permatoken.store.schema import credentials, versions

    settings = load_settings(home=home)
    home.mkdir(parents=True, exist_ok=True)
    write_key_file(settings.resolved_key_file, [generate_key()])
    engine = store_engine.create_engine(settings.resolved_database_url)
    store_engine.upgrade(engine)
    engine.dispose()
    store = open_store(settings)
    now = datetime.now(UTC)
    started = time.perf_counter()
    batch = 5000
    sample = ""
    with store.write() as conn:
        for lo in range(1, n + 1, batch):
            ids = range(lo, min(lo + batch, n + 1))
            conn.execute(
                credentials.insert(),
                [
                    {
                        "id": i,
                        "name": f"bench/c{i:06d}",
                        "tenant": "bench",
                        "issuer": "manual",
                        "waba_ids": [],
                        "options": {},
                        "policy": {},
                        "health": "ok",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in ids
                ],
            )
            rows = []
            for i in ids:
                token = "EAAB" + secrets.token_urlsafe(150)
                sample = sample or token
                sealed = store.keyring.seal(
                    json.dumps({"token": token}).encode(), _aad_version(i, 1)
                )
                rows.append(
                    {
                        "credential_id": i,
                        "version": 1,
                        "state": "current",
                        "ciphertext": sealed.ciphertext,
                        "wrapped_key": sealed.wrapped_key,
                        "kek_id": sealed.kek_id,
                        "fingerprint": fingerprint(token),
                        "token_type": "SYSTEM_USER",
                        "scopes": [],
                        "waba_ids": [],
                        "created_at": now,
                        "state_changed_at": now,
                    }
                )
            conn.execute(versions.insert(), rows)
        count = conn.execute(sa.select(sa.func.count()).select_from(credentials)).scalar()
    _, key = KeyStore(store).create("app", ["bench/*"], actor="bench")
    store.close()
    print(f"seeded {count} credentials in {time.perf_counter() - started:.1f} s", flush=True)
    body = json.dumps(
        {
            "name": "bench/c000001",
            "version": 1,
            "token": sample,
            "expires_at": None,
            "token_type": "SYSTEM_USER",
            "fingerprint": fingerprint(sample),
        },
        separators=(",", ":"),
    )
    return key.reveal(), body


def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def run_wrk(
    url: str, key: str, duration: int, connections: int, workdir: Path
) -> tuple[float, float]:
    script = workdir / "paths.lua"
    script.write_text(
        f'local i = 0\nwrk.headers["Authorization"] = "Bearer {key}"\n'
        f"request = function()\n  i = (i % {HOT_NAMES}) + 1\n"
        '  return wrk.format("GET", string.format("/v1/tokens/bench/c%06d", i))\nend\n'
    )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert m, out
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"{non2xx.group(1)} error responses from {url}:\n{out}")
    return rps, p99


def run_httpx(
    url: str, key: str, duration: int, connections: int, workdir: Path
) -> tuple[float, float]:
    import httpx

    async def main() -> tuple[float, float]:
        latencies: list[float] = []
        stop = time.perf_counter() + duration
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(
            base_url=url, limits=limits, headers={"Authorization": f"Bearer {key}"}
        ) as c:

            async def worker(w: int) -> None:
                i = w
                while time.perf_counter() < stop:
                    i = i % HOT_NAMES + 1
                    t0 = time.perf_counter()
                    r = await c.get(f"/v1/tokens/bench/c{i:06d}")
                    latencies.append((time.perf_counter() - t0) * 1000)
                    r.raise_for_status()

            await asyncio.gather(*(worker(w) for w in range(connections)))
        latencies.sort()
        return len(latencies) / duration, latencies[int(len(latencies) * 0.99)]

    return asyncio.run(main())


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--credentials", type=int, default=100_000)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    load = run_wrk if shutil.which("wrk") else run_httpx
    client = "wrk" if load is run_wrk else "httpx (install wrk for a lighter client)"
    with tempfile.TemporaryDirectory(prefix="permatoken-bench-") as tmp:
        work = Path(tmp)
        home = work / "home"
        key, body = seed(home, args.credentials)
        (work / "body.json").write_text(body)
        (work / "bare.py").write_text(BARE_APP)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERMATOKEN_")} | {
            "PERMATOKEN_HOME": str(home)
        }
        procs: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
        try:
            for label in ("bare Starlette", "permatoken broker"):
                port = free_port()
                if label == "permatoken broker":
                    cmd = [
                        sys.executable,
                        "-m",
                        "permatoken",
                        "serve",
                        "--no-scheduler",
                        "--port",
                        str(port),
                    ]
                else:
                    cmd = [
                        sys.executable,
                        "-c",
                        f"import sys, uvicorn; sys.argv=['x', {str(work / 'body.json')!r}]; "
                        f"exec(open({str(work / 'bare.py')!r}).read()); "
                        f"uvicorn.run(app, host='127.0.0.1', port={port}, "
                        "log_level='warning', access_log=False)",
                    ]
                proc = subprocess.Popen(
                    cmd, env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
                )
                url = f"http://127.0.0.1:{port}"
                procs[label] = (proc, url)
                wait_up(url + "/healthz" if "broker" in label else url + "/v1/tokens/x", proc)
                load(url, key, 3, args.connections, work)  # warm-up: fills the token and key caches
            # Interleaved rounds, best of each: other load on the machine hits both alike.
            runs: dict[str, list[tuple[float, float]]] = {label: [] for label in procs}
            for _ in range(args.rounds):
                for label, (_, url) in procs.items():
                    runs[label].append(load(url, key, args.duration, args.connections, work))
            results = {
                label: (max(r for r, _ in rs), min(p for _, p in rs)) for label, rs in runs.items()
            }
        finally:
            for proc, _ in procs.values():
                proc.terminate()
            for proc, _ in procs.values():
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
    (bare_rps, bare_p99), (rps, p99) = results["bare Starlette"], results["permatoken broker"]
    print(
        f"\ntoken reads, {args.credentials:,} credentials stored, {HOT_NAMES} read in rotation, "
        f"{args.connections} connections, best of {args.rounds} x {args.duration} s, "
        f"client: {client}"
    )
    print(f"{'':<20}{'requests/s':>12}{'p99 (ms)':>10}")
    print(f"{'bare Starlette':<20}{bare_rps:>12,.0f}{bare_p99:>10.2f}")
    print(f"{'permatoken broker':<20}{rps:>12,.0f}{p99:>10.2f}")
    print(
        f"{'ratio':<20}{rps / bare_rps:>11.2f}x{p99 / bare_p99:>9.2f}x"
        "   (target: >= 0.80x rps, <= 1.25x p99)"
    )


if __name__ == "__main__":
    main()
