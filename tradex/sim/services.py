"""Is the exchange there? One line naming what is missing and the command that starts it.

The simulation needs Kafka and the three stages of its topic prefix: the reference
processor, the account processor and the matching engine. A stage is running when its
consumer group (``<prefix>reference``, ``<prefix>accounts``, ``<prefix>matcher``) has a
member.
"""

from __future__ import annotations

from confluent_kafka.admin import AdminClient

from tradex.infra import stack
from tradex.infra.settings import Settings
from tradex.log.topics import ACCOUNTS_GROUP, MATCHER_GROUP, REFERENCE_GROUP

DESCRIBE_TIMEOUT_S = 10.0
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
    groups = [settings.topic(group) for _name, group, _command in STAGES]
    described = admin.describe_consumer_groups(groups, request_timeout=DESCRIBE_TIMEOUT_S)
    prefix = settings.topic_prefix
    for (name, _group, command), group_id in zip(STAGES, groups, strict=True):
        members = described[group_id].result().members
        if not members:
            env = f"TRADEX_TOPIC_PREFIX={prefix} " if prefix else ""
            return (f"the {name} is not running on topic prefix {prefix!r} (consumer group "
                    f"{group_id!r} has no member); start it with: {env}{command} "
                    "(or the whole exchange: tradex demo --keep)")  # fmt: skip
    return None
