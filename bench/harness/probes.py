"""Small loopback probes: is a port open, one HTTP GET, a Prometheus scrape read into a dict."""

from __future__ import annotations

from collections.abc import Mapping

import anyio
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["http_get", "metric", "port_open", "scrape"]

PROBE_TIMEOUT_S = 2.0
#: A probe's answer is small (health JSON, a metrics page); a bigger one is cut off here.
MAX_PROBE_BYTES = 8 * 2**20


async def port_open(host: str, port: int) -> bool:
    """Return True if something accepts TCP connections on host:port."""
    with anyio.move_on_after(PROBE_TIMEOUT_S):
        try:
            stream = await anyio.connect_tcp(host, port)
        except OSError:
            return False
        await stream.aclose()
        return True
    return False


async def http_get(host: str, port: int, path: str) -> tuple[int, bytes] | None:
    """GET http://host:port/path with `Connection: close`; (status, body), or None on failure."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
    with anyio.move_on_after(PROBE_TIMEOUT_S):
        try:
            async with await anyio.connect_tcp(host, port) as stream:
                await stream.send(request.encode("ascii"))
                raw = b""
                while len(raw) < MAX_PROBE_BYTES:
                    try:
                        raw += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        break
        except OSError:
            return None
        head, _, body = raw.partition(b"\r\n\r\n")
        try:
            status = int(head.split(b" ", 2)[1])
        except (IndexError, ValueError):
            return None
        if b"transfer-encoding: chunked" in head.lower():
            body = _unchunk(body)
        return status, body
    return None


def _unchunk(body: bytes) -> bytes:
    out, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out += rest[:size]
        rest = rest[size + 2 :]
    return out


async def scrape(host: str, port: int) -> dict[str, float]:
    """Read /metrics into {`name{label=value,...}`: value}; empty if the scrape fails."""
    answer = await http_get(host, port, "/metrics")
    if answer is None or answer[0] != 200:
        return {}
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(answer[1].decode("utf-8", "replace")):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


def metric(metrics: Mapping[str, float], name: str, **labels: str) -> float | None:
    """Return the sum of the samples called `name` whose labels include `labels`."""
    total, found = 0.0, False
    for key, value in metrics.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        have = dict(p.split("=", 1) for p in rest.rstrip("}").split(",") if "=" in p)
        if all(have.get(k) == v for k, v in labels.items()):
            total += value
            found = True
    return total if found else None
