"""How reading a request's image source fails: the input's fault, or the infrastructure's."""

from __future__ import annotations

from serving.headers import RejectReason


class InputRejected(Exception):
    """The input itself is bad; it goes to the dead-letter topic with ``reason``."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: RejectReason = reason
        self.detail = detail


class SourceUnavailable(RuntimeError):
    """An image source could not be reached (infrastructure); the batch is retried."""
