"""The projections benchmark's peer: the same account events through ``eventsourcing``'s
own projection machinery on PostgreSQL, into the same balance and order tables.

The library's idiom (its "Projections" documentation): the events are stored by an
``Application`` (here each account event of the log becomes an event of a ``PeerAccount``
aggregate, same fields, stored with the application's own mapper and recorder — loading
them is not timed); a ``Projection`` processes each event with its ``Tracking`` object; the
materialised view is a ``PostgresTrackingRecorder`` whose methods write the view's rows and
the tracking record in one transaction; a ``ProjectionRunner`` subscribes to the
application and drives the projection. The view folds balances (available / held per
account and asset: Σ own postings, hold deltas) and orders (status, filled qty, fees), the
same arithmetic as TradeX's ``postgres`` read model, so the two can be compared.
"""

from __future__ import annotations

import datetime
import time
import uuid
from collections.abc import Sequence
from typing import Any

from eventsourcing.application import Application
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection, ProjectionRunner
from psycopg.sql import SQL, Identifier

from tradex import domain
from tradex.bench.ledger_peer import postgres_env
from tradex.infra.settings import Settings

NAMESPACE = uuid.UUID("0b7e4c67-4a43-4a7e-9e8b-4f2c9c1d5a10")
LOAD_CHUNK = 5_000
WAIT_TIMEOUT_S = 3_600.0
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


class PeerAccount(Aggregate):
    """An account whose events are the log's account events (same names, same fields)."""


def _event_class(cls: type) -> type:
    fields: tuple[str, ...] = cls._fields  # type: ignore[attr-defined]
    annotations = {name: Any for name in fields}
    made = type(
        cls.__name__,
        (Aggregate.Event,),
        {"__annotations__": annotations, "__module__": __name__,
         "__qualname__": f"PeerAccount.{cls.__name__}"},
    )  # fmt: skip
    setattr(PeerAccount, cls.__name__, made)
    return made


PEER_EVENTS: dict[type, type] = {cls: _event_class(cls) for cls in domain.ACCOUNT_EVENT_TYPES}


class PeerLedger(Application):
    """The application whose notification log the projection follows."""

    name = "PeerLedger"


