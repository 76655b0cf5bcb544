"""CSV feeds: a partner's columns mapped to canonical documents, read in bounded memory."""

from canonical.csv.feed import (
    CROSS_REFERENCE_COLUMNS,
    CSV_DOCUMENTS,
    CrossReferenceError,
    CsvFeed,
    ItemCrossReference,
    cross_reference,
    load_cross_reference,
)
from canonical.csv.reader import CsvRefused, read_csv

__all__ = [
    "CROSS_REFERENCE_COLUMNS",
    "CSV_DOCUMENTS",
    "CrossReferenceError",
    "CsvFeed",
    "CsvRefused",
    "ItemCrossReference",
    "cross_reference",
    "load_cross_reference",
    "read_csv",
]
