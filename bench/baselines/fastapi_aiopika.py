"""Peer: FastAPI + pydantic, one confirmed persistent aio-pika publish per request, no outbox.

The way many services take webhooks: validate the body with a pydantic model, publish it to the
broker, wait for the broker's confirm, answer 202. No signature check, no store: if the broker
is down the request fails, and nothing is kept for later. Publishes to the same topic exchange
and routing key as the gateway (`gateway.events`, `{document}.{partner}`), so one consumer
serves both.

    python -m bench.baselines.fastapi_aiopika --port 8000 --amqp-url amqp://...
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import aio_pika
from fastapi import FastAPI

from bench.baselines.po_model import PurchaseOrder
from bench.baselines.serving import add_server_arguments, serve

__all__ = ["create_app", "main"]

EXCHANGE = "gateway.events"


def create_app(amqp_url: str) -> FastAPI:
    """Return the peer's FastAPI app, publishing to the broker at `amqp_url`."""
    state: dict[str, aio_pika.abc.AbstractExchange] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        connection = await aio_pika.connect_robust(amqp_url)
        try:
            # on_return_raises: an unroutable mandatory message is a failure, not a success.
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            state["exchange"] = await channel.declare_exchange(
                EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
            )
            yield
        finally:
            await connection.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/webhooks/{partner}/{document}", status_code=202)
    async def accept(partner: str, document: str, order: PurchaseOrder) -> dict[str, str]:
        message_id = str(uuid.uuid4())
        await state["exchange"].publish(
            aio_pika.Message(
                order.model_dump_json().encode(),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=message_id,
            ),
            routing_key=f"{document}.{partner}",
            mandatory=True,
        )
        return {"message_id": message_id}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

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
