"""The keys a running process holds: a :class:`~permatoken.crypto.Keyring` that follows its key file."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ._exceptions import CryptoError
from ._secret import Secret
from .crypto import RESTORE_HINT, Keyring, Sealed

log = logging.getLogger(__name__)


def _signature(path: Path | None) -> tuple[int, int, int, int] | None:
    """What identifies one version of the key file: device, inode, size, mtime (None if absent)."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class LiveKeyring:
    """The keys a running process uses: a :class:`Keyring` that follows its key file.

    ``keys rotate`` (in another process) appends a key to the file and re-wraps data keys under
    it, then ``--prune`` removes keys no row uses. A running process must therefore unwrap data
    keys wrapped by a key it never loaded, and must seal new values under the newest key, or the
    prune would remove a key it still seals with. So:

    - every seal first checks the file's identity (one ``stat``: seals are rare) and re-reads
      the file when it changed;
    - an unwrap that meets a KEK id not loaded re-reads the file (when it changed, and otherwise
      at most once every ``reread_every`` seconds, for an edit that kept size and mtime);
    - each operation works on one immutable :class:`Keyring`, so a reload never mixes two key
      sets within one wrap;
    - a re-read that fails (a half-edited or deleted file) is logged once and changes nothing;
      one that succeeds decides the keys for sealing, while unwraps may still use every key
      loaded before: a running process never loses a key it could read with (a botched edit
      of the key file does not stop reads, and the seal check refuses a stranger key).

    ``PERMATOKEN_KEY`` cannot change under a running process (restart it). ``verify``, given by
    :func:`permatoken.store.open_store`, proves a key set opens the data already stored before
    the first value is sealed under it (again after a reload, and every ``verify_every`` s).
    """

    def __init__(
        self,
        load: Callable[[], Keyring],
        *,
        source: str,
        path: Path | None = None,
        verify: Callable[[Keyring], None] | None = None,
        verify_every: float = 30.0,
        reread_every: float = 1.0,
    ) -> None:
        self.source = source
        self.reread_every = reread_every
        self.verify_every = verify_every
        self._load = load
        self._path = path
        self._verify = verify
        self._lock = threading.Lock()
        # Identity first, then content: a change in between is seen (and re-read) next time.
        self._signature = _signature(path)
        self._ring = load()
        self._reading = self._ring  # every key loaded so far, for unwrapping
        self._reread_at = time.monotonic()
        self._verified: tuple[Keyring, float] | None = None
        self._failure: str | None = None

    @classmethod
    def fixed(cls, ring: Keyring) -> LiveKeyring:
        """Exactly these keys, never re-read (a restore, a test)."""
        return cls(lambda: ring, source=ring.source)

    def __repr__(self) -> str:
        ring = self._ring
        return f"LiveKeyring(source={self.source!r}, ids={ring.ids}, active={ring.active_id!r})"

    # -- the key set now -----------------------------------------------------------------
    def current(self) -> Keyring:
        """The key set now: re-read first if the key file changed since it was read."""
        if self._path is not None and _signature(self._path) != self._signature:
            return self._reload(force=False)
        return self._ring

    def refresh(self) -> Keyring:
        """Re-read the key file now, changed or not (``keys rotate`` after writing it)."""
        return self._reload(force=True) if self._path is not None else self._ring

    @property
    def active_id(self) -> str:
        return self.current().active_id

    @property
    def ids(self) -> list[str]:
        return self.current().ids

    def __contains__(self, kek_id: object) -> bool:
        return kek_id in self.current()

    def _reload(self, *, force: bool) -> Keyring:
        with self._lock:
            signature = _signature(self._path)
            if signature == self._signature and not force:
                return self._ring  # another thread re-read it meanwhile
            self._reread_at = time.monotonic()
            old = self._ring
            try:
                ring = self._load()
            except CryptoError as exc:
                if exc.message != self._failure:
                    log.error(
                        "could not re-read the keys (%s); still using the %d key(s) loaded, "
                        "active %s",
                        exc.message,
                        len(old.ids),
                        old.active_id,
                    )
                    self._failure = exc.message
                self._signature = signature
                return old
            self._failure = None
            self._signature = signature
            self._reading = ring.including(self._reading)
            self._ring = ring
            if ring.ids != old.ids:
                log.info(
                    "re-read the keys from %s: %d key(s), active %s",
                    self.source,
                    len(ring.ids),
                    ring.active_id,
                )
            return ring

    def _holding(self, kek_id: str) -> Keyring:
        """The key set holding ``kek_id``, re-read if need be (another process may have added
        it); CryptoError naming where the keys came from if it is still missing."""
        if kek_id in self._reading:
            return self._reading
        if self._path is not None:
            self.current()
            if (
                kek_id not in self._reading
                and time.monotonic() - self._reread_at >= self.reread_every
            ):
                self._reload(force=True)
            if kek_id in self._reading:
                return self._reading
        where = (
            f"key file {self.source}"
            if self._path is not None
            else "PERMATOKEN_KEY, which wins over any key file"
        )
        raise CryptoError(
            f"data key is wrapped by {kek_id}, which is not loaded (keys from {where})",
            hint=RESTORE_HINT,
            kek_id=kek_id,
        )

    def _check(self, ring: Keyring) -> None:
        if self._verify is None:
            return
        done = self._verified
        if done is not None and done[0] is ring and time.monotonic() - done[1] < self.verify_every:
            return
        self._verify(ring)
        self._verified = (ring, time.monotonic())

    def prepare(self) -> None:
        """Run the seal check now if it is due, outside any transaction (the store calls this
        before each write): the check reads the database on a connection of its own, which a
        seal inside a busy transaction would otherwise have to wait for. A failure is left
        for the seal to raise; writes that seal nothing go ahead."""
        try:
            self._check(self.current())
        except CryptoError:
            pass

    # -- operations, each on one key set ------------------------------------------------
    def seal(self, plaintext: bytes, aad: bytes) -> Sealed:
        ring = self.current()
        self._check(ring)
        return ring.seal(plaintext, aad)

    def open(self, sealed: Sealed, aad: bytes) -> bytes:
        return self._holding(sealed.kek_id).open(sealed, aad)

    def wrap(self, dek: bytes) -> tuple[str, bytes]:
        return self.current().wrap(dek)

    def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        return self._holding(kek_id).unwrap(kek_id, wrapped)

    def rewrap(self, sealed: Sealed) -> Sealed:
        ring = self.current()
        if sealed.kek_id not in ring:
            ring = self._holding(sealed.kek_id)
        return ring.rewrap(sealed)


def load_live_keyring(
    key: Secret | None,
    key_file: Path,
    *,
    verify: Callable[[Keyring], None] | None = None,
    kms_key_id: str | None = None,
    kms_cache_seconds: float = 300.0,
) -> LiveKeyring:
    """The keys of a store: an AWS KMS key (fixed, with any local keys to read with),
    ``PERMATOKEN_KEY`` (fixed; it wins over the key file when both are set) or the key file,
    followed while the process runs."""
    if kms_key_id:
        from .crypto import load_keyring

        ring = load_keyring(
            key, key_file, kms_key_id=kms_key_id, kms_cache_seconds=kms_cache_seconds
        )
        return LiveKeyring(lambda: ring, source=ring.source, verify=verify)
    if key is not None:
        ring = Keyring.from_env_value(key)
        return LiveKeyring(lambda: ring, source=ring.source, verify=verify)
    return LiveKeyring(
        lambda: Keyring.from_file(key_file), source=str(key_file), path=key_file, verify=verify
    )


__all__ = ["LiveKeyring", "load_live_keyring"]
