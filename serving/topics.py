"""How serving reaches Kafka: the clients' connection settings and the topics it needs.

Every client's connection and security settings come from
`conf.sections.serving.KafkaSettings.client_config` (with ``allow.auto.create.topics=false``: no
client creates a topic by naming it). `ensure_topics` is the one place topics are created (the
consumer at start, ``harmscan produce``, the tests), idempotently; `ensure_serving_topics` names the
serving topics from the settings (requests with ``kafka.partitions``, the results topic
compacted, replication ``kafka.replication_factor``). `check_message_limits` refuses to start
when an inline request at ``serving.max_inline_bytes`` or a dead letter could not pass the
broker's message limit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from conf.settings import KafkaSettings, Settings

logger = logging.getLogger(__name__)


def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    *,
    replication: int = 1,
    client_config: Mapping[str, Any] | None = None,
    timeout: float = 30.0,
    configs: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """Create the topics that do not exist yet; existing ones are left as they are.

    Args:
        bootstrap: ``bootstrap.servers`` of the cluster.
        topics: Topic name -> partition count.
        replication: Replication factor of new topics.
        client_config: Extra AdminClient settings (security).
        timeout: Seconds to wait for the broker.
        configs: Topic name -> topic configs of a new topic (``cleanup.policy: compact``);
            an existing topic keeps its configs.

    Returns:
        The names of the topics this call created.

    Raises:
        ValueError: A partition count below 1 or an empty topic name.
        KafkaException: The broker refused a creation for another reason than "exists".
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    bad = {name: count for name, count in topics.items() if not name or int(count) < 1}
    if bad:
        raise ValueError(f"topics need a name and at least 1 partition; got {bad}")
    admin = AdminClient({"bootstrap.servers": bootstrap, **(client_config or {})})
    existing = admin.list_topics(timeout=timeout).topics
    for name, count in topics.items():
        if name in existing and len(existing[name].partitions) != count:
            logger.warning(
                "topic %s exists with %d partitions, not %d; left unchanged",
                name,
                len(existing[name].partitions),
                count,
            )
    wanted = [
        NewTopic(
            name,
            num_partitions=int(count),
            replication_factor=replication,
            config=dict((configs or {}).get(name, {})),
        )
        for name, count in topics.items()
        if name not in existing
    ]
    created: list[str] = []
    if not wanted:
        return created
    for name, future in admin.create_topics(wanted, operation_timeout=timeout).items():
        try:
            future.result(timeout)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    _wait_until_listed(admin, [topic.topic for topic in wanted], timeout)
    logger.info("created topics %s", created)
    return created


def _wait_until_listed(admin: Any, names: list[str], timeout: float) -> None:
    """Wait until the broker's metadata lists ``names`` with a leader for every partition.

    A creation is acknowledged once the controller has it; the broker answering metadata
    requests learns of it a moment later (seconds on a busy machine). Until then a consumer
    subscribing to the topic is assigned nothing of it and a second `ensure_topics` would find
    it missing, so the topics are returned only once they can be used.

    Raises:
        KafkaException: The topics were not listed within ``timeout`` seconds (``_TIMED_OUT``).
    """
    from confluent_kafka import KafkaError, KafkaException

    deadline = time.monotonic() + timeout
    while True:
        listed = admin.list_topics(timeout=max(1.0, deadline - time.monotonic())).topics
        missing = [
            name
            for name in names
            if name not in listed
            or listed[name].error is not None
            or not listed[name].partitions
            or any(p.leader < 0 for p in listed[name].partitions.values())
        ]
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise KafkaException(
                KafkaError(
                    KafkaError._TIMED_OUT,
                    f"topics {missing} were created but not listed by the broker within "
                    f"{timeout:.0f}s",
                )
            )
        time.sleep(0.1)


# librdkafka's own default message.max.bytes: a producer refuses larger records locally.
CLIENT_MESSAGE_MAX_BYTES = 1_000_000
DEAD_LETTER_HEADROOM = 32_768  # headers of a dead letter (copied ones are capped at 16 KiB)


class MessageLimitError(ValueError):
    """A configured size cannot pass the broker's (or client's) message limit."""


def _admin_config(kafka: KafkaSettings) -> dict[str, Any]:
    return {k: v for k, v in kafka.client_config().items() if k != "allow.auto.create.topics"}


def ensure_serving_topics(settings: Settings) -> list[str]:
    """Create the requests, results (compacted), review and dead-letter topics if missing."""
    kafka = settings.kafka
    common = {"min.insync.replicas": str(kafka.min_insync_replicas)}
    common = common if kafka.min_insync_replicas else {}
    topics = (
        kafka.requests_topic,
        kafka.results_topic,
        kafka.review_topic,
        kafka.dead_letter_topic,
    )
    configs = {name: dict(common) for name in topics}
    configs[kafka.results_topic]["cleanup.policy"] = "compact"
    return ensure_topics(
        kafka.bootstrap_servers,
        dict.fromkeys(topics, kafka.partitions),
        replication=kafka.replication_factor,
        configs=configs,
        client_config={k: v for k, v in _admin_config(kafka).items() if k != "bootstrap.servers"},
    )


def topic_message_limit(kafka: KafkaSettings, topic: str, timeout: float = 30.0) -> int:
    """The broker's ``max.message.bytes`` for ``topic`` (the clients' limit if not readable)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient(_admin_config(kafka))
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    try:
        configs = admin.describe_configs([resource])[resource].result(timeout)
        return int(configs["max.message.bytes"].value)
    except (KafkaException, KeyError, ValueError) as exc:  # e.g. no DescribeConfigs permission
        logger.warning("cannot read max.message.bytes of %s (%s); assuming 1 MB", topic, exc)
        return CLIENT_MESSAGE_MAX_BYTES


def check_message_limits(settings: Settings) -> None:
    """Refuse a configuration whose inline requests or dead letters could not be produced.

    Raises:
        MessageLimitError: ``serving.max_inline_bytes`` (as base64 in a request) or
            ``serving.dead_letter_max_payload_bytes`` (plus headers) exceeds the limit.
    """
    kafka, serving = settings.kafka, settings.serving
    requests = min(topic_message_limit(kafka, kafka.requests_topic), CLIENT_MESSAGE_MAX_BYTES)
    if serving.max_request_bytes > requests:
        raise MessageLimitError(
            f"serving.max_inline_bytes={serving.max_inline_bytes} makes requests of up to "
            f"{serving.max_request_bytes} bytes (base64 + JSON), above the message limit "
            f"{requests} of topic {kafka.requests_topic} (max.message.bytes, and the clients' "
            f"{CLIENT_MESSAGE_MAX_BYTES}); lower it below {(requests - 4096) * 3 // 4}"
        )
    dead = min(topic_message_limit(kafka, kafka.dead_letter_topic), CLIENT_MESSAGE_MAX_BYTES)
    if serving.dead_letter_max_payload_bytes + DEAD_LETTER_HEADROOM > dead:
        raise MessageLimitError(
            f"serving.dead_letter_max_payload_bytes={serving.dead_letter_max_payload_bytes} plus "
            f"{DEAD_LETTER_HEADROOM} bytes of headers exceeds the message limit {dead} of topic "
            f"{kafka.dead_letter_topic}; lower it below {dead - DEAD_LETTER_HEADROOM}"
        )
