"""The previous version's grace period: kept (and valid at Meta) until its own grace is over.

Applications may still hold the previous token for a while after a rotation, so retiring (or
revoking) it early breaks them. Each previous version's grace starts when it stopped being current.
"""

from __future__ import annotations

from permatoken.models import VersionState
from permatoken.rotation import RenewalEngine
from scheduler.world import World

NAME = "acme/wa"


def _states(world: World) -> dict[int, VersionState]:
    return {v.version: v.state for v in world.store.versions(NAME)}


def _rotate(engine: RenewalEngine) -> int:
    outcome = engine.rotate(NAME, force=True, reason="test")
    assert outcome.status == "rotated", outcome
    assert outcome.version is not None
    return outcome.version


def _valid_at_meta(world: World, value: str) -> bool:
    token = world.state.token(value)
    return token is not None and not token.revoked


def test_previous_version_is_kept_through_its_grace_period_then_retired(world: World) -> None:
    """retire_previous inside the grace period retires nothing; one second after it, v1 goes."""
    world.add(NAME, policy={"grace": 600})
    engine = world.engine()
    assert _rotate(engine) == 2
    for step in (1, 300, 298):  # 1 s, 301 s, 599 s after the promotion
        world.advance(step)
        assert engine.retire_previous(NAME) == []
        assert _states(world) == {1: VersionState.PREVIOUS, 2: VersionState.CURRENT}
    world.advance(2)  # 601 s
    assert engine.retire_previous(NAME) == [1]
    assert _states(world) == {1: VersionState.RETIRED, 2: VersionState.CURRENT}


def test_two_rotations_inside_one_grace_period_keep_both_previous_versions(world: World) -> None:
    """v1 → v2 → v3 within 10 minutes (grace 1 h, revoke upstream when over): v1 and v2 stay
    valid at Meta until each one's own grace ends, v1's first."""
    first = world.add(NAME, policy={"grace": 3600, "revoke_previous": True})
    engine = world.engine()
    assert _rotate(engine) == 2
    second = world.store.reveal(NAME).reveal()
    world.advance(600)
    assert _rotate(engine) == 3
    world.advance(60)
    assert engine.retire_previous(NAME) == []
    expected = {1: VersionState.PREVIOUS, 2: VersionState.PREVIOUS, 3: VersionState.CURRENT}
    assert _states(world) == expected
    assert _valid_at_meta(world, first) and _valid_at_meta(world, second)
    world.advance(3600 - 660 + 1)  # v1's grace is over, v2's is not
    assert engine.retire_previous(NAME) == [1]
    assert _states(world)[1] is VersionState.REVOKED and _states(world)[2] is VersionState.PREVIOUS
    assert not _valid_at_meta(world, first) and _valid_at_meta(world, second)
    world.advance(600)  # and now v2's
    assert engine.retire_previous(NAME) == [2]
    assert _states(world) == {
        1: VersionState.REVOKED,
        2: VersionState.REVOKED,
        3: VersionState.CURRENT,
    }
    assert not _valid_at_meta(world, second)
