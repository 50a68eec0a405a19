"""Register harmscan's flows as Prefect deployments on a process work pool (no image build).

Four deployments, all named ``harmscan``: ``etl/harmscan``, ``train/harmscan``,
``retrain/harmscan`` (nightly, on ``prefect.retrain_cron`` in ``prefect.timezone``; a night whose
run would start while the last one still runs is cancelled, not queued: concurrency limit 1 with
the ``CANCEL_NEW`` collision strategy) and ``serve/harmscan`` (the long-running Kafka consumer;
an automation starts a new run whenever one crashes, e.g. its process was killed).
Each is loaded with
``flow.from_source(<repo root>, "flows/<name>.py:<flow>")``, so its parameters, with their types
and defaults, come from the flow's signature: the Prefect UI shows them as a form and the server
rejects a run whose parameters do not validate (``enforce_parameter_schema``).

Flow runs read their settings like the CLI does; the deployments pass them by environment
(``HARMSCAN_PROFILE`` + ``HARMSCAN_CONFIG``, the resolved settings written to a YAML file by
`stack.settings_file.write_settings_file`), so a worker started anywhere runs with the settings that
``harmscan deploy`` resolved.
"""

from __future__ import annotations

import contextlib
import io
import logging
import zoneinfo
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from conf.settings import Settings
from stack.process import http_ok

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEPLOYMENT_NAME = "harmscan"
FLOWS = ("etl", "train", "retrain", "serve")


class DeployError(RuntimeError):
    """A deployment could not be registered; the message names what and why."""


class PrefectUnreachable(DeployError):
    """The Prefect API of ``prefect.api_url`` does not answer."""


@dataclass(frozen=True)
class DeploymentSpec:
    """What one deployment is made of.

    Attributes:
        flow: Short name (``etl``, ``train``, ``retrain``, ``serve``).
        entrypoint: ``path/to/file.py:function``, relative to the source folder.
        description: Shown in the Prefect UI.
        cron: Cron schedule, or None for runs on demand only.
        timezone: IANA time zone of the cron schedule.
        concurrency_limit: Most runs at once (None: no limit).
        cancel_new: At the limit, cancel a new run (True) instead of queueing it.
        restart_on_crash: An automation runs the deployment again when a run crashes.
        tags: Prefect tags.
        parameters: Default parameters stored on the deployment (beyond the flow's own).
    """

    flow: str
    entrypoint: str
    description: str
    cron: str | None = None
    timezone: str = "UTC"
    concurrency_limit: int | None = None
    cancel_new: bool = False
    restart_on_crash: bool = False
    tags: tuple[str, ...] = ("harmscan",)
    parameters: dict[str, Any] = field(default_factory=dict)


def deployment_specs(settings: Settings) -> list[DeploymentSpec]:
    """The four deployments of these settings, schedule validated.

    Raises:
        DeployError: ``prefect.retrain_cron`` or ``prefect.timezone`` is invalid.
    """
    cron, timezone = settings.prefect.retrain_cron, settings.prefect.timezone
    validate_schedule(cron, timezone)
    return [
        DeploymentSpec(
            "etl",
            "flows/etl.py:etl",
            "Open Images metadata -> class filter -> image download -> verified split.",
        ),
        DeploymentSpec(
            "train",
            "flows/train.py:train",
            "Fine-tune, evaluate and register the architectures on a dataset manifest.",
        ),
        DeploymentSpec(
            "retrain",
            "flows/retrain.py:retrain",
            f"Nightly: ETL + train + promote the winner to @{settings.serving.model_alias} "
            f"if it beats the current one. Schedule: {cron} ({timezone}).",
            cron=cron,
            timezone=timezone,
            concurrency_limit=1,
            cancel_new=True,
            tags=("harmscan", "nightly"),
        ),
        DeploymentSpec(
            "serve",
            "flows/serve.py:serve",
            "The long-running Kafka consumer serving models:/<model>@champion; "
            "run it N times to scale out (one consumer group). A crashed run is started again.",
            restart_on_crash=True,
            tags=("harmscan", "serving"),
        ),
    ]


def validate_schedule(cron: str, timezone: str) -> None:
    """Check a cron string and an IANA time zone, with errors that name the bad value.

    Raises:
        DeployError: Either is invalid.
    """
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise DeployError(
            f"prefect.timezone {timezone!r} is not an IANA time zone "
            "(valid examples: UTC, Europe/Berlin, America/New_York)"
        ) from None
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    try:
        CronSchedule(cron="0 0 * * *", timezone=timezone)
    except ValidationError:  # a zone of this host's database that Prefect does not know
        raise DeployError(
            f"prefect.timezone {timezone!r} is not a time zone Prefect schedules in "
            "(valid examples: UTC, Europe/Berlin, America/New_York)"
        ) from None
    try:
        CronSchedule(cron=cron, timezone=timezone)
    except ValidationError:
        raise DeployError(
            f"prefect.retrain_cron {cron!r} is not a valid cron string "
            "(five fields: minute hour day-of-month month day-of-week, e.g. '0 2 * * *')"
        ) from None


