"""Hot swaps: a background thread polls the served alias and prepares a new champion off the
hot path; the consumer takes it between batches (a plain reference change)."""

from __future__ import annotations

import logging
import threading

from serving.model import LoadedModel, ModelUnavailable
from serving.source import ModelSource

logger = logging.getLogger(__name__)


class ChampionWatcher:
    """Polls the alias in a background thread and prepares a new model when it moves.

    The consumer calls `take` between batches; the swap itself is then a plain reference change.

    Args:
        source: The registry source.
        current_version: Version served now.
        interval_s: Seconds between alias checks.
    """

    def __init__(self, source: ModelSource, current_version: str, interval_s: float) -> None:
        self.source = source
        self.interval_s = interval_s
        self._known = current_version
        self._ready: LoadedModel | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="champion-watcher", daemon=True)

    def start(self) -> ChampionWatcher:
        """Start polling."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling and wait for the thread."""
        self._stop.set()
        self._thread.join(timeout=30)

    def take(self) -> LoadedModel | None:
        """The new champion, if one was prepared since the last call."""
        with self._lock:
            ready, self._ready = self._ready, None
        return ready

    def check_now(self) -> None:
        """One alias check (the thread calls this every interval)."""
        try:
            version = self.source.current_version()
        except ModelUnavailable as exc:
            logger.warning("champion check failed, keeping v%s: %s", self._known, exc)
            return
        if version == self._known:
            return
        logger.info("alias %s moved: v%s -> v%s; loading", self.source.uri, self._known, version)
        try:
            model = self.source.load(version)
        except ModelUnavailable as exc:
            logger.error("champion v%s not loadable, keeping v%s: %s", version, self._known, exc)
            return
        with self._lock:
            if self._ready is not None:
                self._ready.discard()
            self._ready = model
            self._known = version

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check_now()
