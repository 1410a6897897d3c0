"""Builds an engine from settings: kept for older imports; the assembly is :mod:`permatoken.runtime`."""

from __future__ import annotations

from .clocks import build_clock
from .runtime import build_engine, build_graph

__all__ = ["build_clock", "build_engine", "build_graph"]
