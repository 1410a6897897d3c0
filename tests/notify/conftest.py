"""Fixtures: the scheduler tests' sandbox server and permatoken store sharing one clock."""

from __future__ import annotations

from scheduler.conftest import sandbox_config, world  # noqa: F401
