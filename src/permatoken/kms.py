"""AWS KMS as the key-encryption key (``PERMATOKEN_KMS_KEY_ID``: key id, ARN or alias).

Data keys are wrapped by KMS ``Encrypt`` and unwrapped by ``Decrypt``; the key material never
leaves KMS and no key file exists. The KEK id stored next to each wrapped data key is
``kms:{key ARN}``, so a store knows which KMS key to ask even after the setting changed (moving
back to a key file re-wraps with ``keys rotate``, which still reads the ``kms:`` rows).

Every call carries the encryption context ``{"permatoken": "data-key/v1", "kek_id": …}``: a
wrapped data key copied from another system, or under another KEK id, does not decrypt, and AWS
CloudTrail shows which KEK each call served.

Unwrapped data keys are cached in memory for ``kms_cache_seconds`` (default 300 s) counted from
the KMS answer, never extended by use, at most :data:`MAX_CACHED` of them: a KMS outage leaves
reads working for data keys unwrapped in the last five minutes, and fails the others with
:class:`~permatoken.KmsUnavailableError` naming KMS. New values are sealed only while KMS
answers (a rotation then fails and is retried like any upstream failure).

Permissions: ``kms:Encrypt``, ``kms:Decrypt`` on the key, and ``kms:DescribeKey`` when the
setting is an alias or a bare key id (resolved once to the key's ARN).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from . import aws
from ._exceptions import DecryptionError, KmsUnavailableError, PermatokenError

PREFIX = "kms:"
MAX_CACHED = 50_000
_CONTEXT = "data-key/v1"


def is_kms_id(kek_id: str) -> bool:
    return kek_id.startswith(PREFIX)


def _is_key_arn(ref: str) -> bool:
    return ref.startswith("arn:") and ":key/" in ref


class DataKeyCache:
    """Unwrapped data keys by wrapped blob, each for ``ttl`` seconds from when KMS gave it."""

    def __init__(
        self, ttl: float, *, size: int = MAX_CACHED, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.size = size
        self._now = now
        self._items: OrderedDict[bytes, tuple[bytes, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DataKeyCache(ttl={self.ttl:g}s, {len(self._items)} keys)"

    def get(self, wrapped: bytes) -> bytes | None:
        with self._lock:
            found = self._items.get(wrapped)
            if found is None:
                return None
            if self._now() >= found[1]:
                del self._items[wrapped]
                return None
            self._items.move_to_end(wrapped)
            return found[0]

    def put(self, wrapped: bytes, dek: bytes) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._items[wrapped] = (dek, self._now() + self.ttl)
            self._items.move_to_end(wrapped)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


class KmsKek:
    """One KMS key acting as a KEK: wrap, unwrap (cached), and its ``kms:{ARN}`` id."""

    def __init__(self, key_ref: str, *, cache_seconds: float = 300.0, client: Any = None) -> None:
        self.key_ref = key_ref
        self.cache = DataKeyCache(cache_seconds)
        self._client = client
        self._arn = key_ref if _is_key_arn(key_ref) else None

    def __repr__(self) -> str:
        return f"KmsKek({self.key_ref!r})"

    def _kms(self) -> Any:
        if self._client is None:
            self._client = aws.client("kms")
        return self._client

    @property
    def arn(self) -> str:
        """The key's ARN (an alias or key id is resolved once with ``DescribeKey``)."""
        if self._arn is None:
            got = self._call("resolve", lambda kms: kms.describe_key(KeyId=self.key_ref))
            self._arn = str(got["KeyMetadata"]["Arn"])
        return self._arn

    @property
    def id(self) -> str:
        return PREFIX + self.arn

    def _context(self, kek_id: str) -> dict[str, str]:
        return {"permatoken": _CONTEXT, "kek_id": kek_id}

    def wrap(self, dek: bytes) -> tuple[str, bytes]:
        kek_id = self.id
        got = self._call(
            "wrap a data key with",
            lambda kms: kms.encrypt(
                KeyId=self.arn, Plaintext=dek, EncryptionContext=self._context(kek_id)
            ),
        )
        wrapped = bytes(got["CiphertextBlob"])
        self.cache.put(wrapped, dek)
        return kek_id, wrapped

    def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        dek = self.cache.get(wrapped)
        if dek is not None:
            return dek
        got = self._call(
            "unwrap a data key with",
            lambda kms: kms.decrypt(
                KeyId=kek_id.removeprefix(PREFIX),
                CiphertextBlob=wrapped,
                EncryptionContext=self._context(kek_id),
            ),
            kek_id=kek_id,
        )
        dek = bytes(got["Plaintext"])
        self.cache.put(wrapped, dek)
        return dek

    def _call(self, what: str, call: Callable[[Any], Any], *, kek_id: str | None = None) -> Any:
        key = (kek_id or "").removeprefix(PREFIX) or self.key_ref
        try:
            return call(self._kms())
        except PermatokenError as exc:  # boto3 missing, no region: a config problem
            raise KmsUnavailableError(
                f"AWS KMS: cannot {what} key {key}: {exc.message}", hint=exc.hint, key_id=key
            ) from exc
        except Exception as exc:
            failure = aws.classify(exc)
            if failure is None:
                raise
            if failure.code == "InvalidCiphertextException":
                raise DecryptionError(
                    f"AWS KMS refused the wrapped data key under {key} (damaged, or not wrapped "
                    "for this store)",
                    kek_id=kek_id,
                ) from None
            hint = aws.config_hint(failure)
            if failure.kind == "unreachable":
                hint += "; data keys unwrapped in the last kms_cache_seconds keep serving reads"
            raise KmsUnavailableError(
                f"AWS KMS: cannot {what} key {key}: {failure.message}",
                hint=hint,
                key_id=key,
                reason=failure.kind,
            ) from None


_readers: dict[str, KmsKek] = {}
_readers_lock = threading.Lock()


def reader(kek_id: str, *, cache_seconds: float = 300.0) -> KmsKek:
    """A process-wide KmsKek for a ``kms:{ARN}`` id met in the data (for unwrapping only)."""
    arn = kek_id.removeprefix(PREFIX)
    with _readers_lock:
        found = _readers.get(arn)
        if found is None:
            found = _readers[arn] = KmsKek(arn, cache_seconds=cache_seconds)
        return found


def forget_readers() -> None:
    """Drop every cached reader and data key (tests; a changed AWS environment)."""
    with _readers_lock:
        _readers.clear()


__all__ = [
    "MAX_CACHED",
    "PREFIX",
    "DataKeyCache",
    "KmsKek",
    "forget_readers",
    "is_kms_id",
    "reader",
]
