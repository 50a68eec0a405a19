"""Pure parts of the review page: the decision codec, the login, the image reader's rules."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from pydantic import SecretStr

from conf.settings import ReviewSettings
from harmscan.decisions import Decision, DecisionError, decode_decision, encode_decision
from review.auth import Login, LoginNotConfigured
from review.images import content_type, read_image, request_of
from review.store import Item
from serving.inputs import InputReader, InputRejected
from serving.schema import encode_request
from tests.serving_support import RED, image_bytes


def make_decision(**changes: object) -> Decision:
    fields: dict[str, object] = {
        "id": "r1",
        "decision": "harmful",
        "reviewer": "ana",
        "decided_at": 1.5,
        "model_name": "harmscan",
        "model_version": "3",
        "model_label": "safe",
        "p_harmful": 0.47,
        "threshold": 0.5,
        "source": "/x.jpg",
    }
    fields.update(changes)
    return Decision(**fields)  # type: ignore[arg-type]


def test_decision_round_trip() -> None:
    decision = make_decision()
    assert decode_decision(encode_decision(decision)) == decision
    assert not decision.agrees


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"", "empty"),
        (b"[1]", "JSON object"),
        (b'{"v": 2}', "schema version"),
        (encode_decision(make_decision()).replace(b'"harmful"', b'"maybe"'), "one of"),
        (encode_decision(make_decision()).replace(b'"ana"', b'""'), "reviewer"),
        (encode_decision(make_decision()).replace(b"0.47", b"NaN"), "p_harmful"),
    ],
)
def test_bad_decisions_are_refused(value: bytes, message: str) -> None:
    with pytest.raises(DecisionError, match=message):
        decode_decision(value)


def test_token_login() -> None:
    login = Login(token=SecretStr("t0ken"))
    assert login.check("ana", "t0ken") == "ana"
    assert login.check("ana", "wrong") is None
    assert login.check("<script>", "t0ken") is None
    assert login.mode == "token"


def test_password_login() -> None:
    login = Login.from_settings(ReviewSettings(username="ana", password=SecretStr("pw")))
    assert login.check("ana", "pw") == "ana"
    assert login.check("bob", "pw") is None
    assert login.check("ana", "") is None


def test_no_login_configured() -> None:
    with pytest.raises(LoginNotConfigured, match=r"review\.token"):
        Login.from_settings(ReviewSettings())
    with pytest.raises(ValueError, match="go together"):
        ReviewSettings(username="ana")


def review_item(source: str, inline: bytes | None = None) -> Item:
    return Item("r1", "t", 0, 0, "m", "1", "safe", 0.5, 0.5, source, inline, 0.0)


def test_images_only_from_allowed_roots(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "secret"
    root.mkdir()
    outside.mkdir()
    (root / "ok.jpg").write_bytes(image_bytes(RED))
    (outside / "key.jpg").write_bytes(image_bytes(RED))
    (root / "link.jpg").symlink_to(outside / "key.jpg")
    reader = InputReader([root], [], 1_000_000)
    data, kind = read_image(reader, review_item(str(root / "ok.jpg")))
    assert kind == "image/jpeg"
    assert data.startswith(b"\xff\xd8")
    for source in (str(outside / "key.jpg"), str(root / "link.jpg"), f"{root}/../secret/key.jpg"):
        with pytest.raises(InputRejected) as info:
            read_image(reader, review_item(source))
        assert info.value.reason == "forbidden_path"
    with pytest.raises(InputRejected) as info:
        read_image(reader, review_item("s3://other-bucket/key.jpg"))
    assert info.value.reason == "forbidden_path"


def test_inline_images_and_non_images(tmp_path: Path) -> None:
    reader = InputReader([tmp_path], [], 1_000_000)
    b64 = base64.b64encode(image_bytes(RED, "PNG")).decode()
    inline = review_item("inline", encode_request("r1", image_b64=b64))
    assert read_image(reader, inline)[1] == "image/png"
    with pytest.raises(InputRejected, match="inline image not available"):
        request_of(review_item("inline"))
    (tmp_path / "page.svg").write_text("<svg onload=alert(1)></svg>")
    with pytest.raises(InputRejected) as info:
        read_image(reader, review_item(str(tmp_path / "page.svg")))
    assert info.value.reason == "unsupported_format"
    assert content_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"


def test_a_tiff_is_shown_as_a_png(tmp_path: Path) -> None:
    """The consumer scores TIFFs, which no browser draws: the page gets its first page as PNG,
    at most SHOWN_SIDE px, decoded under the serving limits."""
    import io

    from PIL import Image

    from review.images import SHOWN_SIDE

    reader = InputReader([tmp_path], [], 10_000_000)
    Image.new("RGB", (3000, 1500), (200, 20, 20)).save(
        tmp_path / "scan.tif", "TIFF", compression="tiff_deflate"
    )
    data, kind = read_image(reader, review_item(str(tmp_path / "scan.tif")))
    assert kind == "image/png"
    shown = Image.open(io.BytesIO(data))
    assert (shown.format, shown.size) == ("PNG", (SHOWN_SIDE, SHOWN_SIDE // 2))
    assert shown.getpixel((10, 10)) == (200, 20, 20)
    with pytest.raises(InputRejected) as info:  # a TIFF past max_pixels is refused, not decoded
        read_image(reader, review_item(str(tmp_path / "scan.tif")), max_pixels=1_000_000)
    assert info.value.reason == "decompression_bomb"
    (tmp_path / "cut.tif").write_bytes((tmp_path / "scan.tif").read_bytes()[:5000])
    with pytest.raises(InputRejected):
        read_image(reader, review_item(str(tmp_path / "cut.tif")))
