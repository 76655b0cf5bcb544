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
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--amqp-url", required=True)
    parser.add_argument("--backlog", type=int, default=2048)
    args = parser.parse_args(argv)
    import uvicorn

    uvicorn.run(
        create_app(args.amqp_url),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        backlog=args.backlog,
        timeout_keep_alive=5,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
