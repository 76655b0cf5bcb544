"""The transaction sets the gateway maps, by set id and by canonical document type."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from msgspec import Struct

from canonical.documents import Document
from canonical.x12.elements import SetReader, SetWriter
from canonical.x12.m810 import decode_810, encode_810
from canonical.x12.m846 import decode_846, encode_846
from canonical.x12.m850 import decode_850, encode_850
from canonical.x12.m855 import decode_855, encode_855
from canonical.x12.m856 import decode_856, encode_856
from canonical.x12.m860 import decode_860, encode_860

__all__ = ["ACK_SETS", "BY_DOCUMENT_TYPE", "BY_SET_ID", "SetMapping"]

# Functional acknowledgements: read as answers, never answered (FIELD-NOTES "X12").
ACK_SETS = frozenset({"997", "999"})


class SetMapping(Struct, frozen=True, kw_only=True):
    """One transaction set's mapping both ways, and the group it travels in (GS01)."""

    set_id: str
    functional_id: str
    document_type: str
    decode: Callable[[SetReader], Sequence[Document]]
    encode: Callable[[Any, SetWriter], None]


_MAPPINGS = (
    SetMapping(
        set_id="850",
        functional_id="PO",
        document_type="purchase_order",
        decode=decode_850,
        encode=encode_850,
    ),
    SetMapping(
        set_id="860",
        functional_id="PC",
        document_type="purchase_order_change",
        decode=decode_860,
        encode=encode_860,
    ),
    SetMapping(
        set_id="855",
        functional_id="PR",
        document_type="purchase_order_ack",
        decode=decode_855,
        encode=encode_855,
    ),
    SetMapping(
        set_id="856",
        functional_id="SH",
        document_type="advance_ship_notice",
        decode=decode_856,
        encode=encode_856,
    ),
    SetMapping(
        set_id="810",
        functional_id="IN",
        document_type="invoice",
        decode=decode_810,
        encode=encode_810,
    ),
    SetMapping(
        set_id="846",
        functional_id="IB",
        document_type="inventory_position",
        decode=decode_846,
        encode=encode_846,
    ),
)

BY_SET_ID: Mapping[str, SetMapping] = MappingProxyType({m.set_id: m for m in _MAPPINGS})
BY_DOCUMENT_TYPE: Mapping[str, SetMapping] = MappingProxyType(
    {m.document_type: m for m in _MAPPINGS}
)
