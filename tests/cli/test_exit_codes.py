"""``cli.exit_codes``: the one table from error family to exit code (pure)."""

from __future__ import annotations

import pytest

import permatoken.cli as cli
from permatoken._exceptions import (
    GraphError,
    InvalidNameError,
    PermatokenError,
    StoreUnavailableError,
    UpstreamUnreachableError,
    WrongPassphraseError,
)
from permatoken.cli import exit_codes
from permatoken.meta import classify_graph_error

INFO = classify_graph_error(502, {}, None)


def test_no_entry_is_hidden_behind_an_earlier_more_general_one() -> None:
    """Most specific first: a subclass listed after its base would never get its own code."""
    table = exit_codes.EXIT_CODES
    for i, (cls, _) in enumerate(table):
        for earlier, _ in table[:i]:
            assert not issubclass(cls, earlier), f"{cls.__name__} is shadowed by {earlier.__name__}"


def test_every_code_is_distinct_and_none_is_reserved() -> None:
    """0 (success), 1 (other errors), 70 (a bug) and 130 (Ctrl-C) are never a family's code."""
    codes = [code for _, code in exit_codes.EXIT_CODES]
    assert len(codes) == len(set(codes))
    assert not {0, 1, exit_codes.INTERNAL_ERROR, exit_codes.INTERRUPTED} & set(codes)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (InvalidNameError("bad name"), 2),  # an InputError
        (StoreUnavailableError("down"), 5),  # a StoreError, two levels down
        (UpstreamUnreachableError("no answer", error=INFO), 12),  # before its base GraphError
        (GraphError("190", error=INFO), 8),
        (WrongPassphraseError("no"), 14),  # a BackupError
        (PermatokenError("anything else"), 1),
    ],
)
def test_an_error_gets_the_code_of_its_nearest_listed_family(
    exc: PermatokenError, code: int
) -> None:
    assert exit_codes.exit_code_for(exc) == code


def test_the_package_re_exports_the_same_table() -> None:
    """`from permatoken.cli import EXIT_CODES, exit_code_for` keeps working after the move."""
    assert cli.EXIT_CODES is exit_codes.EXIT_CODES
    assert cli.exit_code_for is exit_codes.exit_code_for
    assert (cli.INTERRUPTED, cli.INTERNAL_ERROR) == (130, 70)
