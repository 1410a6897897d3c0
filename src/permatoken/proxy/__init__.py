"""The Graph API reverse proxy of ``permatoken serve`` (docs/proxy.md).

A library configured with the base URL ``http://HOST:PORT/graph/{credential-name}/-`` instead of
``https://graph.facebook.com``, and given a permatoken API key as its access token, works
unmodified: the proxy swaps the key for the credential's current Meta token, signs it with
``appsecret_proof``, paces Cloud API sends, and recovers once from a dead token.

Pure parts: :mod:`.target` (URL safety), :mod:`.keys` (where the key is), :mod:`.multipart`,
:mod:`.headers` (what crosses, token masking), :mod:`.errors` (Graph-shaped refusals). I/O:
:mod:`.upstream` (the pool to Meta), :mod:`.exchange` (bodies and answers of one request),
:mod:`.signing`, :mod:`.pacing`, :mod:`.handler` (the flow).
"""

from __future__ import annotations

from .handler import GraphProxy

__all__ = ["GraphProxy"]
