"""One parsed Graph call: parameters from the query, a form or a JSON body, plus auth context.

Graph accepts most parameters in the query string or the body interchangeably, so handlers read
them through one dict and a few typed accessors that answer wrong types with Meta's code 100.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from permatoken.sandbox.errors import GraphAPIError, missing_param, wrong_type

if TYPE_CHECKING:
    from permatoken.sandbox.config import SandboxConfig
    from permatoken.sandbox.models import Token
    from permatoken.sandbox.state import SandboxState

_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


@dataclass
class SandboxRequest:
    method: str
    #: The path without the version prefix, e.g. ``/123/messages``.
    path: str
    endpoint: str
    args: list[str]
    params: dict[str, Any]
    headers: dict[str, str]
    state: SandboxState
    now: float
    json_body: Any = None
    #: Why the body could not be read as the content type it claimed, if it could not.
    body_error: str | None = None
    #: Files of a multipart body, by field name (``forms.UploadedFile`` summaries).
    files: dict[str, Any] = field(default_factory=dict)
    # Filled in by authentication; read by the dispatcher for usage headers and the calls log.
    token: Token | None = None
    raw_token: str | None = None
    app_id: str | None = None
    waba_id: str | None = None
    waba_active: bool = False

    @property
    def config(self) -> SandboxConfig:
        return self.state.config

    def auth_status(self) -> int:
        return self.config.auth_error_status.get(self.endpoint, 400)

    def text(self, name: str, *, required: bool = True) -> str | None:
        value = self.params.get(name)
        if value is None or value == "":
            if required:
                raise missing_param(name)
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise wrong_type(name, "a string")
        return str(value)

    def require(self, name: str) -> str:
        value = self.text(name, required=True)
        assert value is not None  # text() raised otherwise
        return value

    def flag(self, name: str) -> bool | None:
        value = self.params.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, str | int) and str(value).lower() in _TRUE | _FALSE:
            return str(value).lower() in _TRUE
        raise wrong_type(name, "a boolean")

    def integer(self, name: str) -> int | None:
        value = self.params.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise wrong_type(name, "an integer")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise wrong_type(name, "an integer") from None

    def fields(self) -> list[str] | None:
        raw = self.text("fields", required=False)
        if raw is None:
            return None
        return [f.strip() for f in raw.split(",") if f.strip()]

    def json_object(self) -> dict[str, Any]:
        """The JSON body as an object, or the form parameters when the body was a form."""
        if self.body_error is not None:
            raise GraphAPIError(100, f"(#100) {self.body_error}")
        if self.json_body is None:
            return dict(self.params)
        if not isinstance(self.json_body, dict):
            raise GraphAPIError(100, "(#100) The request body must be a JSON object")
        return self.json_body


def select_fields(record: dict[str, Any], wanted: list[str] | None) -> dict[str, Any]:
    """Graph's ``fields=`` projection; ``id`` always comes back."""
    if wanted is None:
        return record
    return {k: v for k, v in record.items() if k in wanted or k == "id"}


@dataclass
class Reply:
    """A handler answer that is not a plain 200 JSON body (BSP endpoints use their own shapes)."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
