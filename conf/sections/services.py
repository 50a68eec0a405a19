"""Settings of the services around the pipeline: Prefect, the local stack, the review page."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from conf.sections.base import Section


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
