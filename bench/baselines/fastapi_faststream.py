"""Peer: FastAPI + pydantic with FastStream's RabbitRouter, one confirmed publish per request.

The same job as `fastapi_aiopika`, done with FastStream's FastAPI integration: the router owns
the broker connection through the app's lifespan, and `router.broker.publish` sends the
validated order (persistent, mandatory, confirmed: FastStream's RabbitMQ broker publishes with
confirms by default) to `gateway.events` with routing key `{document}.{partner}`.

    python -m bench.baselines.fastapi_faststream --port 8000 --amqp-url amqp://...
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Sequence

from fastapi import FastAPI
from faststream.rabbit import ExchangeType, RabbitExchange
from faststream.rabbit.fastapi import RabbitRouter

from bench.baselines.po_model import PurchaseOrder
from bench.baselines.serving import add_server_arguments, serve

__all__ = ["create_app", "main"]

EXCHANGE = RabbitExchange("gateway.events", type=ExchangeType.TOPIC, durable=True)


def create_app(amqp_url: str) -> FastAPI:
    """Return the peer's FastAPI app, publishing through FastStream to `amqp_url`."""
    router = RabbitRouter(amqp_url)

    @router.post("/webhooks/{partner}/{document}", status_code=202)
    async def accept(partner: str, document: str, order: PurchaseOrder) -> dict[str, str]:
        message_id = str(uuid.uuid4())
        await router.broker.publish(
            order,
            exchange=EXCHANGE,
            routing_key=f"{document}.{partner}",
            persist=True,
            mandatory=True,
            message_id=message_id,
        )
        return {"message_id": message_id}

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    app = FastAPI(lifespan=router.lifespan_context)
    app.include_router(router)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_arguments(parser)
    parser.add_argument("--amqp-url", required=True)
    args = parser.parse_args(argv)
    serve(create_app(args.amqp_url), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
