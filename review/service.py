"""``harmscan review``: the review page with its store, feed and decisions writer, on uvicorn.

The app binds ``review.host`` (loopback by default). With no login configured, a random token is
made and written to ``<paths.services>/review/token`` (mode 0600) for the operator to hand out.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from pydantic import SecretStr

from conf.settings import Settings
from review.app import ReviewContext, create_app
from review.auth import Login, new_token
from review.kafka import DecisionWriter, ReviewFeed, ensure_review_topics
from review.metrics import ReviewMetrics
from review.store import ReviewStore
from serving.inputs import reader_for

logger = logging.getLogger(__name__)


def review_dir(settings: Settings) -> Path:
    """Where the review app keeps its store and generated token."""
    return settings.paths.services / "review"


def store_path(settings: Settings) -> Path:
    """The SQLite file of the queue and claims."""
    return settings.review.store_path or review_dir(settings) / "queue.sqlite"


def token_file(settings: Settings) -> Path:
    """Where a generated login token is written."""
    return review_dir(settings) / "token"


def ensure_login(settings: Settings) -> Login:
    """The configured login, or a token login whose token is generated into `token_file`."""
    review = settings.review
    if review.token is not None or review.username is not None:
        return Login.from_settings(review)
    path = token_file(settings)
    if path.exists():
        token = path.read_text().strip()
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        token = new_token()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
    logger.info("no review.token set: log in with the token in %s", path)
    return Login.from_settings(review, SecretStr(token))


@dataclass
class ReviewService:
    """The parts of a running review app, for the CLI, the stack and tests."""

    settings: Settings
    store: ReviewStore
    feed: ReviewFeed
    writer: DecisionWriter
    context: ReviewContext

    @classmethod
    def build(cls, settings: Settings, store: ReviewStore | None = None) -> ReviewService:
        """Create the topics, open the store, and wire the app's context."""
        ensure_review_topics(settings)
        review = settings.review
        store = store or ReviewStore(store_path(settings), review.claim_ttl_s)
        metrics = ReviewMetrics(store)
        feed = ReviewFeed(settings, store, metrics=metrics)
        writer = DecisionWriter(settings)
        context = ReviewContext(
            store=store,
            writer=writer,
            reader=reader_for(settings.serving),
            login=ensure_login(settings),
            metrics=metrics,
            session_max_age_s=review.session_max_age_s,
            on_decided=feed.commit_wanted.set,
            problem=feed.problem,
            max_pixels=settings.serving.max_pixels,
        )
        if review.session_secret is not None:
            context.session_secret = review.session_secret.get_secret_value()
        return cls(settings, store, feed, writer, context)

    def app(self) -> FastAPI:
        """The FastAPI app."""
        return create_app(self.context)

    def run(self, stop: threading.Event | None = None) -> None:
        """Serve until Ctrl-C/SIGTERM (uvicorn's handlers) or ``stop``; then close everything."""
        import uvicorn

        review = self.settings.review
        config = uvicorn.Config(
            self.app(), host=review.host, port=review.port, log_level="warning", access_log=False
        )
        server = uvicorn.Server(config)
        self.feed.start()
        if stop is not None:

            def watch() -> None:
                stop.wait()
                server.should_exit = True

            threading.Thread(target=watch, daemon=True).start()
        logger.info("review page on http://%s:%d", review.host, review.port)
        try:
            server.run()
        finally:
            self.close()

    def close(self) -> None:
        """Stop the feed (it commits), deliver pending decisions, close the store."""
        self.feed.stop()
        self.writer.close()
        self.store.close()
