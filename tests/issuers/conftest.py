"""The issuer tests reuse the renewal tests' live sandbox and credential fixtures.

Issuers do not touch the database beyond what every store test covers, so they run on SQLite
only (the crash and concurrency tests in tests/rotation run on both databases).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rotation.conftest import add, engine, live_sandbox, sandbox, world  # noqa: F401


@pytest.fixture
def store_url(home: Path) -> Iterator[str]:
    yield f"sqlite:///{home / 'permatoken.db'}"
