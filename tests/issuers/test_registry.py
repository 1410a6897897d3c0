"""One list per closed set of names: issuers and health values agree wherever they are spelled."""

from __future__ import annotations

import typing

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
