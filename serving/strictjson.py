"""Strict parsing of untrusted JSON: every byte of a request is hostile.

The size is checked before parsing; at most `MAX_CONTAINERS` JSON objects or arrays (a request is
one flat object, so nesting depth is bounded before the parser recurses) and `MAX_COMMAS` + 1
values; duplicate keys, lone UTF-16 surrogates, integers of more than `MAX_INT_DIGITS` digits,
``NaN`` and ``Infinity`` are refused. Every refusal is a `SchemaError` (``bad_schema``).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any, Final

MAX_CONTAINERS: Final = 2  # JSON objects/arrays in one request: bounds the depth before parsing
# Commas outside strings: a request has a handful of fields; 450,000 numbers in an array cost the
# consumer ~1 s of CPU per message to parse twice (for the request, then its dead letter's id).
MAX_COMMAS: Final = 32
MAX_INT_DIGITS: Final = 20
DEFAULT_MAX_REQUEST_BYTES: Final = 1_000_000
# A JSON string literal once its escaped backslashes and quotes are gone (`_outside_strings`).
_PLAIN_STRING = re.compile(rb'"[^"]*"')


class SchemaError(ValueError):
    """A message does not follow the schema; the message says what is wrong."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    counts = Counter(key for key, _value in pairs)  # list.count per key was quadratic
    if len(counts) != len(pairs):
        dupes = sorted(key for key, count in counts.items() if count > 1)
        raise SchemaError(f"duplicate keys {[d[:40] for d in dupes][:5]}")
    return dict(pairs)


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise SchemaError(f"an integer of {len(text)} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _no_constant(name: str) -> Any:
    raise SchemaError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    if len(text) > 64:
        raise SchemaError(f"a number of {len(text)} characters (at most 64)")
    value = float(text)
    if not math.isfinite(value):
        raise SchemaError(f"number {text[:20]} is out of range")
    return value


def _outside_strings(value: bytes) -> bytes:
    """``value`` without its JSON string literals, in linear time.

    Escapes pair left to right, so removing every ``\\\\`` and then every ``\\"`` leaves only
    the quotes that open and close strings. (A single regex for a string with escapes was
    quadratic on a string that never closes: 40 kB of ``\\"`` took 41 s of the consumer's CPU.)
    """
    unescaped = value.replace(b"\\\\", b"").replace(b'\\"', b"")
    return _PLAIN_STRING.sub(b'""', unescaped)


def parse_json_strict(value: bytes, max_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> Any:
    """Parse untrusted JSON under explicit limits (see the module docstring).

    Raises:
        SchemaError: Too large, not UTF-8 JSON, too deeply nested, duplicate keys, lone
            surrogates, an oversized integer or a non-finite number.
    """
    problem = _past_limits(value, max_bytes)
    if problem is not None:
        raise SchemaError(problem)
    try:
        text = value.decode("utf-8")
        body = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_int=_bounded_int,
            parse_float=_finite_float,
            parse_constant=_no_constant,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
        if isinstance(exc, SchemaError):
            raise
        if isinstance(exc, UnicodeDecodeError):
            raise SchemaError(_not_utf8(value, exc)) from None
        raise SchemaError(f"not JSON: {str(exc)[:200]}") from None
    _check_surrogates(body)
    return body


def _past_limits(value: bytes, max_bytes: int) -> str | None:
    """Which size or structure limit ``value`` breaks, checked in linear time before any
    parser runs; None within them."""
    if len(value) > max_bytes:
        return (
            f"message of {len(value)} bytes > {max_bytes}, the request size limit (an inline "
            "image at serving.max_inline_bytes, in base64, plus JSON); send large images by path "
            "or s3"
        )
    containers = _outside_strings(value)
    if containers.count(b"{") + containers.count(b"[") > MAX_CONTAINERS:
        return f"more than {MAX_CONTAINERS} JSON objects/arrays (a request is flat)"
    if containers.count(b",") > MAX_COMMAS:
        return f"more than {MAX_COMMAS + 1} JSON values (a request has a few fields)"
    return None


def _not_utf8(value: bytes, exc: UnicodeDecodeError) -> str:
    """What a client must change when its request is not UTF-8."""
    if value.startswith((b"\xff\xfe", b"\xfe\xff")):
        found = "it starts with a UTF-16 byte-order mark"
    else:
        found = f"byte 0x{value[exc.start]:02x} at position {exc.start} is not UTF-8"
    return f"not UTF-8: {found}; a request is UTF-8 JSON"


def _check_surrogates(body: Any) -> None:
    """Refuse lone UTF-16 surrogates (``"\\ud800"``): they cannot be encoded as UTF-8. The
    error names the top-level field that holds one."""
    stack: list[tuple[str, Any]] = [("", body)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                stack += [(where or "a key", key), (where or f"field {key[:40]!r}", value)]
        elif isinstance(item, list):
            stack.extend((where, value) for value in item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                code = ord(item[exc.start])
                hint = (
                    "; a file name that is not UTF-8 cannot be sent by path (send its bytes "
                    "inline, or rename it)"
                    if where == "field 'path'"
                    else ""
                )
                raise SchemaError(
                    f"{where or 'the document'} holds a lone UTF-16 surrogate (\\u{code:04x} at "
                    f"character {exc.start}), which is not text{hint}"
                ) from None


def top_level_pairs(
    value: bytes, max_bytes: int = DEFAULT_MAX_REQUEST_BYTES
) -> list[tuple[str, Any]]:
    """The top-level object's (key, value) pairs as written, read leniently: duplicate keys stay,
    NaN, lone surrogates and bytes that are not UTF-8 (replaced) pass, numbers stay text, a
    byte-order mark before the object and anything after it are ignored. For reading the id of a
    request that `parse_json_strict` refused; the same size and structure limits bound the work,
    and anything past them, or not a JSON object at the start, gives no pairs.
    """
    if _past_limits(value, max_bytes) is not None:
        return []
    decoder = json.JSONDecoder(
        object_pairs_hook=list, parse_int=str, parse_float=str, parse_constant=str
    )
    text = value.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    try:
        body, _end = decoder.raw_decode(text)
    except (json.JSONDecodeError, RecursionError, ValueError):
        return []
    return body if isinstance(body, list) and all(isinstance(p, tuple) for p in body) else []
