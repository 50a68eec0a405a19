"""The review page while a decision waits on a slow broker: every other request is answered (the
blocking work runs off the event loop), and racing decisions on one item still give exactly one
decision. The app runs on uvicorn; the writer is the real one against a broker that accepts
connections and never answers, or a fake that blocks until the test lets it go."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from harmscan.decisions import Decision
from review.app import ReviewContext, create_app
from review.auth import Login
from review.kafka import DecisionWriter
from review.metrics import ReviewMetrics
from review.store import Item, ReviewStore
from serving.inputs import InputReader
from stack.process import free_port
from tests.review_support import serving_app

TOKEN = "tok"
ANSWER_S = 20.0  # how long a request that should be answered may take (a busy machine)


class BlockingWriter:
    """Holds every write until `release` is set; records what it was given."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.written: list[Decision] = []

    def write(self, decision: Decision) -> None:
        self.entered.set()
        assert self.release.wait(60), "the test never let the write go"
        self.written.append(decision)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_store(clock: Clock, count: int = 3) -> ReviewStore:
    """r0, r1, ... waiting, oldest first."""
    store = ReviewStore(":memory:", claim_ttl_s=60, clock=clock)
    items = [
        Item(f"r{i}", "t", 0, i, "harmscan", "1", "safe", 0.45, 0.5, "/x.jpg", None, 900.0 + i)
        for i in range(count)
    ]
    store.add(items, [("t", 0, i) for i in range(count)])
    return store


def context(store: ReviewStore, writer: Any, tmp_path: Path) -> ReviewContext:
    return ReviewContext(
        store=store,
        writer=writer,
        reader=InputReader([tmp_path], [], 1000),
        login=Login(token=SecretStr(TOKEN)),
        metrics=ReviewMetrics(store),
    )


def reviewer(url: str, name: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=ANSWER_S)
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    response = client.post("/login", data={"csrf": csrf, "name": name, "secret": TOKEN})
    assert response.status_code == 303
    return client


def page(client: httpx.Client) -> tuple[str | None, str, str]:
    """The request id shown to this reviewer, the form token and the page."""
    text = client.get("/").text
    shown = re.search(r'name="request_id" value="([^"]+)"', text)
    csrf = re.search(r'name="csrf" value="([^"]+)"', text).group(1)  # type: ignore[union-attr]
    return (shown.group(1) if shown else None), csrf, text


def decide(client: httpx.Client, csrf: str, request_id: str, verdict: str) -> httpx.Response:
    form = {"csrf": csrf, "request_id": request_id, "verdict": verdict}
    return client.post("/decide", data=form, timeout=90)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4) as executor:
        yield executor


@pytest.fixture
def silent_broker() -> Iterator[str]:
    """A TCP port that accepts connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for connection in accepted:
            connection.close()
        listener.close()


def test_the_page_answers_while_a_decision_waits_on_a_silent_broker(
    make_settings: Callable[..., Any],
    silent_broker: str,
    tmp_path: Path,
    pool: ThreadPoolExecutor,
) -> None:
    settings = make_settings(
        f"kafka.bootstrap_servers={silent_broker}", "review.delivery_timeout_s=6"
    )
    writer = DecisionWriter(settings)
    entered, returned = threading.Event(), threading.Event()
    real_write = writer.write

    def spied(decision: Decision) -> None:
        entered.set()
        try:
            real_write(decision)
        finally:
            returned.set()

    writer.write = spied  # type: ignore[method-assign]
    store = make_store(Clock())
    try:
        with serving_app(create_app(context(store, writer, tmp_path)), free_port()) as url:
            ana, bob = reviewer(url, "ana"), reviewer(url, "bob")
            shown, csrf, _ = page(ana)
            assert shown == "r0"
            waiting: Future[httpx.Response] = pool.submit(decide, ana, csrf, "r0", "harmful")
            assert entered.wait(ANSWER_S)
            # Everything else is answered while the writer still waits for the broker.
            with httpx.Client(base_url=url, timeout=ANSWER_S) as anyone:
                assert anyone.get("/health").text == "ok"
                assert anyone.get("/metrics").status_code == 200
            assert page(bob)[0] == "r1"
            assert not returned.is_set(), "the decision finished before the page answered"
            refused = waiting.result()
            assert refused.status_code == 503  # never acknowledged: not recorded
            assert store.waiting() == 3
    finally:
        writer.close()
        store.close()


def test_racing_decisions_on_one_item_give_exactly_one(
    tmp_path: Path, pool: ThreadPoolExecutor
) -> None:
    clock, writer = Clock(), BlockingWriter()
    store = make_store(clock)
    with serving_app(create_app(context(store, writer, tmp_path)), free_port()) as url:
        try:
            ana, bob = reviewer(url, "ana"), reviewer(url, "bob")
            shown, csrf, _ = page(ana)
            assert shown == "r0"
            clock.now += 120  # ana's claim lapses: bob could take r0 now
            first = pool.submit(decide, ana, csrf, "r0", "harmful")
            assert writer.entered.wait(ANSWER_S)
            # While ana's decision waits for the broker: her double submit, and bob, who is not
            # handed r0 and may not decide it.
            double = decide(ana, csrf, "r0", "harmful")
            assert double.status_code == 303
            assert "being decided" in ana.get(double.headers["location"]).text  # ana now has r1
            bob_shown, bob_csrf, _ = page(bob)
            assert bob_shown == "r2"
            assert decide(bob, bob_csrf, "r0", "safe").status_code == 303
        finally:
            writer.release.set()
        assert first.result().status_code == 303
        assert [(d.id, d.reviewer) for d in writer.written] == [("r0", "ana")]
        assert store.waiting() == 2
        again = decide(bob, bob_csrf, "r0", "safe")
        assert "decided already" in bob.get(again.headers["location"]).text
        assert len(writer.written) == 1
    store.close()
