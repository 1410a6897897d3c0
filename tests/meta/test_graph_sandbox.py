"""AsyncGraphClient against the in-process sandbox: the real request shapes, end to end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from permatoken._exceptions import GraphError
from permatoken._secret import Secret
from permatoken.meta import AsyncGraphClient, ErrorKind, TokenDeath, TokenKind, verdict
from permatoken.sandbox import SandboxState, create_app

DAY = 86400


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def state() -> SandboxState:
    sandbox = create_app().state.sandbox
    assert isinstance(sandbox, SandboxState)
    return sandbox


@pytest.fixture
def world(state: SandboxState) -> dict[str, Any]:
    fixtures: dict[str, Any] = state.fixtures()
    return fixtures


@pytest.fixture
async def graph(state: SandboxState) -> AsyncIterator[AsyncGraphClient]:
    transport = httpx.ASGITransport(app=create_app(state))
    async with AsyncGraphClient(
        state.graph_url, "v25.0", transport=transport, clock=state.clock.now
    ) as client:
        yield client


def app_creds(world: dict[str, Any]) -> dict[str, Any]:
    app = world["apps"][0]
    return {"app_id": app["id"], "app_secret": Secret(app["secret"])}


def token(world: dict[str, Any], kind: str) -> Secret:
    return Secret(world["tokens"][kind]["value"])


def now_of(state: SandboxState) -> datetime:
    return datetime.fromtimestamp(state.clock.now(), UTC)


@pytest.mark.anyio
async def test_debug_never_expiring_system_user(
    graph: AsyncGraphClient, world: dict[str, Any], state: SandboxState
) -> None:
    """The sandbox's never-expiring token is recognised and summarised truthfully."""
    result = await graph.debug_token(token(world, "system_user"), **app_creds(world))
    assert result.type == "SYSTEM_USER" and result.never_expires and result.is_valid
    v = verdict(result, now=now_of(state))
    assert v.token_kind is TokenKind.SYSTEM_USER_NEVER
    # Like Meta's own example, a system-user token's granular scopes carry no target_ids.
    assert (
        v.summary == "System-user token, never expires, valid, can message all WABAs assigned to it"
    )


@pytest.mark.anyio
async def test_debug_bisu_token_lists_its_wabas(
    graph: AsyncGraphClient, world: dict[str, Any], state: SandboxState
) -> None:
    result = await graph.debug_token(token(world, "bisu"), **app_creds(world))
    assert result.type == "SYSTEM_USER"
    assert result.waba_ids == tuple(world["tokens"]["bisu"]["waba_ids"])
    v = verdict(result, now=now_of(state), kind_hint=TokenKind.BISU)
    assert v.reach == "can message WABAs " + ", ".join(
        w[:4] + "…" for w in world["tokens"]["bisu"]["waba_ids"]
    )


@pytest.mark.anyio
async def test_debug_dashboard_token_verdict(
    graph: AsyncGraphClient, world: dict[str, Any], state: SandboxState
) -> None:
    result = await graph.debug_token(token(world, "dashboard"), **app_creds(world))
    v = verdict(result, now=now_of(state))
    assert v.token_kind is TokenKind.DASHBOARD_OR_USER_SHORT
    assert v.summary.startswith("Dashboard/user token: expires in ")


@pytest.mark.anyio
async def test_sixty_day_refresh_keeps_old_token_then_revoke_kills_it(
    graph: AsyncGraphClient, world: dict[str, Any], state: SandboxState
) -> None:
    """Refresh at day 45: a new 60-day token; the old one lives until revoked."""
    old = token(world, "system_user_60d")
    first = await graph.debug_token(old, **app_creds(world))
    assert verdict(first, now=now_of(state)).token_kind is TokenKind.SYSTEM_USER_60D

    state.clock.advance(45 * DAY)
    issued = await graph.exchange_token(old, set_60_days=True, **app_creds(world))
    assert issued.value != old
    assert issued.expires_in is not None and 59 * DAY < issued.expires_in <= 60 * DAY
    fresh = await graph.debug_token(issued.value, **app_creds(world))
    assert fresh.is_valid and fresh.expires_at is not None
    assert fresh.expires_at - now_of(state) > timedelta(days=59)
    assert (await graph.debug_token(old, **app_creds(world))).is_valid

    await graph.revoke_token(old, caller_token=issued.value, **app_creds(world))
    dead = await graph.debug_token(old, **app_creds(world))
    assert not dead.is_valid
    assert dead.error is not None and dead.error.kind is ErrorKind.TOKEN_DEAD
    assert verdict(dead, now=now_of(state)).summary.startswith("Token is invalid: ")


@pytest.mark.anyio
async def test_expired_token_cannot_be_refreshed(
    graph: AsyncGraphClient, world: dict[str, Any], state: SandboxState
) -> None:
    state.clock.advance(61 * DAY)
    with pytest.raises(GraphError) as caught:
        await graph.exchange_token(
            token(world, "system_user_60d"), set_60_days=True, **app_creds(world)
        )
    error = caught.value.error
    assert (error.kind, error.code, error.death) == (ErrorKind.TOKEN_DEAD, 190, TokenDeath.EXPIRED)
    assert error.renewable is False
    assert world["apps"][0]["secret"] not in str(caught.value)


@pytest.mark.anyio
@pytest.mark.parametrize("timed", [False, True])
async def test_mint_never_expiring_token_with_admin_caller(
    graph: AsyncGraphClient, world: dict[str, Any], state: SandboxState, timed: bool
) -> None:
    admin = next(u for u in world["system_users"] if u["name"] == "Sandbox Admin")
    issued = await graph.mint_system_user_token(
        admin["id"],
        caller_token=token(world, "system_user"),
        expiring=False,
        timed_proof=timed,
        **app_creds(world),
    )
    result = await graph.debug_token(issued.value, **app_creds(world))
    assert result.type == "SYSTEM_USER" and result.never_expires and result.is_valid


@pytest.mark.anyio
async def test_mint_expiring_token_gets_sixty_days(
    graph: AsyncGraphClient, world: dict[str, Any], state: SandboxState
) -> None:
    admin = next(u for u in world["system_users"] if u["name"] == "Sandbox Admin")
    issued = await graph.mint_system_user_token(
        admin["id"], caller_token=token(world, "system_user"), expiring=True, **app_creds(world)
    )
    result = await graph.debug_token(issued.value, **app_creds(world))
    assert verdict(result, now=now_of(state)).token_kind is TokenKind.SYSTEM_USER_60D


@pytest.mark.anyio
async def test_wrong_app_secret_is_a_bad_request(
    graph: AsyncGraphClient, world: dict[str, Any]
) -> None:
    with pytest.raises(GraphError) as caught:
        await graph.exchange_token(
            token(world, "system_user_60d"),
            app_id=world["apps"][0]["id"],
            app_secret=Secret("0" * 32),
            set_60_days=True,
        )
    assert caught.value.error.kind is ErrorKind.BAD_REQUEST
    assert caught.value.error.code == 1
