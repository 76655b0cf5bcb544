"""Find the line of a field path in a TOML text, cheaply: by table headers and key lines.

tomllib keeps no positions, and a second parser is not worth it for a message. A header `[a.b]`
or `[[a.b]]` opens a table (arrays of tables are counted, so the second `[[partners]]` is
`partners[1]`); `key = ...` at the start of a line is a key of the table opened last. Lines
inside multi-line strings are skipped. A path that is not found takes its parent's line (a key
inside an inline table, an element of an array), then none.
"""

from __future__ import annotations

import re

__all__ = ["TomlLines"]

_PART = r"""(?:[A-Za-z0-9_-]+|"[^"\\]*"|'[^']*')"""
_DOTTED = rf"{_PART}(?:\s*\.\s*{_PART})*"
_HEADER = re.compile(rf"^\s*(?P<open>\[\[?)\s*(?P<name>{_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(rf"^\s*(?P<name>{_DOTTED})\s*=")
_MULTILINE_QUOTES = re.compile(r'"""|\'\'\'')


class TomlLines:
    """The line (1-based) where each table and key of a TOML text is written, and its column."""

    def __init__(self, text: str) -> None:
        self._lines: dict[str, int] = {}
        self._columns: dict[str, int] = {}  # 1-based column of the header's `[` or the key
        self._arrays: dict[str, int] = {}  # array-of-tables path -> tables seen so far
        table, in_string = "", False
        for number, line in enumerate(text.splitlines(), start=1):
            starts_in_string = in_string
            if len(_MULTILINE_QUOTES.findall(line)) % 2:
                in_string = not in_string
            if starts_in_string:
                continue
            if header := _HEADER.match(line):
                table = self._open(_parts(header["name"]), array=header["open"] == "[[")
                self._lines.setdefault(table, number)
                self._columns.setdefault(table, header.start("open") + 1)
            elif key := _KEY.match(line):
                path = ".".join([table, *_parts(key["name"])] if table else _parts(key["name"]))
                self._lines.setdefault(path, number)
                self._columns.setdefault(path, key.start("name") + 1)

    def find(self, path: str) -> int | None:
        """Return the line of `path` ("partners[1].outbound.url"), of its parent, or None."""
        found = self.position(path)
        return found[0] if found else None

    def position(self, path: str) -> tuple[int, int] | None:
        """Return (line, column) of `path`, of its parent, or None (both 1-based)."""
        while path:
            if path in self._lines:
                return self._lines[path], self._columns[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return None

    def _open(self, parts: list[str], *, array: bool) -> str:
        if not array:
            return self._resolve(parts)
        parent = self._resolve(parts[:-1])
        path = f"{parent}.{parts[-1]}" if parent else parts[-1]
        index = self._arrays.get(path, 0)
        self._arrays[path] = index + 1
        return f"{path}[{index}]"

    def _resolve(self, parts: list[str]) -> str:
        # `[partners.outbound]` belongs to the latest `[[partners]]`.
        path = ""
        for part in parts:
            path = f"{path}.{part}" if path else part
            if path in self._arrays:
                path = f"{path}[{self._arrays[path] - 1}]"
        return path


def _parts(dotted: str) -> list[str]:
    return [p.strip("\"'") for p in re.findall(_PART, dotted)]
