"""Ceilings and peers the gateway is measured against; the gateway never imports anything here.

Each module runs as its own process (`python -m bench.baselines.<name> --help`):
`http_ceiling` (the fastest an ASGI server answers a body it only decodes), `publish_ceiling`
(the fastest a client publishes with windowed confirms), and two peers built the usual way:
`fastapi_aiopika` and `fastapi_faststream`.
"""
