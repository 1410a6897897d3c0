"""One list per closed set of names: issuers and health values agree wherever they are spelled."""

from __future__ import annotations

import typing
from typing import Any

import pytest

from permatoken.issuers import ISSUER_CLASSES, issuer_for
from permatoken.models import ISSUERS, Health
from permatoken.server.schemas import CredentialIn, CredentialPatch


def _literal_values(annotation: object) -> tuple[object, ...]:
    """The values of a ``Literal[...]`` (or ``Literal[...] | None``) annotation."""
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)
    values: tuple[object, ...] = ()
    for arg in typing.get_args(annotation):
        values += _literal_values(arg)
    return values


def test_the_issuer_registry_names_the_issuers_models_lists_in_the_same_order() -> None:
    """Adding an issuer class without its name in models.ISSUERS (or the reverse) fails here."""
    assert tuple(ISSUER_CLASSES) == ISSUERS
    for kind, cls in ISSUER_CLASSES.items():
        assert cls.kind == kind
        assert type(issuer_for(kind)) is cls


def test_the_http_schemas_accept_exactly_the_registered_issuers() -> None:
    """POST and PATCH /v1/credentials take the same issuer names as the registry."""
    for model in (CredentialIn, CredentialPatch):
        annotation = model.model_fields["issuer"].annotation
        assert _literal_values(annotation) == ISSUERS, model.__name__


def test_health_values_are_the_documented_seven() -> None:
    """The health enum is the one list of health strings (str-valued, as stored and served)."""
    assert [h.value for h in Health] == [
        "ok",
        "expiring",
        "renewing",
        "failing",
        "needs_human",
        "expired",
        "invalid",
    ]
    assert all(isinstance(h, str) for h in Health)


def test_every_health_value_has_its_colour_in_the_cli() -> None:
    """`permatoken status` colours each health value from one table keyed by the enum."""
    from permatoken.cli.credentials import HEALTH_STYLE

    assert set(HEALTH_STYLE) == set(Health)
    assert all(isinstance(key, Health) for key in HEALTH_STYLE)


def test_a_debug_token_verdict_suggests_a_health_value() -> None:
    """The verdict's hint is a member of the one health enum (never a free string)."""
    import typing

    from permatoken.meta.debug import Verdict

    hints = typing.get_type_hints(Verdict)
    assert hints["health_hint"] is Health


def _context(kind: str, options: dict[str, str], app_id: str | None) -> Any:
    from datetime import UTC, datetime

    from permatoken._secret import Secret
    from permatoken.issuers import IssueContext
    from permatoken.models import Credential

    cred = Credential(
        0, "acme/x", "", kind, None, None, (), None, app_id, Health.OK, None, options, {}
    )
    never: Any = None  # obtain must refuse before it touches Meta or the network

    return IssueContext(
        credential=cred,
        current=None,
        now=datetime(2026, 1, 1, tzinfo=UTC),
        graph=never,
        http=never,
        current_token=lambda: Secret("zqCurrent0123456789"),
        app_secret=lambda: Secret("zqAppSecret0123456789"),
        secret=lambda name: Secret("zqSecret0123456789"),
        reveal_credential=lambda name: Secret("zqAdmin0123456789"),
        current_dead=True,
    )


def test_each_issuer_declares_the_options_and_app_its_obtain_requires() -> None:
    """``required_options`` / ``needs_app`` (checked at create) match what ``obtain`` refuses
    without, so a create the declaration lets through cannot fail on them later."""
    from permatoken._exceptions import RotationError

    for kind, cls in ISSUER_CLASSES.items():
        for key in cls.required_options:
            options = {k: "1" for k in cls.required_options if k != key}
            with pytest.raises(RotationError, match=f"needs option {key!r}"):
                issuer_for(kind).obtain(_context(kind, options, "1"))
        if cls.needs_app:
            options = {k: "1" for k in cls.required_options}
            with pytest.raises(RotationError, match="needs the Meta app id"):
                issuer_for(kind).obtain(_context(kind, options, None))
