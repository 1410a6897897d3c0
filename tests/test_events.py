"""One list of event kinds (`permatoken.events.EventKind`), proven to agree with the source.

The kinds emitted are read from the source with :mod:`ast` (nothing is imported but the enum):

* the engine's events: the kind given to ``engine.emit(...)`` / ``EngineEvent(...)``, and every
  ``EventKind`` member named in the emitting modules (``rotation/``, the batched renewals, the
  notice deliverer);
* the store's event log: the kind given to ``record(conn, KIND, ...)`` / ``record_many(conn,
  KIND, ...)``, ``"kind": KIND`` in row dicts under ``store/``, and ``version.<state>`` for the
  states passed to ``set_version_state``;
* the audit log's ``credential.created`` (``_audit(..., KIND, ...)``), the same word as the
  event log's since migration 0009_event_names.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from permatoken.events import EngineEvent, EventBus, EventKind
from permatoken.models import VersionState

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "permatoken"
T = datetime(2026, 1, 1, tzinfo=UTC)
EMITTERS = ("rotation/", "scheduler/batch.py", "scheduler/batch_steps.py", "notify/delivery.py")


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("store/migrations/"):
            continue
        yield rel, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _called(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _kind(node: ast.expr) -> str | None:
    """A kind written as a literal or as ``EventKind.MEMBER``; None for anything computed."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "EventKind"
    ):
        return EventKind[node.attr].value
    return None


def _members_named(tree: ast.AST) -> set[str]:
    return {
        EventKind[n.attr].value
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute)
        and isinstance(n.value, ast.Name)
        and n.value.id == "EventKind"
    }


