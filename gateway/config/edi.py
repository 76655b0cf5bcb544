"""A partner's X12 settings beyond its profile: the replay window, what goes out as X12 files.

```toml
[partners.x12]                      # canonical.x12.X12Profile: ids, version, 997 or 999, maps
sender_id = "DISTCO"                # the gateway's own ISA06
receiver_id = "ACMESUPPLY"          # the partner's ISA06
acknowledgement = "997"

[partners.edi]
replay_window_s = 7776000           # an ISA13 seen again within it: TA1 025
send_as_x12 = ["purchase_order", "purchase_order_change"]   # written to the outbound folder
unacknowledged_after_s = 86400      # a set sent and not answered by a 997 this long: flagged
```
"""

from __future__ import annotations

from collections.abc import Iterator

from canonical.x12 import BY_DOCUMENT_TYPE
from gateway.config.base import Base, Problem, Seconds, known

__all__ = ["DEFAULT_REPLAY_WINDOW_S", "DEFAULT_UNACKNOWLEDGED_AFTER_S", "EdiSettings"]

# Partners resend within days; a control number seen a season ago is a wrapped counter.
DEFAULT_REPLAY_WINDOW_S = 90 * 24 * 3600.0
# A 997 is due within a day by most trading partner agreements.
DEFAULT_UNACKNOWLEDGED_AFTER_S = 24 * 3600.0


class EdiSettings(Base, frozen=True):
    """How the gateway keeps one partner's X12 exchange (see the module docstring)."""

    replay_window_s: Seconds = DEFAULT_REPLAY_WINDOW_S
    send_as_x12: frozenset[str] = frozenset()
    unacknowledged_after_s: Seconds = DEFAULT_UNACKNOWLEDGED_AFTER_S

    def problems(self) -> Iterator[Problem]:
        with known():
            for document in sorted(self.send_as_x12 - BY_DOCUMENT_TYPE.keys()):
                yield "send_as_x12", f"no X12 transaction set carries a {document!r}"
