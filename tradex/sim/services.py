"""Is the exchange there? One line naming what is missing and the command that starts it.

The simulation needs Kafka and the three stages of its topic prefix: the reference
processor, the account processor and the matching engine. A stage is running when its
consumer group (``<prefix>reference``, ``<prefix>accounts``, ``<prefix>matcher``) is
stable with a member holding partitions (:func:`tradex.infra.exchange.group_ready`, the
supervisor's own check).
"""

from __future__ import annotations

from confluent_kafka.admin import AdminClient

from tradex.infra import stack
from tradex.infra.exchange import group_ready
from tradex.infra.settings import Settings
from tradex.log.topics import ACCOUNTS_GROUP, MATCHER_GROUP, REFERENCE_GROUP

STAGES = (
    ("reference processor", REFERENCE_GROUP, "tradex run reference"),
    ("account processor", ACCOUNTS_GROUP, "tradex run accounts"),
    ("matching engine", MATCHER_GROUP, "tradex run matcher"),
)


def service_down(settings: Settings) -> str | None:
    """What is not running (one line), or None when everything is."""
    kafka = stack.status(settings, only=["kafka"])[0]
    if not kafka.ok:
        return (f"Kafka is not running at {settings.kafka_bootstrap} ({kafka.detail}); "
                "start it with: tradex stack up")  # fmt: skip
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 0})
    prefix = settings.topic_prefix
    for name, group, command in STAGES:
        if not group_ready(admin, settings, group):
            env = f"TRADEX_TOPIC_PREFIX={prefix} " if prefix else ""
            return (f"the {name} is not running on topic prefix {prefix!r} (consumer group "
                    f"{settings.topic(group)!r} has no member); start it with: {env}{command} "
                    "(or the whole exchange: tradex demo --keep)")  # fmt: skip
    return None
