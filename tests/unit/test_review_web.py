"""The review app's web rules without a broker: cookie flags, CSRF, and a decision that Kafka did
not acknowledge is neither answered as done nor recorded (the item stays the reviewer's)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from harmscan.decisions import Decision
from review.app import NOTICES, ReviewContext, create_app
from review.auth import Login
from review.metrics import ReviewMetrics
from review.store import Item, ReviewStore
from serving.inputs import InputReader


class Writer:
    """Records decisions; ``fail`` injects a delivery failure."""

    def __init__(self) -> None:
        self.written: list[Decision] = []
        self.fail = False

    def write(self, decision: Decision) -> None:
        if self.fail:
            raise RuntimeError("broker did not acknowledge")
        self.written.append(decision)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[TestClient, ReviewStore, Writer]:
    store = ReviewStore(":memory:", claim_ttl_s=60)
    item = Item("r1", "t", 0, 0, "harmscan", "2", "safe", 0.45, 0.5, "/x.jpg", None, 1.0)
    store.add([item], [("t", 0, 0)])
    writer = Writer()
    context = ReviewContext(
        store=store,
        writer=writer,
        reader=InputReader([tmp_path], [], 1000),
        login=Login(token=SecretStr("tok")),
        metrics=ReviewMetrics(store),
    )
    return TestClient(create_app(context)), store, writer


def csrf_of(text: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', text).group(1)  # type: ignore[union-attr]


def log_in(client: TestClient) -> None:
    token = csrf_of(client.get("/login").text)
    form = {"csrf": token, "name": "ana", "secret": "tok"}
    response = client.post("/login", data=form, follow_redirects=False)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie


def test_login_needs_the_form_token(setup: tuple[TestClient, ReviewStore, Writer]) -> None:
    client, _, _ = setup
    client.get("/login")
    form = {"name": "ana", "secret": "tok"}
    refused = client.post("/login", data=form, follow_redirects=False)
    assert refused.status_code == 303
    assert refused.headers["location"] == "/login?notice=expired"
    assert "ana" not in client.get("/", follow_redirects=True).text  # not logged in


def test_an_unacknowledged_decision_is_not_recorded(
    setup: tuple[TestClient, ReviewStore, Writer],
) -> None:
    client, store, writer = setup
    log_in(client)
    page = client.get("/").text
    assert "harmscan v2" in page
    assert "Content-Security-Policy" in client.get("/").headers
    form = {"csrf": csrf_of(page), "request_id": "r1", "verdict": "harmful"}
    writer.fail = True
    failed = client.post("/decide", data=form, follow_redirects=False)
    assert failed.status_code == 503
    assert store.waiting() == 1
    assert store.holding("ana", "r1").request_id == "r1"  # still the reviewer's
    writer.fail = False
    assert client.post("/decide", data=form, follow_redirects=False).status_code == 303
    assert store.waiting() == 0
    assert [(d.id, d.decision, d.reviewer, d.model_version) for d in writer.written] == [
        ("r1", "harmful", "ana", "2")
    ]
    assert "Nothing waiting" in client.get("/").text


def test_unknown_verdicts_and_logged_out_posts(
    setup: tuple[TestClient, ReviewStore, Writer],
) -> None:
    client, _, writer = setup
    log_in(client)
    token = csrf_of(client.get("/").text)
    bad = {"csrf": token, "request_id": "r1", "verdict": "maybe"}
    assert client.post("/decide", data=bad).status_code == 400
    stranger = TestClient(client.app)
    response = stranger.post("/decide", data=bad, follow_redirects=False)
    # no session, no form token: nothing done, and a page to log in (not a bare 403)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?notice=expired"
    assert "Your session ended" in stranger.get(response.headers["location"]).text
    assert writer.written == []
    good = {"csrf": "not-this-sessions", "request_id": "r1", "verdict": "harmful"}
    stale = client.post("/decide", data=good, follow_redirects=False)
    assert stale.headers["location"] == "/?notice=stale"  # logged in: back to the queue
    assert "That page was out of date" in client.get(stale.headers["location"]).text
    assert writer.written == []


@pytest.mark.parametrize("request_id", ["..", ".", "a+b=c:d@e.f"])
def test_the_page_links_every_valid_id_to_its_image(tmp_path: Path, request_id: str) -> None:
    """Request ids "." and ".." are valid: a browser resolves /image/.. to / (percent-encoded
    too), so the page must link the image in a form that always reaches /image."""
    from urllib.parse import urljoin

    from tests.serving_support import RED, write_image

    source = write_image(tmp_path / "red.jpg", RED)
    store = ReviewStore(":memory:", claim_ttl_s=60)
    item = Item(request_id, "t", 0, 0, "harmscan", "1", "safe", 0.45, 0.5, str(source), None, 1.0)
    store.add([item], [("t", 0, 0)])
    context = ReviewContext(
        store=store,
        writer=Writer(),
        reader=InputReader([tmp_path], [], 1_000_000),
        login=Login(token=SecretStr("tok")),
        metrics=ReviewMetrics(store),
    )
    client = TestClient(create_app(context))
    log_in(client)
    src = re.search(r'<img id="image" src="([^"]+)"', client.get("/").text).group(1)  # type: ignore[union-attr]
    url = urljoin("http://testserver/", src.replace("&amp;", "&"))  # resolved as a browser does
    assert url.startswith("http://testserver/image?")
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"


def test_skipping_an_id_not_in_the_queue_is_refused(
    setup: tuple[TestClient, ReviewStore, Writer],
) -> None:
    client, store, _ = setup
    log_in(client)
    token = csrf_of(client.get("/").text)
    form = {"csrf": token, "request_id": "j" * 3000, "verdict": "skip"}
    refused = client.post("/decide", data=form, follow_redirects=False)
    assert refused.status_code == 303
    assert "not in the queue" in client.get(refused.headers["location"]).text
    assert store.get("j" * 3000) is None
    skipped = {"csrf": token, "request_id": "r1", "verdict": "skip"}
    assert client.post("/decide", data=skipped, follow_redirects=False).status_code == 303


def test_the_notice_box_shows_only_the_pages_own_messages(
    setup: tuple[TestClient, ReviewStore, Writer],
) -> None:
    client, _, _ = setup
    log_in(client)
    spoof = "Your session expired. Re-enter the token at http://evil.example"
    page = client.get("/", params={"notice": spoof}).text
    assert "evil.example" not in page
    assert 'role="status"' not in page
    assert NOTICES["decided"] in client.get("/", params={"notice": "decided"}).text


def test_pages_are_never_cached(setup: tuple[TestClient, ReviewStore, Writer]) -> None:
    client, _, _ = setup
    assert client.get("/login").headers["cache-control"] == "no-store"
    log_in(client)
    page = client.get("/")
    assert "/x.jpg" in page.text  # the item's source: private
    assert page.headers["cache-control"] == "no-store"


def test_a_copy_of_the_cookie_is_refused_after_logging_out(
    setup: tuple[TestClient, ReviewStore, Writer],
) -> None:
    client, _, writer = setup
    log_in(client)
    kept = client.cookies.get("harmscan_review")
    page = client.get("/")
    assert "ana" in page.text
    logged_out = client.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert logged_out.status_code == 303
    client.cookies.set("harmscan_review", kept)  # the signed cookie, replayed as it was
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    assert client.get("/image/r1").status_code == 401
    decide = {"csrf": csrf_of(page.text), "verdict": "harmful", "request_id": "r1"}
    refused = client.post("/decide", data=decide, follow_redirects=False)
    assert refused.headers["location"] == "/login?notice=expired"
    assert not writer.written
    client.cookies.clear()
    log_in(client)  # a new login is a new session
    assert "ana" in client.get("/").text


def test_a_file_changed_after_scoring_is_not_shown_as_the_scored_image(tmp_path: Path) -> None:
    """The result names the digest of the bytes scored: the page shows the image only while the
    file still holds them, and says so when it does not."""
    import hashlib

    from tests.serving_support import BLUE, RED, write_image

    source = write_image(tmp_path / "upload.jpg", RED)
    scored = hashlib.sha256(source.read_bytes()).hexdigest()
    store = ReviewStore(":memory:", claim_ttl_s=60)
    item = Item("r1", "t", 0, 0, "harmscan", "1", "safe", 0.45, 0.5, str(source), None, 1.0,
                scored)  # fmt: skip
    store.add([item], [("t", 0, 0)])
    writer = Writer()
    context = ReviewContext(
        store=store,
        writer=writer,
        reader=InputReader([tmp_path], [], 1_000_000),
        login=Login(token=SecretStr("tok")),
        metrics=ReviewMetrics(store),
    )
    client = TestClient(create_app(context))
    log_in(client)
    assert 'id="changed"' not in client.get("/").text
    assert client.get("/image", params={"id": "r1"}).content == source.read_bytes()
    write_image(source, BLUE)  # the user's upload replaced under the same name
    page = client.get("/").text
    assert 'id="changed"' in page
    assert "changed after the model scored it" in page
    image = client.get("/image", params={"id": "r1"})
    assert image.status_code == 409
    assert image.content != source.read_bytes()
    # the decision names the bytes it judged, so the ETL can tell the file changed
    form = {"csrf": csrf_of(page), "request_id": "r1", "verdict": "harmful"}
    assert client.post("/decide", data=form, follow_redirects=False).status_code == 303
    assert [d.sha256 for d in writer.written] == [scored]
