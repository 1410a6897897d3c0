"""The route table (server/routing.py): each resource module declares the operations of its own
handlers, and operations() only puts them in order."""

from __future__ import annotations

import pkgutil
from types import ModuleType

import permatoken.server as server
from permatoken.providers import api as onboarding
from permatoken.server import (
    routes_apps,
    routes_credentials,
    routes_history,
    routes_keys,
    routes_service,
    routes_tokens,
)
from permatoken.server.routing import operations

IN_ORDER: list[ModuleType] = [
    routes_tokens,
    routes_credentials,
    routes_apps,
    onboarding,
    routes_history,
    routes_keys,
    routes_service,
]


def test_operations_are_the_resource_lists_in_routing_order() -> None:
    """operations() concatenates every resource module's OPERATIONS; the token read comes first."""
    assert operations() == [op for module in IN_ORDER for op in module.OPERATIONS]
    first = operations()[0]
    assert (first.method, first.path) == ("get", "/v1/tokens/{name}")


def test_each_module_declares_only_its_own_handlers() -> None:
    """An Op sits next to its handler: its endpoint is defined in the module that lists it."""
    for module in IN_ORDER:
        assert module.OPERATIONS, module.__name__
        for op in module.OPERATIONS:
            assert op.endpoint.__module__ == module.__name__, (module.__name__, op.path)


def test_every_routes_module_is_routed() -> None:
    """A new server/routes_*.py with OPERATIONS cannot be forgotten by operations()."""
    routed = {module.__name__ for module in IN_ORDER}
    for info in pkgutil.iter_modules(server.__path__):
        if info.name.startswith("routes_") and info.name != "routes_manage":  # a re-export
            assert f"permatoken.server.{info.name}" in routed, info.name


def test_no_two_operations_share_a_method_and_path_or_an_id() -> None:
    """Paths, methods and operationIds (the handler names) are unique in the OpenAPI document."""
    ops = operations()
    assert len({(op.method, op.path) for op in ops}) == len(ops)
    assert len({op.endpoint.__name__ for op in ops}) == len(ops)
