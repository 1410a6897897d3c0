"""One client process of the proxy storm: ``_storm_worker.py BASE_URL PHONE TAG COUNT``.

The key comes from ``PT_KEY``. Prints ``ready``, waits for a line on stdin (sent after the
revocation), sends COUNT messages concurrently (body ``TAG i``) through the proxy with a plain
httpx client, and prints one JSON line: ``{"ok": n, "errors": [...]}``.
"""

from __future__ import annotations

import json
import os
import sys

import anyio
import httpx


async def main(base: str, phone: str, tag: str, count: int) -> None:
    ok, errors = 0, []
    headers = {"Authorization": f"Bearer {os.environ['PT_KEY']}"}
    limits = httpx.Limits(max_connections=8)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=120) as c:
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)

        async def one(i: int) -> None:
            nonlocal ok
            body = {
                "messaging_product": "whatsapp",
                "to": f"+1555{i:07d}",
                "text": {"body": f"{tag} {i}"},
            }
            try:
                r = await c.post(f"/v25.0/{phone}/messages", json=body)
                if r.status_code == 200 and r.json()["messages"][0]["id"]:
                    ok += 1
                else:
                    errors.append(f"{r.status_code} {r.text[:200]}")
            except Exception as exc:
                errors.append(repr(exc))

        async with anyio.create_task_group() as tg:
            for i in range(count):
                tg.start_soon(one, i)
    print(json.dumps({"ok": ok, "errors": errors[:5]}), flush=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
