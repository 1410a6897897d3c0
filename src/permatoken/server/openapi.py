"""The route table and the OpenAPI 3.1 document built from it (one source for both).

Names contain slashes, so actions on a credential are suffixes:
``POST /v1/credentials/{name}/rotate`` rotates ``name`` (the route's ``{name:path}`` takes
everything before the last segment). GET, PATCH and DELETE on ``/v1/credentials/{name}`` accept
any name, including ones whose last segment is ``rotate``, ``revoke`` or ``inspect``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from . import schemas as s

_ERRORS = {
    "400": "Malformed request (bad JSON).",
    "401": "Missing, unknown, expired or revoked API key.",
    "403": "The key's role or grants do not allow this.",
    "404": "No such credential, version, app or key.",
    "409": "Conflict (already exists, or a concurrent change won).",
    "413": "Body larger than 64 KiB.",
    "422": "Invalid parameters or body.",
    "429": "Too many failed authentications from this address (see Retry-After).",
    "502": "Meta (or the configured issuer) answered with an error.",
    "503": "The database or audit log is unavailable.",
}


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "query" | "path" | "header"
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Op:
    method: str
    path: str  # OpenAPI form: {name}
    route: str  # Starlette form: {name:path}
    endpoint: Callable[..., Any]
    summary: str
    response: type[BaseModel] | None = None
    status: int = 200
    body: type[BaseModel] | None = None
    body_required: bool = True
    params: tuple[Param, ...] = ()
    public: bool = False
    media: str = "application/json"
    extra_responses: dict[str, str] = field(default_factory=dict)


NAME = Param(
    "name",
    "path",
    {"type": "string", "minLength": 1, "maxLength": 200},
    "Credential name (may contain /).",
    True,
)
LIMIT = Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000})
#: The schema of a non-negative 32-bit query parameter (a version, an offset).
INT_QUERY: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
#: Who may call, for the summaries: routes that read, routes that change.
VIEW_ROLES = "reader, operator, admin"
MANAGE_ROLES = "operator, admin"


def build_document(
    ops: list[Op], *, title: str = "permatoken broker", version: str = "1"
) -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Any]] = [(s.ErrorOut, "serialization")]
    for op in ops:
        if op.response is not None:
            models.append((op.response, "serialization"))
        if op.body is not None:
            models.append((op.body, "validation"))
    seen: set[type[BaseModel]] = set()
    unique = [(m, mode) for m, mode in models if not (m in seen or seen.add(m))]  # type: ignore[func-returns-value]
    refs, defs = models_json_schema(unique, ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        responses: dict[str, Any] = {}
        if op.response is not None:
            responses[str(op.status)] = {
                "description": "OK",
                "content": {op.media: {"schema": refs[(op.response, "serialization")]}},
            }
        elif op.media == "application/json":
            responses[str(op.status)] = {"description": "OK"}
        else:
            responses[str(op.status)] = {
                "description": "OK",
                "content": {op.media: {"schema": {"type": "string"}}},
            }
        for code, text in op.extra_responses.items():
            responses[code] = {"description": text}
        error = {
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
        }
        for code, text in _ERRORS.items():
            if op.public and code in ("401", "403", "429"):
                continue
            responses.setdefault(code, {"description": text} | error)
        spec: dict[str, Any] = {
            "operationId": op.endpoint.__name__,
            "summary": op.summary,
            "responses": responses,
        }
        params = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required or p.where == "path",
                "schema": p.schema,
                **({"description": p.description} if p.description else {}),
            }
            for p in op.params
        ]
        if params:
            spec["parameters"] = params
        if op.body is not None:
            spec["requestBody"] = {
                "required": op.body_required,
                "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
            }
        if op.public:
            spec["security"] = []
        paths.setdefault(op.path, {})[op.method] = spec
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Read current WhatsApp tokens, wait for rotations, report failures, "
            "manage credentials. "
            "Authenticate with `Authorization: Bearer pt_…`.",
        },
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "bearerFormat": "pt_…"}
            },
        },
        "security": [{"apiKey": []}],
    }


__all__ = [
    "INT_QUERY",
    "LIMIT",
    "MANAGE_ROLES",
    "NAME",
    "VIEW_ROLES",
    "Op",
    "Param",
    "build_document",
]
