"""Safe resolution of image sources: allowed roots, symlinks, special files, size limits."""

from __future__ import annotations

import base64
import os
import threading
import time
from pathlib import Path

import pytest

from harmscan.imagepolicy import ImageRejected
from serving.inputs import (
    InputReader,
    InputRejected,
    SourceUnavailable,
    decode_inline,
    read_regular_file,
    resolve_allowed_path,
)
from serving.links import opened_file_check, root_of
from serving.s3read import ReadTooSlow, read_body
from serving.s3source import parse_s3_uri, read_s3_object
from serving.schema import Request


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    allowed = tmp_path / "allowed"
    outside = tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    (allowed / "ok.jpg").write_bytes(b"x" * 10)
    (outside / "secret.jpg").write_bytes(b"secret")
    return allowed, outside


def test_path_inside_root_resolves(roots: tuple[Path, Path]) -> None:
    allowed, _ = roots
    assert (
        resolve_allowed_path(str(allowed / "sub" / ".." / "ok.jpg"), [allowed])
        == (allowed / "ok.jpg").resolve()
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda allowed, outside: str(outside / "secret.jpg"),
        lambda allowed, outside: str(allowed / ".." / "outside" / "secret.jpg"),
        lambda allowed, outside: "/etc/passwd",
        lambda allowed, outside: "/dev/zero",
        lambda allowed, outside: str(allowed) + "-evil/x.jpg",  # prefix trick
    ],
)
def test_paths_outside_roots_are_forbidden(roots: tuple[Path, Path], make) -> None:
    allowed, outside = roots
    (allowed.parent / "allowed-evil").mkdir(exist_ok=True)
    with pytest.raises(InputRejected) as info:
        resolve_allowed_path(make(allowed, outside), [allowed])
    assert info.value.reason == "forbidden_path"


def test_symlink_out_of_root_is_forbidden(roots: tuple[Path, Path]) -> None:
    allowed, outside = roots
    (allowed / "link.jpg").symlink_to(outside / "secret.jpg")
    (allowed / "dirlink").symlink_to(outside)
    for raw in (allowed / "link.jpg", allowed / "dirlink" / "secret.jpg"):
        with pytest.raises(InputRejected) as info:
            resolve_allowed_path(str(raw), [allowed])
        assert info.value.reason == "forbidden_path"


def test_no_roots_means_nothing_allowed(roots: tuple[Path, Path]) -> None:
    allowed, _ = roots
    with pytest.raises(InputRejected, match="allowed_roots"):
        resolve_allowed_path(str(allowed / "ok.jpg"), [])


def test_nul_byte_is_bad_schema(roots: tuple[Path, Path]) -> None:
    with pytest.raises(InputRejected) as info:
        resolve_allowed_path("/a\x00b", [roots[0]])
    assert info.value.reason == "bad_schema"


