"""Where and which Graph API permatoken speaks by default, defined once.

A module of its own (no imports) so that the settings, the Graph client and the sandbox share these
without importing one another.
"""

from __future__ import annotations

#: Meta's Graph API; the default of ``PERMATOKEN_GRAPH_URL`` and of the Graph clients.
DEFAULT_GRAPH_URL = "https://graph.facebook.com"
#: The default of ``PERMATOKEN_GRAPH_VERSION``, the Graph clients and the sandbox.
DEFAULT_GRAPH_VERSION = "v25.0"
