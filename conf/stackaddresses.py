"""The addresses of the local stack's services, from its ``stack.*`` settings.

The ``local`` profile's clients (``kafka.bootstrap_servers``, ``mlflow.tracking_uri``,
``prefect.api_url``, the mirror's addresses, the review page's) are the local stack's: a stack
moved to other ports (``--set stack.prefect_port=4300``) is reached by every command with the
same settings, not only by the stack's own flow runs. An address set to something else is kept.
"""

from __future__ import annotations

from typing import Any

from conf.sections.services import StackSettings
from conf.settings import Settings

# The profile whose client addresses are its local stack's.
STACK_PROFILE = "local"


def stack_addresses(settings: Settings, stack: StackSettings | None = None) -> dict[str, Any]:
    """Dotted setting -> value for every client address of the stack ``stack`` (default: the
    settings' own ``stack.*``)."""
    st = stack or settings.stack
    addresses: dict[str, Any] = {
        "mlflow.tracking_uri": f"http://{st.host}:{st.mlflow_port}",
        "kafka.bootstrap_servers": f"{st.host}:{st.kafka_port}",
        "prefect.api_url": f"http://{st.host}:{st.prefect_port}/api",
        "review.host": st.host,
        "review.port": st.review_port,
    }
    if settings.openimages.source == "mirror":
        addresses["openimages.s3_endpoint_url"] = f"http://{st.host}:{st.s3_port}"
        addresses["openimages.metadata_base_url"] = f"http://{st.host}:{st.metadata_port}"
    return addresses


def moved_addresses(settings: Settings) -> dict[str, Any]:
    """The client addresses that still name the default stack's services while ``stack.*``
    names others: each as its stack's (empty for other profiles, or nothing moved)."""
    if settings.profile != STACK_PROFILE:
        return {}
    default = stack_addresses(settings, StackSettings())
    wanted = stack_addresses(settings)
    return {
        key: value
        for key, value in wanted.items()
        if value != default[key] and _value(settings, key) == default[key]
    }


def _value(settings: Settings, dotted: str) -> Any:
    section, name = dotted.split(".")
    return getattr(getattr(settings, section), name)