def test_fifo_never_blocks(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    outcome: list[str] = []

    def read() -> None:
        try:
            read_regular_file(fifo, 100)
        except InputRejected as exc:
            outcome.append(exc.reason)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(5)
    assert outcome == ["not_a_file"]


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_devices_are_not_files(device: str) -> None:
    with pytest.raises(InputRejected) as info:
        read_regular_file(Path(device), 100)
    assert info.value.reason == "not_a_file"


def test_directory_and_missing(tmp_path: Path) -> None:
    with pytest.raises(InputRejected) as info:
        read_regular_file(tmp_path, 100)
    assert info.value.reason == "not_a_file"
    with pytest.raises(InputRejected) as info:
        read_regular_file(tmp_path / "missing.jpg", 100)
    assert info.value.reason == "not_found"


def test_size_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    big.write_bytes(b"x" * 101)
    with pytest.raises(InputRejected) as info:
        read_regular_file(big, 100)
    assert info.value.reason == "too_large"
    assert read_regular_file(big, 101) == b"x" * 101


def test_inline_limits() -> None:
    data = b"\x89PNG" * 10
    assert decode_inline(base64.b64encode(data).decode(), 100) == data
    with pytest.raises(InputRejected) as info:
        decode_inline(base64.b64encode(b"x" * 200).decode(), 100)
    assert info.value.reason == "too_large"
    with pytest.raises(InputRejected) as info:
        decode_inline("not base64 !!", 100)
    assert info.value.reason == "bad_schema"


@pytest.mark.parametrize(
    ("encode", "says"),
    [
        (base64.encodebytes, "line breaks or spaces"),
        (base64.urlsafe_b64encode, "URL-safe alphabet"),
        (lambda data: b"*" + base64.b64encode(data), "character '*' at position 0"),
        (lambda data: base64.b64encode(data).rstrip(b"="), "Incorrect padding"),
        # It said "character ':' at position 4".
        (lambda data: b"data:image/png;base64," + base64.b64encode(data), "it is a data: URL"),
        (lambda data: b"DATA:;base64," + base64.b64encode(data), "only the base64 after the comma"),
    ],
)
def test_bad_base64_says_what_is_wrong_and_what_is_wanted(encode, says: str) -> None:
    data = bytes(range(250, 256)) * 40 + b"x"  # + and / (or - and _), a padded tail, > 1 line
    with pytest.raises(InputRejected) as info:
        decode_inline(encode(data).decode(), 10_000)
    assert info.value.reason == "bad_schema"
    assert says in info.value.detail
    assert "wanted standard base64" in info.value.detail


def test_an_oversize_inline_image_names_the_setting() -> None:
    with pytest.raises(InputRejected) as info:
        decode_inline(base64.b64encode(b"x" * 200).decode(), 100)
    assert "serving.max_inline_bytes=100" in info.value.detail


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("s3://other/k.jpg", "forbidden_path"),
        ("s3://good", "bad_schema"),
        ("http://x", "bad_schema"),
        ("s3://good/" + "k" * 1025, "bad_schema"),  # S3 answers KeyTooLongError (400)
        # botocore sends /good/../secret/x.jpg as it is: a proxy or server that resolves dot
        # segments reads s3://secret/x.jpg, a bucket not allowed.
        ("s3://good/../secret/x.jpg", "forbidden_path"),
        ("s3://good/a/../../secret/x.jpg", "forbidden_path"),
        ("s3://good/./x.jpg", "forbidden_path"),
        ("s3://good/a/..", "forbidden_path"),
        ("s3://good/..\\secret\\x.jpg", "forbidden_path"),
    ],
)
def test_s3_uri_checks(uri: str, reason: str) -> None:
    with pytest.raises(InputRejected) as info:
        parse_s3_uri(uri, ["good"])
    assert info.value.reason == reason
    assert parse_s3_uri("s3://good/a/b.jpg", ["good"]) == ("good", "a/b.jpg")
    assert parse_s3_uri("s3://good/a..b/.x/..y", ["good"]) == ("good", "a..b/.x/..y")


def test_reader_dispatch(roots: tuple[Path, Path]) -> None:
    allowed, outside = roots
    reader = InputReader([allowed], [], max_bytes=100)
    assert reader.read(Request("a", "path", str(allowed / "ok.jpg"))) == b"x" * 10
    with pytest.raises(InputRejected) as info:
        reader.read(Request("b", "path", str(outside / "secret.jpg")))
    assert info.value.reason == "forbidden_path"
    with pytest.raises(InputRejected) as info:
        reader.read(Request("c", "s3", "s3://any/k.jpg"))
    assert info.value.reason == "forbidden_path"


