"""A reviewer's decision on an uncertain image, and its JSON codec.

Decisions live on a compacted topic (``kafka.decisions_topic``) keyed by request id, so the last
decision on a request wins. One decision names the verdict, who made it and when, and the model
result it judged (so agreement and overturns can be counted per model version without the review
topic)::

    {"v": 1, "id": "7f3c...", "decision": "harmful", "reviewer": "ana", "decided_at": 1732519260.5,
     "model_name": "harmscan", "model_version": "3", "model_label": "safe", "p_harmful": 0.47,
     "threshold": 0.5, "source": "/srv/images/gun.jpg", "sha256": "9f86d0..."}

Pure: both the review page and the ETL use it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from harmscan.digests import is_sha256_hex

DECISION_SCHEMA_VERSION = 1
# Header of a review-topic message carrying the original inline request (its image bytes).
INLINE_REQUEST_HEADER = "harmscan-inline-request"

Verdict = Literal["harmful", "safe"]
VERDICTS: tuple[str, ...] = get_args(Verdict)


class DecisionError(ValueError):
    """A decision message does not follow the schema; the message says what is wrong."""


@dataclass(frozen=True)
class Decision:
    """One reviewer's verdict on one request.

    Attributes:
        id: The request id (also the message key).
        decision: ``harmful`` or ``safe``.
        reviewer: Who decided.
        decided_at: Unix time of the decision.
        model_name: Registered model whose result was reviewed.
        model_version: Its version.
        model_label: The label the model gave.
        p_harmful: The model's harmful probability.
        threshold: The threshold the model's label was decided with.
        source: Where the image came from (path, ``s3://`` URI, or ``inline``).
        sha256: The SHA-256 (hex) of the bytes the model scored and the reviewer saw; None
            when the result named none (a consumer from before results carried it). The ETL
            takes the image only if its source still holds these bytes.
        v: Schema version.
    """

    id: str
    decision: Verdict
    reviewer: str
    decided_at: float
    model_name: str
    model_version: str
    model_label: str
    p_harmful: float
    threshold: float
    source: str
    sha256: str | None = None
    v: int = DECISION_SCHEMA_VERSION

    @property
    def agrees(self) -> bool:
        """Whether the reviewer kept the model's label."""
        return self.decision == self.model_label


def encode_decision(decision: Decision) -> bytes:
    """Encode a decision as compact JSON.

    Raises:
        DecisionError: An unknown verdict or an empty id or reviewer.
    """
    _check(asdict(decision))
    return json.dumps(asdict(decision), separators=(",", ":")).encode()


def decode_decision(value: bytes | None) -> Decision:
    """Parse and validate a decision message.

    Raises:
        DecisionError: Not JSON, another schema version, or a missing or bad field.
    """
    if not value:
        raise DecisionError("empty decision message")
    try:
        body = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecisionError(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise DecisionError(f"a decision is a JSON object, not {type(body).__name__}")
    if body.get("v") != DECISION_SCHEMA_VERSION:
        raise DecisionError(
            f"unsupported decision schema version {body.get('v')!r}; "
            f"valid: {DECISION_SCHEMA_VERSION}"
        )
    _check(body)
    fields = set(Decision.__dataclass_fields__)
    missing = sorted(fields - set(body) - _OPTIONAL)
    if missing:
        raise DecisionError(f"decision lacks fields {missing}")
    try:
        return Decision(**{k: body[k] for k in fields if k in body})
    except TypeError as exc:
        raise DecisionError(str(exc)) from None


# Fields added after the first decisions were written: a decision may lack them.
_OPTIONAL = frozenset({"sha256"})


def _check(body: dict[str, Any]) -> None:
    digest = body.get("sha256")
    if digest is not None and not is_sha256_hex(digest):
        raise DecisionError(f"sha256 must be null or 64 lowercase hex digits, not {digest!r:.40}")
    if body.get("decision") not in VERDICTS:
        raise DecisionError(
            f"decision must be one of {', '.join(VERDICTS)}, not {body.get('decision')!r}"
        )
    for name in ("id", "reviewer"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise DecisionError(f"{name} must be a non-empty string")
    for name in ("decided_at", "p_harmful", "threshold"):
        value = body.get(name)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise DecisionError(f"{name} must be a finite number, not {value!r}")
