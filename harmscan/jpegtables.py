"""A check of a JPEG's Huffman tables before decoding (libjpeg decodes broken ones into noise)."""

from __future__ import annotations

import re
from typing import Final

# A JPEG marker inside entropy-coded data: 0xFF followed by neither stuffing, RSTn nor fill.
_JPEG_MARKER: Final = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def jpeg_table_problem(data: bytes) -> str | None:
    """What is wrong with a JPEG's Huffman tables (and their use by its scans), or None.

    Checks every DHT segment (class and id, complete code lengths within the code space, no
    duplicate symbols, DC categories <= 11, AC sizes <= 10) and that every scan names defined
    tables. libjpeg itself only refuses over-subscribed code lengths; other broken tables decode
    into noise without an error. Other structure is left to the decoder.
    """
    defined: set[tuple[int, int]] = set()
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None  # not a marker where one should be: the decoder judges
        marker = data[pos + 1]
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD8:
            pos += 1 if marker == 0xFF else 2
            continue
        if marker == 0xD9:
            return None
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        body = data[pos + 4 : pos + 2 + length]
        if marker == 0xC4:
            problem = _dht_problem(body, defined)
            if problem:
                return problem
        elif marker == 0xDA:
            problem = _sos_problem(body, defined)
            if problem:
                return problem
            found = _JPEG_MARKER.search(data, pos + 2 + length)
            if found is None:
                return None
            pos = found.start()
            continue
        pos += 2 + length
    return None


def _dht_problem(body: bytes, defined: set[tuple[int, int]]) -> str | None:
    index = 0
    while index < len(body):
        table_class, table_id = body[index] >> 4, body[index] & 0x0F
        if table_class > 1 or table_id > 3:
            return f"table class {table_class} id {table_id}"
        counts = body[index + 1 : index + 17]
        total = sum(counts)
        symbols = body[index + 17 : index + 17 + total]
        if len(counts) < 16 or len(symbols) < total:
            return "segment shorter than its tables"
        if total == 0:
            return "a table without codes"
        available = 1
        for count in counts:
            available = available * 2 - count
            if available < 0:
                return "code lengths over-subscribed"
        if len(set(symbols)) != total:
            return "duplicate symbols"
        if table_class == 0 and max(symbols) > 11:
            return f"DC symbol {max(symbols)} > 11"
        if table_class == 1 and any(symbol & 0x0F > 10 for symbol in symbols):
            return "AC symbol with a size > 10"
        defined.add((table_class, table_id))
        index += 17 + total
    return None


def _sos_problem(body: bytes, defined: set[tuple[int, int]]) -> str | None:
    if not body:
        return "empty scan header"
    count = body[0]
    if len(body) < 1 + 2 * count + 3:
        return "scan header shorter than its components"
    start, end = body[1 + 2 * count], body[2 + 2 * count]
    for index in range(count):
        tables = body[2 + 2 * index]
        if start == 0 and (0, tables >> 4) not in defined:
            return f"a scan uses undefined DC table {tables >> 4}"
        if end > 0 and (1, tables & 0x0F) not in defined:
            return f"a scan uses undefined AC table {tables & 0x0F}"
    return None
