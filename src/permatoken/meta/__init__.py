"""Everything permatoken knows about talking to Meta's Graph API.

Pure decisions (:func:`classify_graph_error`, :func:`parse_debug_token`, :func:`verdict`,
:func:`parse_usage`, :func:`appsecret_proof`) and a thin client (:class:`GraphClient`,
:class:`AsyncGraphClient`) built on them.
"""

from .debug import (
    DebugTokenResult,
    GranularScope,
    TokenKind,
    Verdict,
    parse_debug_token,
    token_kind,
    verdict,
)
from .endpoints import GraphCall, GraphRequest, IssuedToken, app_access_token
from .errors import ErrorKind, GraphErrorInfo, TokenDeath, classify_graph_error, graph_error
from .graph import AsyncGraphClient, BaseGraphClient, GraphClient
from .proof import appsecret_proof, appsecret_proof_timed
from .usage import BusinessUseCase, Usage, parse_usage, suggested_delay

__all__ = [
    "AsyncGraphClient",
    "BaseGraphClient",
    "BusinessUseCase",
    "DebugTokenResult",
    "ErrorKind",
    "GranularScope",
    "GraphCall",
    "GraphClient",
    "GraphErrorInfo",
    "GraphRequest",
    "IssuedToken",
    "TokenDeath",
    "TokenKind",
    "Usage",
    "Verdict",
    "app_access_token",
    "appsecret_proof",
    "appsecret_proof_timed",
    "classify_graph_error",
    "graph_error",
    "parse_debug_token",
    "parse_usage",
    "suggested_delay",
    "token_kind",
    "verdict",
]
