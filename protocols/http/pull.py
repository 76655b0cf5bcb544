"""The pull API: partners that cannot receive webhooks fetch and acknowledge their messages.

- `GET /partners/{id}/messages?after=<cursor>&limit=<n>`: the partner's pending messages after
  the cursor, oldest first: `{"messages": [{"message_id", "document_type", "cursor", "body"}],
  "next": cursor}`. `body` is the message's envelope JSON as is; `next` is the last message's
  cursor (or `after` when there is none) and goes in the next call's `after`.
- `POST /partners/{id}/messages/ack` with `{"up_to": cursor}` or `{"message_ids": [...]}` (or
  both): those messages are delivered and are not returned again. Answers `{"acknowledged": n}`.

Every call carries `Authorization: Bearer <token>`, the partner's `pull.token`. The token is
compared with every pull partner's token in constant time: a missing token, or one that is no
partner's, answers 401; another partner's token answers 403, whether or not the partner in the
path exists, so credentials never reveal which partners there are and a partner never sees
messages other than its own. Errors are problem+json.

Transport only: the messages come from a `MessageBox` the gateway implements.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Annotated, Protocol

import msgspec
import orjson
from starlette.requests import Request
from starlette.responses import Response as HTTPResponse
from starlette.routing import Route

from canonical.common import PartnerId
from canonical.envelope import Envelope

from .operations import Link, Operation, Parameter, Response
from .problem import Problem
from .redaction import redacted_repr
from .router import ProblemRouter, json_response
from .routing import MAX_ID, BadRequest, Forbidden, Unauthenticated, bearer, natural, read_json

__all__ = ["OPERATIONS", "PULL_PATH_PREFIX", "MessageBox", "PullApi", "PullPolicy", "PulledMessage"]

PULL_PATH_PREFIX = "/partners/"
# Message ids one ack may name.
MAX_ACK_IDS = 10_000


class PulledMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One message waiting for a pulling partner; `cursor` orders them."""

    message_id: str
    document_type: str
    cursor: int
    body: bytes
    """The envelope JSON, sent inside the answer as is."""


class PullPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """One pulling partner's credentials and bound."""

    token: bytes
    max_batch: int

    def __repr__(self) -> str:
        return redacted_repr(self, ("token",))


class MessageBox(Protocol):
    """Where pulling partners' messages wait (the gateway's store)."""

    async def messages(self, partner_id: str, after: int, limit: int, /) -> list[PulledMessage]:
        """Return up to `limit` of the partner's pending messages with cursor > `after`."""
        ...

    async def acknowledge(
        self, partner_id: str, /, *, up_to: int | None, message_ids: tuple[str, ...]
    ) -> int:
        """Mark the partner's messages delivered; return how many were pending."""
        ...


class _Ack(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    up_to: Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)] | None = None
    message_ids: tuple[str, ...] = ()


_ACK_DECODER = msgspec.json.Decoder(_Ack)


