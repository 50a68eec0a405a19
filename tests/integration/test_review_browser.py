"""The review page in a real browser (headless Chromium) against the real app and broker.

Log in (a bad login is refused), see the queued images, decide with one key press each, and find
the decisions on the topic; a second reviewer never gets the first one's item; an image outside
the allowed roots is neither served nor opened. Set
HARMSCAN_TEST_REVIEW_SCREENSHOT=docs/review.png to keep a screenshot of the page.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harmscan.decisions import decode_decision
from review.service import ReviewService
from stack.process import free_port
from tests.kafka_support import read_topic
from tests.review_support import (
    TOKEN,
    review_result,
    review_settings,
    running_app,
    send_review,
    wait_for,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

MIRROR = Path(__file__).resolve().parents[2] / "mirror"


def mirror_pictures(groups: tuple[str, ...]) -> list[Path]:
    """One sound test image of the mirror per group."""
    import csv

    with (MIRROR / "expected.csv").open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["Subset"] == "test" and not r["Defect"]]
    first = {}
    for row in sorted(rows, key=lambda r: r["ImageID"]):
        first.setdefault(row["Group"], row["ImageID"])
    return [MIRROR / "images" / "test" / f"{first[g]}.jpg" for g in groups]


def log_in(page: Any, url: str, name: str, secret: str) -> int:
    page.goto(f"{url}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=secret]", secret)
    with page.expect_navigation() as navigation:
        page.click("button[type=submit]")
    response = navigation.value
    return int(response.status) if response is not None else 0


def shown_id(page: Any) -> str | None:
    field = page.query_selector("input[name=request_id]")
    return None if field is None else str(field.get_attribute("value"))


def image_loaded(page: Any) -> bool:
    return bool(page.evaluate("() => { const i = document.getElementById('image');"
                              " return !!i && i.complete && i.naturalWidth > 0; }"))  # fmt: skip


def test_review_in_the_browser(
    browser_page: Callable[[], Any],
    make_settings: Callable[..., Any],
    kafka_bootstrap: str,
    unique: Callable[[str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, outside = tmp_path / "images", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    pictures = mirror_pictures(("knife", "dog", "handgun"))
    paths = [Path(shutil.copy(p, root / p.name)) for p in pictures]
    secret = Path(shutil.copy(pictures[0], outside / "secret.jpg"))
    settings = review_settings(make_settings, kafka_bootstrap, unique, [root])
    results = [
        review_result("img-1", str(paths[0]), p=0.52, label="harmful", age_s=900),
        review_result("img-2", str(paths[1]), p=0.44, version="2", age_s=600),
        review_result("img-3", str(paths[2]), p=0.57, label="harmful", age_s=300),
        review_result("img-out", f"{root}/../outside/secret.jpg", age_s=60),
    ]
    send_review(kafka_bootstrap, settings.kafka.review_topic, results)
    opened: list[str] = []
    real_open = os.open

    def spy_open(path: Any, *args: Any, **kwargs: Any) -> int:
        opened.append(os.path.realpath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy_open)
    service = ReviewService.build(settings)
    with running_app(service, free_port()) as url:
        wait_for(lambda: service.store.waiting() == 4, what="4 items in the queue")
        ana, bob = browser_page(), browser_page()
        assert log_in(ana, url, "ana", "not-the-token") == 401
        assert "login refused" in ana.content()
        assert log_in(ana, url, "ana", TOKEN) == 200
        assert shown_id(ana) == "img-1"
        wait_for(lambda: image_loaded(ana), 10, "the first image")
        assert "4 waiting" in ana.inner_text("#waiting")
        details = ana.inner_text("#details")
        assert "0.520" in details
        assert "harmscan v1" in details
        assert "img-1" in details

        assert log_in(bob, url, "bob", TOKEN) == 200
        assert shown_id(bob) == "img-2"  # not ana's

        with ana.expect_navigation():
            ana.keyboard.press("h")  # harmful: one key press
        assert shown_id(ana) == "img-3"
        with bob.expect_navigation():
            bob.keyboard.press("s")
        # bob's next item lies outside the allowed roots: refused, never opened.
        assert shown_id(bob) == "img-out"
        assert not image_loaded(bob)
        assert bob.request.get(f"{url}/image/img-out").status == 403
        assert os.path.realpath(secret) not in opened
        with bob.expect_navigation():
            bob.keyboard.press("s")
        wait_for(lambda: image_loaded(ana), 10, "the third image")
        screenshot = os.environ.get("HARMSCAN_TEST_REVIEW_SCREENSHOT")
        if screenshot:
            ana.screenshot(path=screenshot)
        with ana.expect_navigation():
            ana.keyboard.press("k")  # skip: nothing else is free, so img-3 comes back
        assert shown_id(ana) == "img-3"
        with ana.expect_navigation():
            ana.keyboard.press("h")
        assert "Nothing waiting" in ana.content()

    messages = read_topic(
        kafka_bootstrap, settings.kafka.decisions_topic, until=lambda m: len(m) >= 4, timeout=30
    )
    decisions = {d.id: d for d in (decode_decision(m.value()) for m in messages)}  # type: ignore[attr-defined]
    assert {k: (d.decision, d.reviewer) for k, d in decisions.items()} == {
        "img-1": ("harmful", "ana"),
        "img-2": ("safe", "bob"),
        "img-3": ("harmful", "ana"),
        "img-out": ("safe", "bob"),
    }


def test_dot_ids_show_their_images_in_the_browser(
    browser_page: Callable[[], Any],
    make_settings: Callable[..., Any],
    kafka_bootstrap: str,
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    """Request ids "." and ".." are valid; the browser must not resolve their image away."""
    root = tmp_path / "images"
    root.mkdir()
    pictures = mirror_pictures(("knife", "dog"))
    paths = [Path(shutil.copy(p, root / p.name)) for p in pictures]
    settings = review_settings(make_settings, kafka_bootstrap, unique, [root])
    results = [
        review_result("..", str(paths[0]), age_s=600),
        review_result(".", str(paths[1]), age_s=300),
    ]
    send_review(kafka_bootstrap, settings.kafka.review_topic, results)
    service = ReviewService.build(settings)
    with running_app(service, free_port()) as url:
        wait_for(lambda: service.store.waiting() == 2, what="2 items in the queue")
        ana = browser_page()
        assert log_in(ana, url, "ana", TOKEN) == 200
        for expected in ("..", "."):
            assert shown_id(ana) == expected
            wait_for(lambda: image_loaded(ana), 10, f"the image of {expected!r}")
            with ana.expect_navigation():
                ana.keyboard.press("s")
        assert "Nothing waiting" in ana.content()
