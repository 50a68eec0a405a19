"""Settings of the services around the pipeline: Prefect, the local stack, the review page."""

from __future__ import annotations

import re
import zoneinfo
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from conf.sections.base import Section

# The nicknames Prefect's cron schedules take in place of five fields.
CRON_NICKNAMES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# The five fields: name, lowest and highest number, the names it also takes.
_CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _DAYS),
)
# One item of a field's comma list: *, ?, a value or a range, with an optional /step.
_CRON_ITEM = re.compile(
    r"(?:\*|\?|(?P<low>[0-9a-z#]+)(?:-(?P<high>[0-9a-z]+))?)(?:/(?P<step>\d+))?"
)
# Day-of-week only: the nth weekday of the month (5#2, fri#2).
_WEEKDAY_OF_MONTH = re.compile(r"(?:[0-7]|sun|mon|tue|wed|thu|fri|sat)#[1-5]")
# "?" (no specific value) is taken by the two day fields only.
_QUESTION_FIELDS = ("day-of-month", "day-of-week")
# Names of the time zone database that are not zones Prefect schedules in.
_NOT_ZONES = frozenset({"Factory", "localtime", "posixrules"})


def cron_problem(cron: str) -> str | None:
    """What is wrong with the shape of a cron string, or None: five fields of values, ranges,
    lists and steps within each field's bounds, or a nickname (``@daily``). Prefect's own check
    (`stack.deploy.validate_schedule`) still runs at ``harmscan deploy``."""
    text = cron.strip()
    if text.startswith("@"):
        return None if text.lower() in CRON_NICKNAMES else "is not a nickname Prefect takes"
    fields = text.split()
    if len(fields) != len(_CRON_FIELDS):
        return f"has {len(fields)} field{'s' * (len(fields) != 1)}, not 5"
    for (name, low, high, names), field in zip(_CRON_FIELDS, fields, strict=True):
        for item in field.split(","):
            if not _item_fits(item.lower(), name, low, high, names):
                return f"has {item!r} in its {name} field ({low}-{high}" + (
                    f", {names[0]}-{names[-1]})" if len(names) > 1 else ")"
                )
    return None


def _item_fits(item: str, field: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    match = _CRON_ITEM.fullmatch(item)
    if match is None or match["step"] == "0":
        return False
    if item.startswith("?"):
        return field in _QUESTION_FIELDS
    ends = [v for v in (match["low"], match["high"]) if v is not None]
    if len(ends) == 1 and (
        (field == "day-of-month" and ends[0] == "l")  # the month's last day
        or (field == "day-of-week" and _WEEKDAY_OF_MONTH.fullmatch(ends[0]))
    ):
        return True
    return all(v in names or (v.isdigit() and low <= int(v) <= high) for v in ends)


def time_zone_problem(name: str) -> str | None:
    """Why ``name`` is not an IANA time zone here, or None (also when this host has no time zone
    database at all: then `stack.deploy.validate_schedule` is the only check)."""
    # The database's own list of zones: ZoneInfo also opens its posix/ and right/ copies and
    # posixrules, which Prefect refuses.
    available = zoneinfo.available_timezones()
    if available and (name not in available or name in _NOT_ZONES):
        return "is not an IANA time zone"
    return None


class PrefectSettings(Section):
    """Prefect API, work pool and schedules."""

    api_url: str | None = None
    work_pool: str = "harmscan-process"
    retrain_cron: str = "0 2 * * *"
    timezone: str = "UTC"
    # Longest a flow run may take before it fails as TimedOut (null: no limit). The nightly
    # retrain must end before the next night; serve is meant to run until cancelled.
    etl_timeout_s: float | None = Field(default=6 * 3600, gt=0)
    train_timeout_s: float | None = Field(default=12 * 3600, gt=0)
    retrain_timeout_s: float | None = Field(default=20 * 3600, gt=0)
    serve_timeout_s: float | None = Field(default=None, gt=0)

    @field_validator("retrain_cron")
    @classmethod
    def _a_cron_string(cls, value: str) -> str:
        problem = cron_problem(value)
        if problem is not None:
            raise ValueError(
                f"prefect.retrain_cron {value!r} {problem}: write five fields, minute hour "
                f"day-of-month month day-of-week (e.g. '0 2 * * *', '30 1 * * mon-fri'), or one "
                f"of {', '.join(CRON_NICKNAMES)}"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _a_time_zone(cls, value: str) -> str:
        problem = time_zone_problem(value)
        if problem is not None:
            raise ValueError(
                f"prefect.timezone {value!r} {problem} (valid examples: UTC, Europe/Berlin, "
                "America/New_York)"
            )
        return value


class StackSettings(Section):
    """Ports of the local, loopback-only service stack."""

    host: str = "127.0.0.1"
    kafka_port: int = Field(default=9092, ge=1, le=65535)
    kafka_controller_port: int = Field(default=9093, ge=1, le=65535)
    mlflow_port: int = Field(default=5000, ge=1, le=65535)
    prefect_port: int = Field(default=4200, ge=1, le=65535)
    # the worker's /health endpoint
    prefect_worker_port: int = Field(default=4201, ge=1, le=65535)
    s3_port: int = Field(default=9000, ge=1, le=65535)
    metadata_port: int = Field(default=8088, ge=1, le=65535)
    # the reviewers' page (review.port of the stack)
    review_port: int = Field(default=8095, ge=1, le=65535)

    @model_validator(mode="after")
    def _ports_apart(self) -> StackSettings:
        by_port: dict[int, list[str]] = {}
        for name, value in self:
            if name.endswith("_port"):
                by_port.setdefault(value, []).append(f"stack.{name}")
        shared = [names for names in by_port.values() if len(names) > 1]
        if shared:
            clashes = "; ".join(f"{' and '.join(names)}" for names in shared)
            raise ValueError(
                f"each service of the stack needs a port of its own: {clashes} are the same "
                "port; move one of them"
            )
        return self


class ReviewSettings(Section):
    """The reviewers' web page (``harmscan review``) and what the ETL takes from its decisions."""

    host: str = "127.0.0.1"
    port: int = Field(default=8095, ge=0, le=65535)
    # Login: a shared token (each reviewer also gives a name), or one user and password.
    # With neither set, ``harmscan review`` makes a random token and writes it to token_file.
    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    # Signs the session cookie; None = a random key per start (sessions end with the process).
    session_secret: SecretStr | None = None
    session_max_age_s: int = Field(default=8 * 3600, ge=60)
    group_id: str = "harmscan-review"
    # A reviewer's claim on an item lapses after this long; then another reviewer may get it.
    claim_ttl_s: float = Field(default=300.0, gt=0)
    # The queue and claims store (SQLite); None = <paths.services>/review/queue.sqlite.
    store_path: Path | None = None
    delivery_timeout_s: float = Field(default=10.0, gt=0)
    # The ETL: take reviewed images as a labelled source (domain "reviewed")...
    use_in_training: bool = True
    # ...and never put them into the test split the promotion gate compares on, unless true.
    allow_in_test: bool = False

    @model_validator(mode="after")
    def _login_pairs(self) -> ReviewSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("review.username and review.password go together; set both or none")
        return self