class PullApi(ProblemRouter):
    """ASGI app serving the pull routes under `/partners/`."""

    def __init__(self, policies: Mapping[str, PullPolicy], box: MessageBox) -> None:
        self._policies = dict(policies)
        self._box = box
        super().__init__(
            [
                Route(PULL_PATH_PREFIX + "{partner}/messages", self._messages, methods=["GET"]),
                Route(
                    PULL_PATH_PREFIX + "{partner}/messages/ack",
                    self._acknowledge,
                    methods=["POST"],
                ),
            ]
        )

    def reconfigure(self, policies: Mapping[str, PullPolicy]) -> None:
        """Take these partners' tokens and bounds from now on (a config reload).

        One rebind: a request in flight keeps the policies it read first."""
        self._policies = dict(policies)

    def _authorize(self, request: Request, policies: Mapping[str, PullPolicy]) -> PullPolicy:
        """Return the policy of the path's partner, whose token the request must carry."""
        partner_id: str = request.path_params["partner"]
        token = bearer(_authorization(request.scope["headers"]))
        if token is None:
            raise Unauthenticated("send Authorization: Bearer <your pull token>")
        caller = None
        # Every token is compared, matched or not, so timing tells nothing about which matched.
        for candidate, policy in policies.items():
            if hmac.compare_digest(token, policy.token):
                caller = candidate
        if caller is None:
            raise Unauthenticated("the token is not valid")
        if caller != partner_id:
            raise Forbidden("these credentials are for another partner")
        return policies[partner_id]

    async def _messages(self, request: Request) -> HTTPResponse:
        policy = self._authorize(request, self._policies)
        query = request.query_params
        after = _natural(query, "after", 0)
        limit = min(_natural(query, "limit", policy.max_batch), policy.max_batch)
        if limit < 1:
            raise BadRequest("limit: expected at least 1")
        found = await self._box.messages(request.path_params["partner"], after, limit)
        return json_response(
            {
                "messages": [
                    {
                        "message_id": m.message_id,
                        "document_type": m.document_type,
                        "cursor": m.cursor,
                        "body": orjson.Fragment(m.body),
                    }
                    for m in found
                ],
                "next": found[-1].cursor if found else after,
            }
        )

    async def _acknowledge(self, request: Request) -> HTTPResponse:
        self._authorize(request, self._policies)
        raw = await read_json(request.receive)
        try:
            ack = _ACK_DECODER.decode(msgspec.json.encode(raw))
        except msgspec.ValidationError as exc:
            raise BadRequest(f"ack: {exc}") from None
        if ack.up_to is None and not ack.message_ids:
            raise BadRequest('ack: give "up_to" (a cursor) or "message_ids"')
        if len(ack.message_ids) > MAX_ACK_IDS:
            raise BadRequest(f"ack: at most {MAX_ACK_IDS} message_ids at once")
        count = await self._box.acknowledge(
            request.path_params["partner"], up_to=ack.up_to, message_ids=ack.message_ids
        )
        return json_response({"acknowledged": count})


def _authorization(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == b"authorization":
            return value
    return None


def _natural(query: Mapping[str, str], name: str, default: int) -> int:
    """Return the query parameter as a non-negative int; 400 when it is not one."""
    text = query.get(name)
    return default if text is None else natural(text, name)


# The contract (gateway/contracts/openapi.py turns these into OpenAPI).


class PulledMessageView(msgspec.Struct, frozen=True, kw_only=True):
    """One message in a `GET .../messages` answer; `body` is its envelope."""

    message_id: str
    document_type: str
    cursor: int
    body: Envelope


class PulledBatch(msgspec.Struct, frozen=True, kw_only=True):
    """A `GET .../messages` answer; `next` goes in the next call's `after`."""

    messages: list[PulledMessageView]
    next: int


class Acknowledged(msgspec.Struct, frozen=True, kw_only=True):
    """A `POST .../messages/ack` answer: how many of the named messages were pending."""

    acknowledged: int


_PROBLEM = "application/problem+json"
_Cursor = Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]
_PARTNER = Parameter(name="partner", where="path", type=PartnerId, required=True)
_REFUSALS = (
    Response(status=400, description="Bad parameter or body", body=Problem, media_type=_PROBLEM),
    Response(
        status=401,
        description="No token, or no partner's",
        body=Problem,
        media_type=_PROBLEM,
        headers=("WWW-Authenticate",),
    ),
    Response(status=403, description="Another partner's token", body=Problem, media_type=_PROBLEM),
)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        method="GET",
        path=PULL_PATH_PREFIX + "{partner}/messages",
        operation_id="pull_messages",
        summary="The partner's pending messages after a cursor, oldest first",
        tags=("pull",),
        parameters=(
            _PARTNER,
            Parameter(name="after", where="query", type=_Cursor, description="a cursor (0)"),
            Parameter(
                name="limit",
                where="query",
                type=Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)],
                description="at most this many (the partner's max_batch caps it)",
            ),
        ),
        security=("bearer",),
        responses=(
            Response(
                status=200,
                description="Pending messages",
                body=PulledBatch,
                links=(
                    Link(
                        name="AcknowledgeThem",
                        operation_id="pull_acknowledge",
                        parameters=(("partner", "$request.path.partner"),),
                        request_body={"up_to": "$response.body#/next"},
                        description="acknowledge every message this page returned",
                    ),
                ),
            ),
            *_REFUSALS,
        ),
    ),
    Operation(
        method="POST",
        path=PULL_PATH_PREFIX + "{partner}/messages/ack",
        operation_id="pull_acknowledge",
        summary="Mark messages delivered, up to a cursor or by id",
        tags=("pull",),
        parameters=(_PARTNER,),
        request_body=_Ack,
        security=("bearer",),
        responses=(
            Response(status=200, description="Acknowledged", body=Acknowledged),
            *_REFUSALS,
        ),
    ),
)
