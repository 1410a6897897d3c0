"""Rows and records without a database: input checks, row mapping, and the associated data that
binds each sealed value to its row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from permatoken._exceptions import InputError
from permatoken.models import Health, VersionMeta, VersionState
from permatoken.store.records import (
    aad_app,
    aad_secret,
    aad_version,
    app_record,
    check_id,
    check_purpose,
    credential_record,
    meta_values,
    version_record,
)

WHEN = datetime(2027, 1, 31, 12, 0, tzinfo=UTC)


def test_the_associated_data_never_changes() -> None:
    """Every stored value was sealed with these exact bytes: a change would make all unreadable."""
    assert aad_version(7, 3) == b"permatoken/v1/credential:7/version:3"
    assert aad_secret(7, "refresh_token") == b"permatoken/v1/credential:7/secret:refresh_token"
    assert aad_app("1234") == b"permatoken/v1/app:1234"


def test_the_associated_data_tells_rows_apart() -> None:
    """Another credential, version, secret name or app gives other associated data."""
    bound = {
        aad_version(1, 1),
        aad_version(1, 2),
        aad_version(2, 1),
        aad_secret(1, "a"),
        aad_secret(1, "b"),
        aad_secret(2, "a"),
        aad_app("1"),
        aad_app("2"),
    }
    assert len(bound) == 8


@pytest.mark.parametrize("value", ["1", "123456789012345", "a" * 64, "AbC9"])
def test_ids_of_ascii_letters_and_digits_are_accepted(value: str) -> None:
    assert check_id(value, "app id") == value


@pytest.mark.parametrize("value", ["", "a" * 65, "12-34", "12 34", "١٢٣", "12\n"])
def test_other_ids_are_refused_naming_the_field(value: str) -> None:
    with pytest.raises(InputError, match="business id must be 1-64 ASCII letters or digits"):
        check_id(value, "business id")


def test_a_missing_id_is_allowed() -> None:
    assert check_id(None, "app id") is None


def test_purpose_is_a_short_word_with_dashes() -> None:
    check_purpose(None)
    check_purpose("messaging")
    check_purpose("x-" * 20)
    for bad in ("x" * 41, "two words", "mess/aging"):
        with pytest.raises(InputError, match="purpose"):
            check_purpose(bad)


def test_version_meta_round_trips_through_its_columns() -> None:
    """`meta_values` writes what `version_record` reads back, naive times read as UTC."""
    meta = VersionMeta(
        token_type="SYSTEM_USER",
        issued_at=WHEN,
        expires_at=WHEN,
        scopes=("whatsapp_business_messaging",),
        waba_ids=("456",),
        user_id="99",
        is_valid=True,
        verdict="ok",
        inspected_at=WHEN,
    )
    row: dict[str, Any] = meta_values(meta) | {
        "credential_id": 1,
        "version": 2,
        "state": "current",
        "fingerprint": "fp",
        "kek_id": "kek",
        "created_at": WHEN.replace(tzinfo=None),
        "state_changed_at": WHEN,
    }
    v = version_record(row)
    assert v.meta == meta
    assert (v.version, v.state, v.created_at) == (2, VersionState.CURRENT, WHEN)
    assert v.created_at.tzinfo is not None


def test_credential_and_app_rows_become_records() -> None:
    row = {
        "id": 1,
        "name": "acme/wa",
        "tenant": "acme",
        "issuer": "manual",
        "purpose": None,
        "business_id": None,
        "waba_ids": None,
        "phone_number_id": None,
        "app_id": "42",
        "health": "expiring",
        "health_reason": "soon",
        "options": None,
        "policy": {"renew_before": "7d"},
        "rotation_step": None,
        "next_due_at": WHEN.replace(tzinfo=None),
        "next_action": "renew",
        "created_at": WHEN,
        "updated_at": WHEN,
    }
    cred = credential_record(row, 3)
    assert (cred.health, cred.waba_ids, cred.options, cred.current_version) == (
        Health.EXPIRING,
        (),
        {},
        3,
    )
    assert cred.next_due_at == WHEN
    app = app_record(
        {
            "id": "42",
            "name": None,
            "require_app_secret": 1,
            "secret_kek_id": "kek",
            "created_at": WHEN,
            "updated_at": WHEN,
        }
    )
    assert app.require_app_secret is True and app.kek_id == "kek"


def test_open_secret_is_the_one_way_stored_secrets_are_opened() -> None:
    """A sealed secret opens as a masked Secret; the wrong key or the wrong associated data is a
    DecryptionError naming what failed and carrying its context, never the value."""
    from permatoken._exceptions import DecryptionError
    from permatoken.crypto import Keyring, generate_key
    from permatoken.store.records import aad_app, open_secret

    ring = Keyring([generate_key()], source="test")
    sealed = ring.seal(b"zqAppSecret0123456789", aad_app("1234"))
    secret = open_secret(ring, sealed, aad_app("1234"), "the secret of app 1234", app_id="1234")
    assert secret.reveal() == "zqAppSecret0123456789" and "zqApp" not in repr(secret)
    for other, aad in (
        (Keyring([generate_key()], source="other"), aad_app("1234")),
        (ring, aad_app("9")),
    ):
        with pytest.raises(DecryptionError) as caught:
            open_secret(other, sealed, aad, "the secret of app 1234", app_id="1234")
        assert "cannot decrypt the secret of app 1234" in caught.value.message
        assert caught.value.app_id == "1234"
        assert "zqAppSecret" not in str(caught.value)
