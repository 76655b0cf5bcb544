"""A slowloris attacker, run as its own process: `python slowloris.py PORT IDLE TRICKLING`.

Opens IDLE connections that never send a byte and TRICKLING connections that send a request
head one byte every half second, prints `ready` once all are open, then waits until the server
has closed every one of them (or 30 s passed) and prints one JSON object: for each kind, the
seconds each connection stayed open, and the status line of any answer the trickling ones got.
A separate process, so the gateway's event loop does only the server's share of the work.
"""

from __future__ import annotations

import json
import selectors
import socket
import sys
import time

HEAD = (
    b"POST /webhooks/acme/purchase_order HTTP/1.1\r\nhost: gateway\r\n"
    b"content-type: application/json\r\ncontent-length: 1000\r\n\r\n"
)
TRICKLE_INTERVAL_S = 0.5
GIVE_UP_S = 30.0


class Connection:
    def __init__(self, port: int, kind: str) -> None:
        self.kind = kind
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.opened = time.monotonic()
        self.sent = 0
        self.received = b""


def main(port: int, idle: int, trickling: int) -> None:
    selector = selectors.DefaultSelector()
    connections = [Connection(port, "idle") for _ in range(idle)]
    connections += [Connection(port, "trickling") for _ in range(trickling)]
    for connection in connections:
        selector.register(connection.sock, selectors.EVENT_READ, connection)
    print("ready", flush=True)

    open_for: dict[str, list[float]] = {"idle": [], "trickling": []}
    answers: list[str] = []
    remaining = len(connections)
    next_trickle = time.monotonic()
    deadline = time.monotonic() + GIVE_UP_S
    while remaining and time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_trickle:
            for connection in connections:
                if connection.kind == "trickling" and connection.sock.fileno() != -1:
                    try:
                        connection.sock.send(HEAD[connection.sent : connection.sent + 1])
                        connection.sent += 1
                    except OSError:
                        pass  # closed by the server: the read side records it
            next_trickle = now + TRICKLE_INTERVAL_S
        for key, _ in selector.select(timeout=max(0.0, next_trickle - time.monotonic())):
            connection = key.data
            try:
                data = connection.sock.recv(65536)
            except OSError:
                data = b""
            if data:
                connection.received += data
                continue
            open_for[connection.kind].append(time.monotonic() - connection.opened)
            if connection.received:
                answers.append(connection.received.split(b"\r\n", 1)[0].decode("latin-1"))
            selector.unregister(connection.sock)
            connection.sock.close()
            remaining -= 1
    print(json.dumps({"open_for": open_for, "answers": answers}), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
