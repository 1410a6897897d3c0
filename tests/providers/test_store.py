"""The providers' tables under key rotation and backups, on both engines."""

from __future__ import annotations

import pytest

from permatoken._secret import Secret
from permatoken.crypto import generate_key, kek_id_of, read_key_file_keys, write_key_file
from permatoken.settings import Settings
from permatoken.store import Store, open_store
from permatoken.store.providers import Onboardings, code_hash


@pytest.mark.parametrize(
    "store_url",
    ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
    indirect=True,
)
def test_a_staged_business_token_survives_key_rotation(settings: Settings, store: Store) -> None:
    """``keys rotate`` re-wraps staged Embedded Signup tokens too: with only the new key left,
    the staged token still opens (a resumed onboarding would otherwise lose it)."""
    code, token = Secret("AQcode-for-rotation"), Secret("EAAstaged" + "s" * 40)
    Onboardings(store).stage(code_hash(code), token, tenant="acme", name=None, app_id="123")
    keys = read_key_file_keys(settings.resolved_key_file)
    new = generate_key()
    write_key_file(settings.resolved_key_file, [*keys, new])
    rotated = open_store(settings)
    try:
        assert rotated.rewrap() == 1
        assert rotated.kek_usage() == {kek_id_of(new): 1}
    finally:
        rotated.close()
    write_key_file(settings.resolved_key_file, [new])
    only_new = open_store(settings)
    try:
        row = Onboardings(only_new).get(code_hash(code))
        assert row is not None and Onboardings(only_new).token(row) == token
        assert row["code_hash"] != code.reveal() and code.reveal() not in str(row)
    finally:
        only_new.close()
