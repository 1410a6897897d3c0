"""SDK benchmarks, printed as ratios from one run on this machine (no assertions).

1. Cached token read (``TokenSource.current()``) vs a bare ``dict`` lookup     target <= 5x
2. Cached token read vs an HTTP read from the broker                  target >= 1,000x faster
3. ``WhatsAppClient.send_text`` vs a raw httpx post, fixed token   target >= 0.95x throughput
4. Storm recovery: 1,000 concurrent sends after a revocation vs one renewal
   plus one round of 1,000 sends with a valid token                             target <= 1.5x

Everything runs on loopback: the sandbox in its own process (Meta), ``permatoken serve`` in
another (the broker), a throw-away PERMATOKEN_HOME. Run: ``python bench/bench_client.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from typing import Any

import anyio
import httpx

SANDBOX = """
import json, socket, sys, uvicorn
from permatoken.sandbox import SandboxConfig, SandboxState, create_app
config = SandboxConfig(messages_per_second=10**6, app_calls_per_hour=10**8, pair_burst=10**6)
state = SandboxState(config=config)
# IPPROTO_TCP: asyncio then sets TCP_NODELAY on accepted sockets (else ~40 ms per answer)
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
sock.bind(("127.0.0.1", 0)); sock.listen(4096)
state.graph_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
print(json.dumps({"url": state.graph_url, "fixtures": state.seed()}), flush=True)
config = uvicorn.Config(create_app(state), log_level="warning", lifespan="off")
uvicorn.Server(config).run(sockets=[sock])
"""
NAME = "acme/messaging"
CONNECTIONS = 8


def cli(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "permatoken", *args], capture_output=True, text=True, check=True
    ).stdout


def best(fn: Callable[[], float], rounds: int = 3) -> float:
    return min(fn() for _ in range(rounds))


class Setup:
    """Sandbox + store with a mintable credential + broker + app key."""

    def __init__(self) -> None:
        from permatoken._secret import Secret
        from permatoken.models import NewCredential, VersionMeta
        from permatoken.settings import load_settings
        from permatoken.store import open_store

        self.home = tempfile.mkdtemp(prefix="pt-bench-")
        os.environ["PERMATOKEN_HOME"] = self.home
        self.sandbox = subprocess.Popen([sys.executable, "-c", SANDBOX], stdout=subprocess.PIPE)
        assert self.sandbox.stdout is not None
        info = json.loads(self.sandbox.stdout.readline())
        self.graph = info["url"]
        fx = info["fixtures"]
        os.environ["PERMATOKEN_GRAPH_URL"] = self.graph
        cli("init")
        self.settings = load_settings()
        self.store = open_store(self.settings)
        app = fx["apps"][0]
        self.store.put_app(app["id"], Secret(app["secret"]))
        admin_user = next(u for u in fx["system_users"] if u["name"] == "Sandbox Admin")
        admin = NewCredential(name="acme/admin", issuer="manual", app_id=app["id"])
        self.store.add_credential(
            admin, Secret(fx["tokens"]["system_user"]["value"]), VersionMeta()
        )
        self.http = httpx.Client(base_url=self.graph + "/_sandbox", timeout=30)
        first = self.http.post(
            "/tokens", json={"kind": "system_user", "system_user_id": admin_user["id"]}
        ).json()
        phone = fx["phone_numbers"][0]
        self.phone = phone["id"]
        spec = NewCredential(
            name=NAME,
            issuer="meta-system-mint",
            app_id=app["id"],
            phone_number_id=phone["id"],
            waba_ids=(phone["waba_id"],),
            options={"system_user_id": admin_user["id"], "admin_credential": "acme/admin"},
        )
        self.store.add_credential(spec, Secret(first["value"]), VersionMeta())
        self.key = json.loads(
            cli("keys", "create", "--role", "app", "--grant", "acme/*", "--json")
        )["key"]
        port = self._free_port()
        self.broker_url = f"http://127.0.0.1:{port}"
        self.broker = subprocess.Popen(
            [sys.executable, "-m", "permatoken", "serve", "--port", str(port), "--no-scheduler"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(600):
            try:
                if httpx.get(self.broker_url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)

    @staticmethod
    def _free_port() -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    def mints(self) -> int:
        calls = self.http.get(
            "/calls", params={"endpoint": "POST /{system-user-id}/access_tokens"}
        ).json()["data"]
        return len(calls)

    def close(self) -> None:
        self.broker.terminate()
        self.sandbox.kill()
        self.store.close()
        self.http.close()


def bench_reads(s: Setup) -> list[tuple[str, float, str]]:
    from permatoken.client import TokenSource
    from permatoken.client.broker import BrokerClient

    n = 1_000_000
    table = {NAME: object()}
    with TokenSource.from_broker(s.broker_url, s.key, NAME) as source:
        scope = {"current": source.current, "table": table, "name": NAME}
        t_current = best(lambda: timeit.timeit("current()", globals=scope, number=n)) / n
        t_dict = best(lambda: timeit.timeit("table[name]", globals=scope, number=n)) / n
    broker = BrokerClient(s.broker_url, s.key)
    m = 300
    t_http = best(lambda: timeit.timeit(lambda: broker.get_token(NAME), number=m)) / m
    broker.close()
    return [
        (
            "cached read / dict lookup",
            t_current / t_dict,
            f"<= 5x   ({t_current * 1e9:.0f} ns vs {t_dict * 1e9:.0f} ns)",
        ),
        (
            "HTTP read from broker / cached read",
            t_http / t_current,
            f">= 1000x ({t_http * 1e3:.2f} ms vs {t_current * 1e9:.0f} ns)",
        ),
    ]


def bench_send(s: Setup) -> list[tuple[str, float, str]]:
    from permatoken.client import TokenSource, WhatsAppClient

    m = 300
    body = {
        "messaging_product": "whatsapp",
        "to": "+15550000001",
        "type": "text",
        "text": {"body": "bench"},
    }
    with TokenSource.embedded(NAME, s.settings) as source, WhatsAppClient(source, s.phone) as wa:
        token = source.current().value.reveal()
        with httpx.Client(
            base_url=f"{s.graph}/v25.0", headers={"Authorization": f"Bearer {token}"}
        ) as raw:

            def raw_round() -> float:
                start = time.perf_counter()
                for i in range(m):
                    answer = raw.post(f"/{s.phone}/messages", json=body | {"to": f"+1555{i:07d}"})
                    answer.raise_for_status()
                    answer.json()["messages"][0]["id"]  # what an application needs back
                return time.perf_counter() - start

            def client_round() -> float:
                start = time.perf_counter()
                for i in range(m):
                    wa.send_text(f"+1555{i:07d}", "bench")
                return time.perf_counter() - start

            raw_round(), client_round()  # warm up connections
            pairs = [(raw_round(), client_round()) for _ in range(3)]
    t_raw, t_client = min(p[0] for p in pairs), min(p[1] for p in pairs)
    return [
        (
            "send_text throughput / raw httpx",
            t_raw / t_client,
            f">= 0.95x ({m / t_client:.0f} vs {m / t_raw:.0f} msg/s)",
        )
    ]


async def _storm(tokens: Any, phone: str, count: int, tag: str) -> float:
    from permatoken.client import AsyncWhatsAppClient

    failures = 0
    async with AsyncWhatsAppClient(
        tokens, phone, limits=httpx.Limits(max_connections=CONNECTIONS)
    ) as wa:

        async def one(i: int) -> None:
            nonlocal failures
            try:
                await wa.send_text(f"+1777{i:07d}", f"{tag} {i}")
            except Exception:
                failures += 1

        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for i in range(count):
                tg.start_soon(one, i)
        elapsed = time.perf_counter() - start
    if failures:
        raise SystemExit(f"{failures} sends failed in the {tag} round")
    return elapsed


def bench_storm(s: Setup) -> list[tuple[str, float, str]]:
    from permatoken.client import AsyncTokenSource
    from permatoken.service import build_engine

    async def main() -> tuple[float, float, float]:
        async with AsyncTokenSource.embedded(NAME, s.settings) as tokens:
            await _storm(tokens, s.phone, 200, "warm-up")
            t_round = await _storm(tokens, s.phone, 1000, "valid")
            engine = build_engine(s.settings, s.store)
            start = time.perf_counter()
            engine.rotate(NAME, force=True)
            t_renew = time.perf_counter() - start
            engine.close()
            while tokens.current().version < 2:
                await anyio.sleep(0.01)
            s.http.post("/tokens/revoke", json={"value": tokens.current().value.reveal()})
            mints = s.mints()
            t_storm = await _storm(tokens, s.phone, 1000, "storm")
            assert s.mints() == mints + 1, "the storm made more than one mint"
            return t_round, t_renew, t_storm

    t_round, t_renew, t_storm = anyio.run(main)
    return [
        (
            "storm recovery / (renewal + send round)",
            t_storm / (t_renew + t_round),
            f"<= 1.5x  ({t_storm:.2f} s vs {t_renew:.2f} s + {t_round:.2f} s)",
        )
    ]


def main() -> None:
    s = Setup()
    try:
        rows = bench_reads(s) + bench_send(s) + bench_storm(s)
    finally:
        s.close()
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'ratio':>9}  target (absolute numbers)")
    for label, ratio, note in rows:
        print(f"{label:<{width}}  {ratio:>8.2f}x  {note}")


if __name__ == "__main__":
    main()
