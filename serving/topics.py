"""How serving reaches Kafka: the clients' connection settings and the topics it needs.

`client_config` is the connection and security part of every client's configuration.
`ensure_topics` is the one place topics are created (the consumer at start, the producer, the
tests), idempotently; `ensure_serving_topics` names the four serving topics from the settings.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from conf.settings import KafkaSettings, Settings

logger = logging.getLogger(__name__)


def client_config(kafka: KafkaSettings) -> dict[str, Any]:
    """The connection and security part of every Kafka client's configuration."""
    config: dict[str, Any] = {
        "bootstrap.servers": kafka.bootstrap_servers,
        "security.protocol": kafka.security_protocol,
    }
    if kafka.sasl_mechanism:
        config["sasl.mechanism"] = kafka.sasl_mechanism
    if kafka.sasl_username:
        config["sasl.username"] = kafka.sasl_username
    if kafka.sasl_password is not None:
        config["sasl.password"] = kafka.sasl_password.get_secret_value()
    return config


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
    logger.info("created topics %s", created)
    return created


def ensure_serving_topics(settings: Settings) -> None:
    """Create the requests, results, review and dead-letter topics if they do not exist."""
    kafka = settings.kafka
    topics = (
        kafka.requests_topic,
        kafka.results_topic,
        kafka.review_topic,
        kafka.dead_letter_topic,
    )
    ensure_topics(
        kafka.bootstrap_servers,
        dict.fromkeys(topics, kafka.partitions),
        client_config={k: v for k, v in client_config(kafka).items() if k != "bootstrap.servers"},
    )
