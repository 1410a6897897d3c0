"""One process of the multi-process storm: ``_storm_worker.py BROKER_URL NAME PHONE TAG COUNT``.

Reads the API key from ``PERMATOKEN_API_KEY``, loads the token, prints ``ready``, waits for a
line on stdin (the go signal, sent after the revocation), sends COUNT messages concurrently
(body ``TAG i``) and prints one JSON line: ``{"ok": n, "errors": [...], "version": v}``.
"""

from __future__ import annotations

import json
import os
import sys

import anyio
import httpx

from permatoken.client import AsyncTokenSource, AsyncWhatsAppClient


async def main(url: str, name: str, phone: str, tag: str, count: int) -> None:
    ok, errors = 0, []
    async with AsyncTokenSource.from_broker(url, os.environ["PERMATOKEN_API_KEY"], name) as tokens:
        async with AsyncWhatsAppClient(tokens, phone, limits=httpx.Limits(max_connections=8)) as wa:
            print("ready", flush=True)
            await anyio.to_thread.run_sync(sys.stdin.readline)

            async def one(i: int) -> None:
                nonlocal ok
                try:
                    await wa.send_text(f"+1555{i:07d}", f"{tag} {i}")
                    ok += 1
                except Exception as exc:
                    errors.append(repr(exc))

            async with anyio.create_task_group() as tg:
                for i in range(count):
                    tg.start_soon(one, i)
        print(
            json.dumps({"ok": ok, "errors": errors[:5], "version": tokens.current().version}),
            flush=True,
        )


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
