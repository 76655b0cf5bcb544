"""HTTP transport: webhook ingress (pure ASGI), Standard Webhooks signatures, problem+json, serving.

Modules by concern: `signatures` (sign/verify), `problem` (errors to RFC 9457 responses),
`contract` (the interfaces the gateway implements for the ingress), `ingress` (the ASGI app),
`server` (uvicorn inside the running loop), `guard` (the listener's deadlines and bounds),
`asgi` (type aliases).
"""

from .contract import AcceptedResponse, Acceptor, IngressPolicy, PartnerDirectory, WebhookRequest
from .ingress import WebhookIngress
from .problem import MethodNotAllowed, RouteNotFound, problem_response
from .server import serve
from .signatures import decode_whsec, sign, verify, verify_raw

__all__ = [
    "AcceptedResponse",
    "Acceptor",
    "IngressPolicy",
    "MethodNotAllowed",
    "PartnerDirectory",
    "RouteNotFound",
    "WebhookIngress",
    "WebhookRequest",
    "decode_whsec",
    "problem_response",
    "serve",
    "sign",
    "verify",
    "verify_raw",
]
