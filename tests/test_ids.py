"""Message ids are RFC 9562 UUIDv7 strings in canonical form, ordered by their millisecond."""

from __future__ import annotations

import time
import uuid

from canonical.ids import new_message_id


def test_message_id_is_a_canonical_uuid_version_7() -> None:
    for _ in range(2000):
        text = new_message_id()
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122


def test_message_id_carries_its_creation_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    text = new_message_id()
    after = time.time_ns() // 1_000_000
    assert before <= uuid.UUID(text).int >> 80 <= after


def test_message_ids_are_unique() -> None:
    ids = [new_message_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
