"""Secrets as a type, and a logging filter that keeps them out of every log line."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from typing import Any, Final

_MASK: Final = "**********"


class Secret:
    """A secret string whose ``repr`` and ``str`` never show the value.

    Use :meth:`reveal` at the one place the value must leave the process (an HTTP header, the
    encryption call). Equality is by value so that tests and de-duplication work; hashing is
    disabled so secrets do not end up as dictionary keys by accident.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value

    def reveal(self) -> str:
        return self._value

    @property
    def fingerprint(self) -> str:
        """A short, non-reversible identifier safe to log and display."""
        return fingerprint(self._value)

    def masked(self) -> str:
        """A hint of the value's shape: the first 4 characters and the fingerprint."""
        head = self._value[:4] if len(self._value) >= 16 else ""
        return f"{head}…{self.fingerprint}"

    def __repr__(self) -> str:
        return f"Secret('{_MASK}')"

    def __str__(self) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        import hmac

        if isinstance(other, Secret):
            return hmac.compare_digest(self._value.encode(), other._value.encode())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("Secrets are not picklable")


def fingerprint(value: str) -> str:
    """``sha256:`` and 12 hex characters of the value's SHA-256: enough to tell tokens apart."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:12]


class RedactingFilter(logging.Filter):
    """Redacts known secret values, ``Authorization`` headers and token-shaped strings.

    Known secrets are registered with :func:`register_secret` whenever a value is decrypted or
    received; the filter replaces them wherever they appear in a formatted record.
    """

    _AUTH = re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(bearer|basic)?\s*[^\s'\",}]+")
    _QUERY = re.compile(
        r"(?i)((?:access_token|input_token|fb_exchange_token|client_secret|revoke_token|"
        r"appsecret_proof|refresh_token|password|code)=)[^&\s'\"]+"
    )
    # Meta tokens start with EAA and are long; API keys start with pt_.
    _SHAPES = re.compile(r"\b(EAA[A-Za-z0-9]{20,}|pt_[A-Za-z0-9_\-]{20,})")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


# Known secrets are kept in a set and found by scanning for token-like runs of characters,
# so redaction costs O(length of the text) whatever the number of secrets (a broker may hold
# 100,000 tokens; one regex alternation of all of them would be rebuilt on every new value).
_known: set[str] = set()
_known_lock = threading.Lock()
_MAX_KNOWN = 500_000
_CANDIDATE = re.compile(r"[A-Za-z0-9_\-.~+/]{8,}={0,2}")
#: Secrets with characters outside the candidate set (passwords, mostly); replaced directly.
_odd: list[str] = []


def register_secret(value: str | Secret) -> None:
    """Remember a secret so log redaction can remove it wherever it appears."""
    raw = value.reveal() if isinstance(value, Secret) else value
    if len(raw) < 8 or raw in _known:
        return
    with _known_lock:
        if len(_known) >= _MAX_KNOWN:
            _known.clear()  # bounded memory; shape-based redaction still applies
            _odd.clear()
        _known.add(raw)
        if not _CANDIDATE.fullmatch(raw):
            _odd.append(raw)


def _mask_known(text: str) -> str:
    if not _known:
        return text

    def sub(m: re.Match[str]) -> str:
        run = m.group(0)
        if run in _known or run.rstrip("=") in _known:
            return _MASK
        return run

    text = _CANDIDATE.sub(sub, text)
    for odd in list(_odd):
        if odd in text:
            text = text.replace(odd, _MASK)
    return text


def redact(text: str) -> str:
    """Return ``text`` with every known secret and secret-shaped substring masked."""
    text = _mask_known(text)
    text = RedactingFilter._AUTH.sub(lambda m: m.group(1) + (m.group(2) or "") + " " + _MASK, text)
    text = RedactingFilter._QUERY.sub(lambda m: m.group(1) + _MASK, text)
    return RedactingFilter._SHAPES.sub(_MASK, text)


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Attach the redacting filter to every handler of ``logger`` (root by default)."""
    target = logger or logging.getLogger()
    flt = RedactingFilter()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(flt)
    if not any(isinstance(f, RedactingFilter) for f in target.filters):
        target.addFilter(flt)
