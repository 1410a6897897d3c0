"""Unwrapping data keys under AWS KMS, side by side with a local key file, in one run.

Starts a real ``moto_server`` on a free loopback port (the stand-in for KMS), wraps ``--keys``
data keys under a KMS key and under a local key, then times unwrapping all of them:

- local key file (AES-GCM in process): the baseline;
- KMS, uncached (``kms_cache_seconds = 0``): one ``Decrypt`` round trip each;
- KMS, cached (what a running ``serve`` does for ``kms_cache_seconds``): a dictionary look-up.

Prints microseconds per unwrap and ratios to the baseline. moto answers on loopback, so real KMS
(a network round trip, ~2-10 ms) makes the uncached ratio larger still, and the cache matters more.

    python bench/bench_kms.py [--keys 300]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    exe = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/moto-api/", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("moto_server did not start")


def per_unwrap(unwrap: Callable[[str, bytes], bytes], kek_id: str, blobs: list[bytes]) -> float:
    start = time.perf_counter()
    for blob in blobs:
        unwrap(kek_id, blob)
    return (time.perf_counter() - start) / len(blobs) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=300)
    args = parser.parse_args()
    proc, url = start_moto()
    try:
        os.environ.update(
            AWS_ENDPOINT_URL=url,
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        )
        import boto3

        from permatoken.crypto import Keyring, generate_key
        from permatoken.kms import KmsKek

        arn = boto3.client("kms").create_key()["KeyMetadata"]["Arn"]
        deks = [os.urandom(32) for _ in range(args.keys)]
        local = Keyring([generate_key()], source="bench")
        local_blobs = [local.wrap(d)[1] for d in deks]
        uncached = KmsKek(arn, cache_seconds=0)
        kms_id = uncached.id
        kms_blobs = [uncached.wrap(d)[1] for d in deks]
        cached = KmsKek(arn, cache_seconds=300)
        per_unwrap(cached.unwrap, kms_id, kms_blobs)  # first pass fills the cache

        base = per_unwrap(local.unwrap, local.active_id, local_blobs)
        rows = [
            ("local key file (baseline)", base),
            ("KMS Decrypt, uncached", per_unwrap(uncached.unwrap, kms_id, kms_blobs)),
            ("KMS, cached data key", per_unwrap(cached.unwrap, kms_id, kms_blobs)),
        ]
        print(f"unwrapping {args.keys} data keys (moto on loopback as KMS)")
        for label, micros in rows:
            print(f"  {label:28} {micros:10.1f} us/unwrap   x{micros / base:8.1f}")
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    main()
