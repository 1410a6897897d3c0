"""What an issuer hands back is untrusted until checked; nothing is stored before it is.

Meta, an OAuth2 server or a BSP login endpoint can answer anything: a 100 KB "token", one with
a newline inside, the current token again, another tenant's token, an expiry in year 1. Stored
as ``pending``, such a value used to crash verification (the URL is too long), then every later
rotation of that credential, then the start-up of ``serve`` for every tenant. So the engine
calls :func:`check_obtained` between the issuer's answer and ``add_pending``:

- every value (the token, companion secrets, rotated refresh tokens) passes
  :func:`~permatoken.models.token_value_problem` (size, printable ASCII, no whitespace);
- the expiry, when the issuer gave one, is a plausible instant after ``now``;
- the token is not a value some credential already holds: ``in_use`` answers that by
  fingerprint first and decrypts only the few rows whose fingerprint matches.

A refusal is a :class:`~permatoken._exceptions.RotationError` with ``reason="upstream"``: a failed
attempt (health ``failing``, retried with back-off), never a dead token. Its message names the
field and the problem, never the value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from .._exceptions import RotationError
from .._secret import Secret
from ..models import check_instant, token_problem_sentence, token_value_problem
from .base import Obtained

__all__ = ["check_obtained"]

#: ``in_use(value)`` → who already holds it (``"acme/x version 3"``), or None.
InUse = Callable[[Secret], str | None]


def _refuse(name: str, what: str) -> RotationError:
    return RotationError(
        f"{name}: the new value is refused: {what}; the current version is kept",
        hint=f"it is retried with back-off; `permatoken status {name}` shows the next attempt",
        name=name,
        reason="upstream",
    )


def check_obtained(name: str, obtained: Obtained, *, now: datetime, in_use: InUse) -> None:
    """Raise :class:`RotationError` if ``obtained`` must not be stored (see the module docs)."""
    values: list[tuple[str, Secret]] = [("the token", obtained.token)]
    values += [(f"companion {key!r}", v) for key, v in obtained.companions.items()]
    values += [(f"secret {key!r}", v) for key, v in obtained.secret_updates.items()]
    for what, secret in values:
        if not isinstance(secret, Secret):
            raise _refuse(name, f"{what} is not a secret value")
        problem = token_value_problem(secret.reveal())
        if problem is not None:
            raise _refuse(name, token_problem_sentence(what, problem))
    if obtained.expires_at is not None:
        try:
            check_instant(obtained.expires_at, "its expiry")
        except ValueError as exc:
            raise _refuse(name, str(exc)) from None
        if obtained.expires_at <= now:
            raise _refuse(name, "the new token is already expired")
    holder = in_use(obtained.token)
    if holder is not None:
        raise _refuse(name, f"the new token is the value {holder} already holds")
