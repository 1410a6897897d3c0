"""The staged, crash-safe rotation of credentials and token inspection.

    steps.py       pure: RotationStep, Outcome, next_step(), decide_failure(), plan_next()
    inspection.py  debug_token verdicts, health after an inspection, the canary call
    locking.py     one rotation per credential: in-process lock + database lease
    staged.py      the steps' I/O: obtain, store pending, verify, promote, finalize
    engine.py      RenewalEngine: the public entry points (rotate, inspect, report, retire)

A rotation moves through persisted steps, each idempotent and resumable::

    (idle) → obtaining → pending → verified → promoted → (idle)

A process that dies at any step leaves the step on the credential row; whoever takes the lease
next (after it expires) resumes from there. The previous version stays usable through the grace
period (:meth:`RenewalEngine.retire_previous`). Exactly one rotation per credential runs at a
time: an in-process lock per credential plus a lease in the database across processes.
"""

from __future__ import annotations

from .engine import RenewalEngine
from .inspection import Inspection, meta_from_debug
from .staged import CRASH_ENV, _crash_point
from .steps import (
    FailureDecision,
    Outcome,
    RotationOutcome,
    RotationStep,
    decide_failure,
    next_step,
    plan_next,
)

__all__ = [
    "CRASH_ENV",
    "FailureDecision",
    "Inspection",
    "Outcome",
    "RenewalEngine",
    "RotationOutcome",
    "RotationStep",
    "_crash_point",
    "decide_failure",
    "meta_from_debug",
    "next_step",
    "plan_next",
]