def load(app: PeerLedger, events: Sequence[Any]) -> int:
    """Store the log's account events as ``PeerAccount`` events (versions per account);
    return the last notification id."""
    versions: dict[int, int] = {}
    batch = []
    for event in events:
        version = versions.get(event.account_id, 0) + 1
        versions[event.account_id] = version
        values = event._asdict()
        if "postings" in values:
            values["postings"] = [list(p) for p in values["postings"]]
        peer = PEER_EVENTS[type(event)](
            originator_id=uuid.uuid5(NAMESPACE, str(event.account_id)),
            originator_version=version,
            timestamp=EPOCH + datetime.timedelta(microseconds=event.event_time_ns // 1_000),
            **values,
        )
        batch.append(app.mapper.to_stored_event(peer))
        if len(batch) >= LOAD_CHUNK:
            app.recorder.insert_events(batch)
            batch = []
    if batch:
        app.recorder.insert_events(batch)
    last = app.recorder.max_notification_id()
    assert last is not None
    return int(last)


class PeerView(PostgresTrackingRecorder):
    """Balances and orders, each change written with its tracking record."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        schema = Identifier(self.datastore.schema)
        self.sql_create_statements += [
            SQL(
                "CREATE TABLE IF NOT EXISTS {0}.peer_balances (account_id bigint, asset text, "
                "available bigint NOT NULL, held bigint NOT NULL, "
                "PRIMARY KEY (account_id, asset))"
            ).format(schema),
            SQL(
                "CREATE TABLE IF NOT EXISTS {0}.peer_orders (order_id bigint PRIMARY KEY, "
                "account_id bigint NOT NULL, status text NOT NULL, "
                "filled_qty bigint NOT NULL, fees bigint NOT NULL)"
            ).format(schema),
        ]
        self._balance = SQL(
            "INSERT INTO {0}.peer_balances VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (account_id, asset) DO UPDATE SET "
            "available = peer_balances.available + EXCLUDED.available, "
            "held = peer_balances.held + EXCLUDED.held"
        ).format(schema)
        self._order = SQL(
            "INSERT INTO {0}.peer_orders VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (order_id) DO UPDATE SET "
            "status = CASE WHEN EXCLUDED.status = '' THEN peer_orders.status "
            "ELSE EXCLUDED.status END, "
            "filled_qty = peer_orders.filled_qty + EXCLUDED.filled_qty, "
            "fees = peer_orders.fees + EXCLUDED.fees"
        ).format(schema)

    def apply(
        self,
        tracking: Tracking,
        balances: Sequence[tuple[int, str, int, int]],
        order: tuple[int, int, str, int, int] | None,
    ) -> None:
        with self.datastore.transaction(commit=True) as curs:
            for row in balances:
                curs.execute(self._balance, row, prepare=True)
            if order is not None:
                curs.execute(self._order, order, prepare=True)
            self._insert_tracking(curs, tracking)

    def balances(self) -> dict[tuple[int, str], tuple[int, int]]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL("SELECT account_id, asset, available, held FROM {0}.peer_balances").format(
                    Identifier(self.datastore.schema)
                )
            )
            return {(r["account_id"], r["asset"]): (r["available"], r["held"]) for r in curs}


class PeerReadModel(Projection[PeerView]):
    """Folds each account event into balance and order changes for the view."""

    name = "peer_read_model"

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        balances: dict[tuple[int, str], list[int]] = {}
        postings = getattr(domain_event, "postings", None) or ()
        for account_id, asset, delta in postings:
            balances.setdefault((account_id, asset), [0, 0])[0] += delta
        event_name = type(domain_event).__name__
        held = _hold_delta(event_name, domain_event)
        if held is not None and held[1]:
            change = balances.setdefault((domain_event.account_id, held[0]), [0, 0])
            change[0] -= held[1]
            change[1] += held[1]
        rows = [(a, asset, d[0], d[1]) for (a, asset), d in balances.items()]
        self.view.apply(tracking, rows, _order_change(event_name, domain_event))


# the domain's hold table by event name: the peer's events have the same names and fields
_HOLD_DELTA_OF = {cls.__name__: of for cls, of in domain.events.HOLD_DELTA_OF.items()}


def _hold_delta(name: str, e: Any) -> tuple[str, int] | None:
    of = _HOLD_DELTA_OF.get(name)
    return None if of is None else of(e)


def _order_change(name: str, e: Any) -> tuple[int, int, str, int, int] | None:
    if name == "OrderAccepted":
        return e.order_id, e.account_id, "NEW", 0, 0
    if name == "OrderRejected":
        return e.order_id, e.account_id, "REJECTED", 0, 0
    if name == "FillSettled":
        return e.order_id, e.account_id, "", e.qty, e.fee
    if name == "HoldReleased":
        return e.order_id, e.account_id, str(e.end_reason), 0, 0
    return None


def peer_env(settings: Settings, database: str) -> dict[str, str]:
    return {**postgres_env(settings, database), "CREATE_TABLE": "y"}


def run_peer(
    settings: Settings, database: str, events: Sequence[Any]
) -> tuple[float, dict[tuple[int, str], tuple[int, int]]]:
    """Load ``events`` (account events, log order), then project them; (events/s of the
    projection, the balances it built)."""
    env = peer_env(settings, database)
    app = PeerLedger(env=env)
    last = load(app, events)
    app.close()
    started = time.perf_counter()
    with ProjectionRunner(
        application_class=PeerLedger, projection_class=PeerReadModel, view_class=PeerView,
        env=env,
    ) as runner:  # fmt: skip
        runner.wait(last, timeout=WAIT_TIMEOUT_S)
        elapsed = time.perf_counter() - started
        balances = runner.projection.view.balances()
    return len(events) / elapsed, balances
