"""``meta.error_codes``: Meta's vocabulary as data; the tables must stay complete and disjoint.

tests/meta/test_errors.py proves the classification on real bodies; these prove the tables it
reads cannot disagree with each other, so a new code added to one of them has one meaning.
"""

from __future__ import annotations

import pytest

from permatoken.meta import error_codes as c
from permatoken.meta import errors
from permatoken.meta.error_codes import ErrorKind, TokenDeath


def test_every_death_has_a_reason_and_advice() -> None:
    """A death without a sentence would raise KeyError in the middle of a notice."""
    assert set(c.DEATH_REASONS) == set(TokenDeath) == set(c.DEATH_ADVICE)
    assert all(text.strip() for text in [*c.DEATH_REASONS.values(), *c.DEATH_ADVICE.values()])


@pytest.mark.parametrize("kind", [k for k in ErrorKind if k is not ErrorKind.TOKEN_DEAD])
def test_every_kind_but_a_dead_token_has_its_own_advice(kind: ErrorKind) -> None:
    """A dead token's advice comes from its death; every other kind has a sentence of its own."""
    assert c.advice_for(kind, None, "no particular message").strip()


def test_no_code_has_two_meanings() -> None:
    """Dead, throttled, transient, permission and bad-request codes never overlap."""
    groups = {
        "dead": set(c.DEAD_CODES),
        "throttled": set(c.THROTTLE_HINTS),
        "transient": set(c.TRANSIENT_HINTS),
        "permission": set(c.PERMISSION_CODES),
        "bad_request": set(c.BAD_REQUEST_CODES),
        "pair": {c.PAIR_RATE_LIMITED_CODE},
    }
    names = sorted(groups)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not groups[a] & groups[b], (a, b, groups[a] & groups[b])


def test_a_known_subcode_wins_over_the_message_and_the_message_over_nothing() -> None:
    assert c.death_for(463, "user logged out", 190) is TokenDeath.EXPIRED
    assert c.death_for(None, "The user has logged out.", 190) is TokenDeath.LOGGED_OUT
    assert c.death_for(None, "Invalid OAuth access token.", 190) is TokenDeath.INVALIDATED
    assert c.death_for(None, "Invalid OAuth access token.", 102) is TokenDeath.UNKNOWN
    assert c.death_for(999, "", None) is TokenDeath.UNKNOWN


def test_the_old_import_paths_still_work() -> None:
    """ErrorKind, TokenDeath and the death texts moved here; meta.errors re-exports them."""
    assert errors.ErrorKind is ErrorKind and errors.TokenDeath is TokenDeath
    assert errors.DEATH_ADVICE is c.DEATH_ADVICE and errors.DEATH_REASONS is c.DEATH_REASONS
