"""manual: a human supplies every value; permatoken reminds and verifies."""

from __future__ import annotations

from typing import ClassVar

from .base import IssueContext, Obtained, needs_human


class ManualIssuer:
    kind: ClassVar[str] = "manual"
    required_options: ClassVar[tuple[str, ...]] = ()
    needs_app: ClassVar[bool] = False
    automatic: ClassVar[bool] = False
    recovers_dead: ClassVar[bool] = False
    meta: ClassVar[bool] = True
    secrets: ClassVar[frozenset[str]] = frozenset()

    def obtain(self, ctx: IssueContext) -> Obtained:
        raise needs_human(
            ctx,
            "this credential is renewed by hand",
            f"generate a new token and run `permatoken rotate {ctx.credential.name} --token-file FILE`",
        )
