"""Tech Providers: Embedded Signup onboarding, Meta's webhooks and callbacks, bulk import.

See docs/providers.md. ``signatures`` and ``events`` are pure; ``handling`` acts on recorded
changes in its own thread; ``routes`` is the public HTTP side on ``permatoken serve``.
"""