def engine_kinds() -> set[str]:
    found: set[str] = set()
    for rel, tree in _modules():
        if rel.startswith(EMITTERS):
            found |= _members_named(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _called(node) in ("emit", "EngineEvent"):
                kind = _kind(node.args[0]) if node.args else None
                if kind is not None:
                    found.add(kind)
    return found


def event_log_kinds() -> set[str]:
    found: set[str] = set()
    for rel, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _called(node) in ("record", "record_many"):
                kind = _kind(node.args[1]) if len(node.args) >= 2 else None
                if kind is not None and "." in kind:
                    found.add(kind)
            if isinstance(node, ast.Call) and _called(node) == "set_version_state":
                state = node.args[2] if len(node.args) >= 3 else None
                if (
                    isinstance(state, ast.Attribute)
                    and isinstance(state.value, ast.Name)
                    and state.value.id == "VersionState"
                ):
                    found.add(f"version.{VersionState[state.attr].value}")
            if rel.startswith("store/") and isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "kind":
                        kind = _kind(value)
                        if kind is not None and "." in kind:
                            found.add(kind)
    return found


def audit_kinds() -> set[str]:
    found: set[str] = set()
    for _, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _called(node) == "_audit":
                found |= {k for a in node.args if (k := _kind(a)) is not None}
    return found


def test_every_kind_the_engine_emits_is_an_event_kind() -> None:
    """A literal kind given to the engine's emitter must be an EventKind member."""
    emitted = engine_kinds()
    assert {"rotation.started", "rotation.completed", "inspected"} <= emitted  # the reader works
    assert emitted <= set(EventKind), sorted(emitted - set(EventKind))


def test_every_kind_the_event_log_records_is_an_event_kind() -> None:
    """Every kind written to the store's event log is an EventKind member."""
    logged = event_log_kinds()
    assert {"credential.created", "version.promoted", "version.retired"} <= logged
    assert logged <= set(EventKind), sorted(logged - set(EventKind))


def test_no_event_kind_is_left_that_nothing_emits() -> None:
    """Every EventKind member is emitted by the engine, logged by the store or audited."""
    emitted = engine_kinds() | event_log_kinds() | audit_kinds()
    unused = sorted(k.value for k in EventKind if k.value not in emitted)
    assert not unused, f"EventKind members nothing emits: {unused}"


def test_the_engine_emits_no_kind_as_a_bare_string() -> None:
    """The engine's emitters name kinds as EventKind members, never as string literals."""
    bare = []
    for rel, tree in _modules():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and _called(node) in ("emit", "EngineEvent")
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                bare.append(f"{rel}:{node.lineno}")
    assert not bare, bare


def test_kinds_compare_and_serialise_as_the_strings_stored() -> None:
    """An EventKind is its string: rows, JSON and old comparisons see no difference."""
    assert EventKind.ROTATION_COMPLETED == "rotation.completed"
    assert f"{EventKind.VERSION_PROMOTED}" == "version.promoted"
    assert EventKind("credential.created") is EventKind.CREDENTIAL_CREATED


# --- the bus -------------------------------------------------------------------------------------


def test_listeners_get_typed_events_and_a_failing_one_breaks_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A listener that raises is logged; the next listener still receives the event."""
    bus = EventBus()
    got: list[EngineEvent] = []

    def broken(event: EngineEvent) -> None:
        raise RuntimeError("boom")

    bus.subscribe(broken)
    bus.subscribe(got.append)
    event = EngineEvent(EventKind.ROTATION_STARTED, "acme/wa", {"attempt": 1})
    bus.emit(event)
    assert got == [event] and got[0].kind is EventKind.ROTATION_STARTED
    assert "event listener failed for acme/wa" in caplog.text


def test_unsubscribe_stops_delivery_and_may_be_called_twice() -> None:
    """What subscribe returns removes that listener only, once, idempotently."""
    bus = EventBus()
    first: list[tuple[str, int]] = []
    second: list[tuple[str, int]] = []
    stop_first = bus.subscribe_promotions(lambda n, v: first.append((n, v)))
    bus.subscribe_promotions(lambda n, v: second.append((n, v)))
    bus.promoted("a", 2)
    stop_first()
    stop_first()
    bus.promoted("a", 3)
    assert first == [("a", 2)] and second == [("a", 2), ("a", 3)]


def test_an_event_in_flight_goes_to_the_listeners_subscribed_when_it_was_emitted() -> None:
    """A listener that unsubscribes a later one, or subscribes a new one, while an event is
    delivered changes who gets the next event, not this one."""
    bus = EventBus()
    got: list[tuple[str, str]] = []
    stops: dict[str, Callable[[], None]] = {}

    def first(event: EngineEvent) -> None:
        got.append(("first", event.name))
        if event.name == "one":
            stops["second"]()
            bus.subscribe(lambda e: got.append(("late", e.name)))

    bus.subscribe(first)
    stops["second"] = bus.subscribe(lambda e: got.append(("second", e.name)))
    bus.emit(EngineEvent(EventKind.INSPECTED, "one", {}))
    bus.emit(EngineEvent(EventKind.INSPECTED, "two", {}))
    assert got == [("first", "one"), ("second", "one"), ("first", "two"), ("late", "two")]


def test_the_event_log_and_the_audit_log_use_one_word_for_a_new_credential(tmp_path: Path) -> None:
    """Rows an older release logged as ``credential.added`` read ``credential.created`` after
    the upgrade, the audit log's word (migration 0009_event_names)."""
    import sqlalchemy as sa
    from alembic import command

    from permatoken.store import engine as eng
    from permatoken.store.schema import events

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with eng.translated(url), engine.begin() as conn:
        command.upgrade(eng._alembic_config(conn), "0008_fleet")
        conn.execute(
            events.insert(),
            [
                {
                    "credential_name": "acme/m",
                    "kind": "credential.added",
                    "at": T,
                    "actor": "x",
                    "detail": {},
                },
                {
                    "credential_name": "acme/m",
                    "kind": "version.promoted",
                    "at": T,
                    "actor": "x",
                    "detail": {},
                },
            ],
        )
        command.upgrade(eng._alembic_config(conn), "head")
        kinds = [r.kind for r in conn.execute(sa.select(events.c.kind).order_by(events.c.id))]
    engine.dispose()
    assert kinds == [EventKind.CREDENTIAL_CREATED, EventKind.VERSION_PROMOTED]
