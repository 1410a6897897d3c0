"""Graph proxy benchmark: the same client sending to the sandbox directly and through the proxy.

Interleaved rounds in one run (direct, proxy, direct, proxy…), so machine noise hits both alike:

1. latency, one request at a time: the proxy's added median and p99       goal: median <= 1 ms
2. throughput, CONCURRENCY requests in flight: proxy / direct               goal: >= 0.8x

Everything on loopback: the sandbox in its own process (Meta, limits lifted), ``permatoken
serve`` in another (pacing off: it would cap sends at 68/s by design), the client here. On a
machine with few cores the three processes compete for them, so the throughput ratio measures
the machine as much as the proxy: compare runs on the same machine only.
Run: ``python bench/bench_proxy.py``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import anyio
import httpx

sys.path.insert(0, str(Path(__file__).parent))
os.environ["PERMATOKEN_PROXY__MESSAGES_PER_SECOND"] = "0"

from bench_client import NAME, Setup

ROUNDS = 3
SEQUENTIAL = 200
CONCURRENCY = 16
CONCURRENT = 600


def body(i: int) -> dict[str, object]:
    return {"messaging_product": "whatsapp", "to": f"+1555{i:07d}", "text": {"body": "bench"}}


def latencies(client: httpx.Client, phone: str) -> list[float]:
    out = []
    for i in range(SEQUENTIAL):
        start = time.perf_counter()
        answer = client.post(f"/v25.0/{phone}/messages", json=body(i))
        answer.raise_for_status()
        answer.json()["messages"][0]["id"]
        out.append(time.perf_counter() - start)
    return out


async def throughput(base: str, auth: str, phone: str) -> float:
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": auth}, limits=limits, timeout=60
    ) as client:
        await client.post(f"/v25.0/{phone}/messages", json=body(0))  # connections warm
        sem = anyio.Semaphore(CONCURRENCY)

        async def one(i: int) -> None:
            async with sem:
                answer = await client.post(f"/v25.0/{phone}/messages", json=body(i))
                answer.raise_for_status()

        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for i in range(CONCURRENT):
                tg.start_soon(one, i)
        return CONCURRENT / (time.perf_counter() - start)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def main() -> None:
    s = Setup()
    try:
        token = s.store.reveal(NAME).reveal()
        direct_url, direct_auth = s.graph, f"Bearer {token}"
        proxy_url, proxy_auth = f"{s.broker_url}/graph/{NAME}/-", f"Bearer {s.key}"
        lat: dict[str, list[float]] = {"direct": [], "proxy": []}
        rate: dict[str, list[float]] = {"direct": [], "proxy": []}
        cpu = {"proxy": 0.0}  # CPU seconds of the serve process during the proxied rounds
        for i in range(ROUNDS + 1):  # the first round warms up and is not counted
            # Fresh clients each round: a connection idle through the other rounds may be closing.
            with (
                httpx.Client(base_url=direct_url, headers={"Authorization": direct_auth}) as d,
                httpx.Client(base_url=proxy_url, headers={"Authorization": proxy_auth}) as p,
            ):
                direct_lat = latencies(d, s.phone)
                before = cpu_seconds(s.broker.pid)
                one = direct_lat, latencies(p, s.phone)
                cpu["proxy"] += cpu_seconds(s.broker.pid) - before if i else 0.0
            direct_rate = anyio.run(throughput, direct_url, direct_auth, s.phone)
            before = cpu_seconds(s.broker.pid)
            two = direct_rate, anyio.run(throughput, proxy_url, proxy_auth, s.phone)
            cpu["proxy"] += cpu_seconds(s.broker.pid) - before if i else 0.0
            if i:
                lat["direct"] += one[0]
                lat["proxy"] += one[1]
                rate["direct"].append(two[0])
                rate["proxy"].append(two[1])
        assert s.mints() == 0
    finally:
        s.close()
    med = {k: statistics.median(v) for k, v in lat.items()}
    tail = {k: p99(v) for k, v in lat.items()}
    best = {k: max(v) for k, v in rate.items()}
    ratio = best["proxy"] / best["direct"]
    cores = os.cpu_count()
    print(f"Graph proxy vs direct to the sandbox ({cores} cores; {ROUNDS} interleaved rounds)")
    print(
        f"  latency, sequential:   direct median {med['direct'] * 1e3:.2f} ms, "
        f"p99 {tail['direct'] * 1e3:.2f} ms; proxy median {med['proxy'] * 1e3:.2f} ms, "
        f"p99 {tail['proxy'] * 1e3:.2f} ms"
    )
    print(
        f"  added latency:         median {(med['proxy'] - med['direct']) * 1e3:+.2f} ms "
        f"(goal <= 1 ms), p99 {(tail['proxy'] - tail['direct']) * 1e3:+.2f} ms"
    )
    per_request = cpu["proxy"] / (ROUNDS * (SEQUENTIAL + CONCURRENT + 1))
    print(
        f"  proxy CPU per request: {per_request * 1e6:.0f} us (the serve process, all its work; "
        "the figure least disturbed by other load)"
    )
    print(
        f"  throughput, {CONCURRENCY} in flight: direct {best['direct']:.0f} msg/s, "
        f"proxy {best['proxy']:.0f} msg/s, ratio {ratio:.2f}x (goal >= 0.8x)"
    )


if __name__ == "__main__":
    main()
