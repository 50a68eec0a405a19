"""What every flow shares: its settings from a `SettingsSource`, its time limit, its failure note.

- `resolve`: the flow's ``source`` parameter (or the process's own profile and files when None)
  plus its typed parameters, as one frozen `Settings`.
- `time_limit`: the body of a flow runs under ``prefect.<flow>_timeout_s``; a run past it fails as
  ``TimedOut`` with a message that names the setting. It lives in the body (not in ``@flow``)
  because a deployment's run loads the flow from its entrypoint, where only the settings know
  the limit.
- `failure_note`: the ``on_failure`` hook of every flow: a markdown artifact with the error and
  the settings that shape that flow, so the Prefect UI says what failed and what to change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from conf.loader import SettingsSource, dump_settings
from conf.settings import Settings

# The settings sections a failure of each flow is most likely about.
RELEVANT: dict[str, tuple[str, ...]] = {
    "etl": ("profile", "paths.", "openimages.", "etl.", "prefect.etl_timeout_s"),
    "train": ("profile", "paths.", "train.", "mlflow.", "prefect.train_timeout_s"),
    "retrain": ("profile", "paths.", "openimages.", "train.", "mlflow.", "prefect.retrain"),
    "serve": ("profile", "kafka.", "serving.", "mlflow.", "prefect.serve_timeout_s"),
}


class FlowTimeout(TimeoutError):
    """A flow ran past its ``prefect.<flow>_timeout_s`` setting."""


def resolve(source: SettingsSource | None, changes: Mapping[str, Any] | None = None) -> Settings:
    """The settings of a flow run: ``source`` plus the flow's typed parameters (None: not given)."""
    return (source or SettingsSource()).with_overrides(changes or {}).resolve()


@contextlib.contextmanager
def time_limit(settings: Settings, flow_name: str) -> Iterator[None]:
    """Run the block under ``prefect.<flow_name>_timeout_s`` (no limit when it is null)."""
    from prefect.utilities.timeout import timeout

    setting = f"{flow_name}_timeout_s"
    seconds = getattr(settings.prefect, setting)
    if seconds is None:
        yield
        return
    try:
        with timeout(seconds=seconds, timeout_exc_type=FlowTimeout):
            yield
    except FlowTimeout:
        raise FlowTimeout(
            f"{flow_name} ran longer than {seconds:g}s; raise prefect.{setting} "
            f"(or set it to null for no limit)"
        ) from None


def failure_markdown(flow_name: str, message: str, parameters: Mapping[str, Any]) -> str:
    """The failure note: the error, the run's settings source, and the settings that matter."""
    lines = [f"# {flow_name} failed", "", "```", message.strip() or "(no message)", "```", ""]
    source = parameters.get("source")
    try:
        settings = resolve(SettingsSource.model_validate(source) if source else None)
    except Exception as exc:  # the settings themselves may be what failed
        lines += [f"The settings did not resolve: `{exc}`"]
        return "\n".join(lines)
    prefixes = RELEVANT.get(flow_name, ("profile",))
    flat = {k: v for k, v in dump_settings(settings).items() if k.startswith(prefixes)}
    given = {k: v for k, v in parameters.items() if k != "source" and v is not None}
    lines += ["## Parameters", "", "| parameter | value |", "|---|---|"]
    lines += [f"| source | `{source}` |"] + [f"| {k} | `{v}` |" for k, v in given.items()]
    lines += ["", "## Settings that shape this flow", "", "| setting | value |", "|---|---|"]
    lines += [f"| {k} | `{v}` |" for k, v in flat.items()]
    return "\n".join(lines)


def failure_note(flow: Any, flow_run: Any, state: Any) -> None:
    """``on_failure`` hook: leave a markdown artifact ``<flow>-failure`` on the failed run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import ArtifactCreate

    text = failure_markdown(flow.name, state.message or "", flow_run.parameters or {})
    with get_client(sync_client=True) as client:
        client.create_artifact(
            ArtifactCreate(
                key=f"{flow.name}-failure",
                type="markdown",
                description=f"why {flow_run.name} failed",
                data=text,
                flow_run_id=flow_run.id,
            )
        )
