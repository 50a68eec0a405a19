"""The review copy of a result: inline requests carry their original request for the reviewers."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Message

from serving.headers import H_INLINE_REQUEST
from serving.records import records_for
from serving.schema import decode_request, encode_request
from tests.review_support import review_result
from tests.serving_support import RED, image_bytes


@pytest.mark.parametrize("inline", [True, False])
def test_review_copy_carries_inline_requests(
    make_settings: Callable[..., Any], inline: bool
) -> None:
    settings = make_settings()
    b64 = base64.b64encode(image_bytes(RED)).decode()
    value = encode_request("r1", image_b64=b64) if inline else encode_request("r1", path="/a.jpg")
    message = Message(topic="requests", partition=0, offset=3, key=b"r1", value=value)
    result = review_result("r1", "inline" if inline else "/a.jpg")
    records = {r.kind: r for r in records_for(message, result, settings)}
    assert set(records) == {"results", "review"}
    assert records["results"].headers == []
    headers = dict(records["review"].headers)
    if inline:
        assert decode_request(headers[H_INLINE_REQUEST]).source == b64
    else:
        assert H_INLINE_REQUEST not in headers