def _s3_failing_with(code: str, status: int) -> object:
    """A real boto3 client whose next GetObject fails with ``code`` (a stub injects the fault)."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    stubber = Stubber(client)
    stubber.add_client_error("get_object", service_error_code=code, http_status_code=status)
    stubber.activate()
    return client


@pytest.mark.parametrize(
    ("code", "status"),
    [("ExpiredToken", 400), ("InvalidAccessKeyId", 403), ("SignatureDoesNotMatch", 403)],
)
def test_s3_credential_errors_are_infrastructure_not_the_request(code: str, status: int) -> None:
    # They were `forbidden_path`: during a credential outage every S3 request was dead-lettered.
    client = _s3_failing_with(code, status)
    with pytest.raises(SourceUnavailable, match=code):
        read_s3_object(client, "good", "a.jpg", 100)


@pytest.mark.parametrize(
    ("code", "status", "reason"),
    [
        ("KeyTooLongError", 400, "bad_schema"),  # was retried forever as an infrastructure failure
        ("InvalidObjectState", 403, "forbidden_path"),
        ("NoSuchKey", 404, "not_found"),
    ],
)
def test_s3_errors_of_the_object_are_the_requests(code: str, status: int, reason: str) -> None:
    client = _s3_failing_with(code, status)
    with pytest.raises(InputRejected) as info:
        read_s3_object(client, "good", "a.jpg", 100)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("file:///srv/images/a.jpg", "not a file: URI"),
        ("images/a.jpg", "send an absolute one"),
        ("/etc/passwd", "outside serving.allowed_roots"),
    ],
)
def test_a_forbidden_path_detail_names_the_fix(
    roots: tuple[Path, Path], raw: str, says: str
) -> None:
    allowed, _outside = roots
    with pytest.raises(InputRejected) as info:
        resolve_allowed_path(raw, [allowed])
    assert info.value.reason == "forbidden_path"
    assert says in info.value.detail


def _stat(nlink: int, uid: int) -> os.stat_result:
    return os.stat_result((0o100644, 1, 1, nlink, uid, 0, 10, 0, 0, 0))


def test_a_hard_link_to_another_owners_file_is_forbidden(roots: tuple[Path, Path]) -> None:
    # realpath cannot see a hard link: /srv/images/x.jpg linked to /etc/shadow resolves to itself.
    allowed, _ = roots
    owner = os.stat(allowed).st_uid
    check = opened_file_check(allowed / "ok.jpg", allowed.resolve())
    fd = os.open(allowed / "ok.jpg", os.O_RDONLY)
    try:
        check(fd, _stat(1, owner + 1))  # one name: an upload by another user, not a link
        check(fd, _stat(2, owner))  # the root owner's own link (a dataset the ETL linked)
        with pytest.raises(ImageRejected) as info:
            check(fd, _stat(2, owner + 1))
    finally:
        os.close(fd)
    assert info.value.reason == "forbidden_path"
    assert "hard link (2 names)" in info.value.detail
    assert "copy the image into the root" in info.value.detail


def test_the_reader_applies_the_hard_link_rule_to_the_file_it_opens(
    roots: tuple[Path, Path],
) -> None:
    allowed, outside = roots
    os.link(outside / "secret.jpg", allowed / "linked.jpg")
    reader = InputReader([allowed], [])
    request = Request(id="a", kind="path", source=str(allowed / "linked.jpg"))
    assert reader.read(request) == b"secret"  # same owner as the root: allowed
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    os.chown(outside / "secret.jpg", 12345, 12345)
    with pytest.raises(InputRejected) as info:
        reader.read(request)
    assert info.value.reason == "forbidden_path"
    assert root_of((allowed / "linked.jpg").resolve(), [outside, allowed]) == allowed.resolve()


class _Body:
    """A StreamingBody stand-in: ``read`` hands out ``data`` in pieces, ``pause`` s each."""

    def __init__(self, data: bytes, pause: float = 0.0) -> None:
        self.data, self.pause, self.closed = data, pause, False

    def read(self, amount: int) -> bytes:
        time.sleep(self.pause)
        piece, self.data = self.data[: min(amount, 7)], self.data[min(amount, 7) :]
        return piece

    def close(self) -> None:
        self.closed = True


def test_an_s3_body_is_read_whole_capped_and_within_its_deadline() -> None:
    assert read_body(_Body(b"x" * 50), 100, 5.0, expected=50) == b"x" * 50
    assert read_body(_Body(b"x" * 500), 100, 5.0, expected=500) == b"x" * 101  # cap + 1
    with pytest.raises(ConnectionError, match="after 30 of 50 bytes"):
        read_body(_Body(b"x" * 30), 100, 5.0, expected=50)  # the connection closed early
    slow = _Body(b"x" * 500, pause=0.05)
    with pytest.raises(ReadTooSlow, match=r"in 0\.2s \(serving\.s3_read_deadline_s\)"):
        read_body(slow, 400, 0.2)
    assert slow.closed


@pytest.mark.parametrize("filler", ["a/../", "./", "/"])
def test_a_path_longer_than_path_max_is_refused_before_resolving(
    roots: tuple[Path, Path], filler: str
) -> None:
    # os.path.realpath of a 900 kB path took 30 s of the consumer's CPU, holding the GIL.
    allowed, _ = roots
    raw = str(allowed) + "/" + filler * (900_000 // len(filler)) + "ok.jpg"
    started = time.monotonic()
    with pytest.raises(InputRejected) as info:
        resolve_allowed_path(raw, [allowed])
    assert time.monotonic() - started < 0.5
    assert info.value.reason == "bad_schema"
    assert "at most 4096 bytes (PATH_MAX)" in info.value.detail
    assert resolve_allowed_path(str(allowed) + "/" + "a/../" * 700 + "ok.jpg", [allowed])


def test_a_folder_swapped_for_a_link_after_resolving_is_caught_on_the_opened_file(
    roots: tuple[Path, Path],
) -> None:
    # O_NOFOLLOW guards the last component only: root/user -> outside, swapped in between
    # realpath and open, was followed and the secret read.
    allowed, outside = roots
    (allowed / "user").symlink_to(outside)
    swapped = allowed.resolve() / "user" / "secret.jpg"  # what realpath saw: a folder, then
    with pytest.raises(InputRejected) as info:
        read_regular_file(swapped, 1000, allowed.resolve())
    assert info.value.reason == "forbidden_path"
    assert "swapped for a link" in info.value.detail
    assert read_regular_file(allowed.resolve() / "ok.jpg", 1000, allowed.resolve()) == b"x" * 10
