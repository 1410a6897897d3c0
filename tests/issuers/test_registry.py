"""One list per closed set of names: issuers, their secret names and health values agree wherever
they are spelled."""

from __future__ import annotations

import ast
import inspect
import textwrap
import typing
from typing import Any

import pytest

from permatoken import references as refs
from permatoken.issuers import ISSUER_CLASSES, issuer_for
from permatoken.models import ISSUERS, SECRET_NAMES, Health, IssuerName, SecretName
from permatoken.server.schemas import CredentialIn, CredentialPatch, Secrets


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


def test_issuer_names_are_declared_once_as_a_literal() -> None:
    """models.ISSUERS is read from the IssuerName Literal, the type the HTTP schemas use."""
    assert typing.get_args(IssuerName) == ISSUERS
    assert ISSUERS == (
        "manual",
        "meta-system-refresh",
        "meta-system-mint",
        "meta-user-exchange",
        "oauth2-refresh",
        "login",
    )


def test_the_declared_secret_names_are_the_union_of_what_the_issuers_declare() -> None:
    """Each issuer declares its credential secrets; together they are models.SECRET_NAMES."""
    assert typing.get_args(SecretName) == SECRET_NAMES
    declared: set[str] = set()
    for kind, cls in ISSUER_CLASSES.items():
        assert isinstance(cls.secrets, frozenset), kind
        assert cls.secrets <= set(SECRET_NAMES), kind
        declared |= cls.secrets
    assert declared == set(SECRET_NAMES)
    assert ISSUER_CLASSES["oauth2-refresh"].secrets == {"refresh_token", "client_secret"}
    assert ISSUER_CLASSES["login"].secrets == {"password"}


def _secrets_read(cls: type) -> set[str]:
    """The names in ``ctx.secret("…")`` calls and ``updates["…"] = …`` in the class's source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    names: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "secret"
        ):
            arg = node.args[0]
            assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), ast.dump(node)
            names.add(arg.value)
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
            key = node.slice
            if isinstance(node.value, ast.Name) and node.value.id == "updates":
                assert isinstance(key, ast.Constant) and isinstance(key.value, str)
                names.add(key.value)
    return names


@pytest.mark.parametrize("kind", ISSUERS)
def test_an_issuer_reads_exactly_the_secrets_it_declares(kind: str) -> None:
    """An issuer body asking ctx.secret() for a name it does not declare (or the reverse) fails."""
    cls = ISSUER_CLASSES[kind]
    assert _secrets_read(cls) == cls.secrets


def test_the_http_schemas_accept_exactly_the_declared_secret_names() -> None:
    """POST /v1/credentials takes the secrets models.SECRET_NAMES declares, and no other."""
    assert typing.get_args(Secrets) == SECRET_NAMES
    annotation = CredentialIn.model_fields["secrets"].annotation
    key, _value = typing.get_args(annotation)
    assert typing.get_args(key) == SECRET_NAMES


def test_privileged_options_are_declared_only_for_registered_issuers() -> None:
    """references.ISSUER_OPTIONS names registered issuers only, and every one of them."""
    assert set(refs.PRIVILEGED_BY_ISSUER) <= set(ISSUERS)
    assert set(refs.ISSUER_OPTIONS) <= set(ISSUERS)
    assert tuple(refs.ISSUER_OPTIONS) == ISSUERS
    for kind in set(ISSUERS) - set(refs.PRIVILEGED_BY_ISSUER):
        assert refs.ISSUER_OPTIONS[kind] == refs.IssuerOptions()
