"""``POST /v1/onboarding/embedded-signup``: the HTTP face of :mod:`permatoken.providers.signup`.

An operator or admin key whose grants cover the tenant (``{tenant}/…``, or the given name) may
call it. The code is a secret (it yields a token): it is registered for log redaction at once and
never echoed. The work runs in an upstream thread (it waits on Meta).
"""

from __future__ import annotations

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._secret import Secret, register_secret
from ..access import Action
from ..server.openapi import MANAGE_ROLES, Op
from ..server.params import broker_of, only_params
from ..server.schemas import Id, _In, _Out
from .signup import check_target, onboard

#: Name checked against the key's grants when none is given: any name inside the tenant.
_PROBE = "{tenant}/0"


class EmbeddedSignupIn(_In):
    code: str = Field(min_length=1, max_length=2048, description="The code from Embedded Signup.")
    tenant: str = Field(min_length=1, max_length=64, description="Tenant the client belongs to.")
    name: str | None = Field(
        default=None, min_length=1, max_length=200, description="Default: {tenant}/{waba-id}."
    )
    app_id: Id | None = Field(default=None, description="Default: the one registered app.")


class OnboardedCredential(_Out):
    name: str
    version: int
    waba_ids: list[str]
    phone_number_ids: list[str]
    subscribed: bool


class EmbeddedSignupOut(_Out):
    tenant: str
    app_id: str
    business_id: str | None
    token_type: str | None
    expires_at: str | None
    verdict: str
    credentials: list[OnboardedCredential]
    repeated: bool = Field(description="True when this code was onboarded before (same answer).")


async def embedded_signup(request: Request) -> Response:
    b = broker_of(request)
    p = await b.authenticate(request, Action.MANAGE)
    only_params(request)
    body = await b.body(request, EmbeddedSignupIn)
    code = Secret(body.code)
    register_secret(code)
    check_target(body.tenant, body.name)
    probe = body.name or _PROBE.format(tenant=body.tenant)
    b.check(request, p, Action.MANAGE, probe)
    result = await b.upstream.run(
        p,
        probe,
        lambda: onboard(
            b.settings,
            b.store,
            b.engine,
            code=code,
            tenant=body.tenant,
            name=body.name,
            app_id=body.app_id,
        ),
    )
    status = 200 if result.get("repeated") else 201
    return JSONResponse(result, status_code=status, headers={"Cache-Control": "no-store"})


OPERATIONS: list[Op] = [
    Op(
        "post",
        "/v1/onboarding/embedded-signup",
        "/v1/onboarding/embedded-signup",
        embedded_signup,
        f"Onboard a client from its Embedded Signup code ({MANAGE_ROLES}, grant on the tenant); "
        "201 created, 200 when the code was onboarded before (same answer).",
        EmbeddedSignupOut,
        status=201,
        body=EmbeddedSignupIn,
    ),
]


__all__ = ["OPERATIONS", "EmbeddedSignupIn", "EmbeddedSignupOut", "embedded_signup"]