@contextlib.contextmanager
def prefect_api(api_url: str | None) -> Iterator[None]:
    """Point the Prefect client at ``api_url`` inside the block (None: leave it as it is)."""
    if not api_url:
        yield
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        yield


def ensure_work_pool(pool: str) -> bool:
    """Create the process work pool ``pool`` unless it exists; True if it was created.

    Raises:
        DeployError: A pool of that name exists with another type than ``process``.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            existing = client.read_work_pool(pool)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
            logger.info("created process work pool %s", pool)
            return True
    if existing.type != "process":
        raise DeployError(
            f"work pool {pool!r} exists with type {existing.type!r}; harmscan needs a 'process' "
            "pool: choose another prefect.work_pool or delete that pool"
        )
    return False


def deploy(
    settings: Settings,
    flows: Sequence[str] = FLOWS,
    source: Path = REPO_ROOT,
    env: dict[str, str] | None = None,
) -> dict[str, str]:
    """Register deployments of ``flows`` on the work pool of these settings.

    Args:
        settings: The resolved settings (``prefect.*``; written for the flow runs to read).
        flows: Which of etl, train, retrain, serve.
        source: The folder the worker runs the flows from (the repository root).
        env: Extra variables for the flow runs; default: the settings file variables.

    Returns:
        ``"<flow>/harmscan"`` -> deployment id, in the order given.

    Raises:
        DeployError: An unknown flow name, a missing flow module, a bad schedule, a pool clash.
    """
    unknown = sorted(set(flows) - set(FLOWS))
    if unknown:
        raise DeployError(f"unknown flows {unknown}; valid: {', '.join(FLOWS)}")
    from stack.settings_file import flow_run_env

    specs = [s for s in deployment_specs(settings) if s.flow in flows]
    missing = [s.entrypoint for s in specs if not (source / s.entrypoint.split(":")[0]).is_file()]
    if missing:
        raise DeployError(f"flow modules not found under {source}: {', '.join(missing)}")
    url = settings.prefect.api_url
    if url and not http_ok(f"{url.rstrip('/')}/health", timeout=10.0):
        # Checked before the flow runs' settings file is written: nothing changes.
        raise PrefectUnreachable(
            f"cannot reach the Prefect API at {url} (prefect.api_url): start the local stack "
            "(harmscan up) or change prefect.api_url"
        )
    env = flow_run_env(settings) if env is None else env
    deployed: dict[str, str] = {}
    with prefect_api(settings.prefect.api_url):
        ensure_work_pool(settings.prefect.work_pool)
        for spec in specs:
            full_name, deployment_id = _deploy_one(spec, settings, source, env)
            deployed[full_name] = deployment_id
            if spec.restart_on_crash:
                restart_on_crash(full_name, deployment_id)
            logger.info("deployed %s (%s)", full_name, deployment_id)
    return deployed


def _deploy_one(
    spec: DeploymentSpec, settings: Settings, source: Path, env: dict[str, str]
) -> tuple[str, str]:
    from prefect import flow
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.schedules import Cron

    loaded = flow.from_source(source=str(source), entrypoint=spec.entrypoint)
    limit: int | ConcurrencyLimitConfig | None = spec.concurrency_limit
    if spec.concurrency_limit is not None and spec.cancel_new:
        limit = ConcurrencyLimitConfig(
            limit=spec.concurrency_limit, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
        )
    schedules = [Cron(spec.cron, timezone=spec.timezone)] if spec.cron else []
    # deploy() prints a table per deployment to stdout; we log one line each instead.
    with contextlib.redirect_stdout(io.StringIO()):
        deployment_id = loaded.deploy(
            name=DEPLOYMENT_NAME,
            work_pool_name=settings.prefect.work_pool,
            build=False,
            push=False,
            schedules=schedules,
            parameters=spec.parameters,
            job_variables={"env": env, "working_dir": str(source)},
            description=spec.description,
            tags=list(spec.tags),
            concurrency_limit=limit,
            enforce_parameter_schema=True,
            print_next_steps=False,
            ignore_warnings=True,
        )
    return f"{loaded.name}/{DEPLOYMENT_NAME}", str(deployment_id)


def restart_on_crash(full_name: str, deployment_id: str) -> str:
    """An automation that runs deployment ``full_name`` again whenever one of its runs crashes.

    A run is Crashed when its process ended without reporting a final state (killed, out of
    memory, the host went down); the worker reports it and the server emits
    ``prefect.flow-run.Crashed``. Failed or cancelled runs are not restarted. The automation is
    named after the deployment and replaced on each deploy, so there is one per deployment.

    Returns:
        The automation's id.
    """
    from prefect.client.orchestration import get_client
    from prefect.events.actions import RunDeployment
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    name = f"restart {full_name} on crash"
    automation = AutomationCore(
        name=name,
        description=f"Start {full_name} again when a run of it crashes (harmscan deploy).",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Crashed"},
            match_related={"prefect.resource.id": f"prefect.deployment.{deployment_id}"},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[RunDeployment(source="selected", deployment_id=UUID(deployment_id))],
    )
    with get_client(sync_client=True) as client:
        for old in client.read_automations_by_name(name):
            client.delete_automation(old.id)
        return str(client.create_automation(automation))
