"""The review page reads a form body only up to its limit: a large body is refused before it is
held whole (the /login form is reached before any login check)."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import HTTPException
from starlette.requests import Request

from review.app import MAX_FORM_BYTES, _bounded_body


def _request(chunks: int, chunk: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[Request, list]:
    pulled: list[int] = []

    async def receive() -> dict[str, object]:
        pulled.append(1)
        more = len(pulled) < chunks
        return {"type": "http.request", "body": chunk, "more_body": more}

    scope = {"type": "http", "method": "POST", "path": "/login", "headers": headers}
    return Request(scope, receive), pulled


def test_a_body_past_the_limit_is_refused_while_streaming_not_after() -> None:
    request, pulled = _request(1000, b"x" * 1_000_000, [])  # 1 GB if read whole
    with pytest.raises(HTTPException) as refused:
        asyncio.run(_bounded_body(request, MAX_FORM_BYTES))
    assert refused.value.status_code == 413
    assert len(pulled) == 1  # the first megabyte already passes the limit: nothing more is read


def test_a_declared_length_past_the_limit_is_refused_before_reading() -> None:
    request, pulled = _request(1, b"", [(b"content-length", b"150000000")])
    with pytest.raises(HTTPException) as refused:
        asyncio.run(_bounded_body(request, MAX_FORM_BYTES))
    assert refused.value.status_code == 413
    assert pulled == []


def test_a_form_within_the_limit_is_read_whole() -> None:
    request, _ = _request(3, b"a=1&", [])
    assert asyncio.run(_bounded_body(request, MAX_FORM_BYTES)) == b"a=1&a=1&a=1&"
