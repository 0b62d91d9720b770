"""Domain records <-> Avro record dicts.

Each domain NamedTuple binds to the subject with the same short name (``Deposited`` ->
``tradex.account.Deposited``); its fields are the Avro fields between ``envelope`` and
``hash``. Nested rows (``tradex.Posting``, ``tradex.Instrument`` …) become dicts. Enums
travel as their ``str`` values; decoded enum fields are plain ``str``, which compare equal
to the ``StrEnum`` members.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from tradex import domain
from tradex.domain.reference import AccountRef, Asset, Instrument, User

# annotation text of a field -> the row type it holds (one row, or a tuple of rows)
ROW_TYPES: dict[str, type] = {
    "Asset": Asset,
    "Instrument": Instrument,
    "User": User,
    "AccountRef": AccountRef,
}
ROW_LIST_TYPES: dict[str, type] = {"tuple[Posting, ...]": domain.Posting}

DOMAIN_TYPES: tuple[type, ...] = (
    *domain.ACCOUNT_EVENT_TYPES,
    domain.Deposit, domain.RequestWithdrawal, domain.ApproveWithdrawal, domain.RejectWithdrawal,
    domain.PlaceOrder, domain.CancelOrder, domain.ModifyOrder, domain.CancelAllOrders,
    domain.FillLeg, domain.OrderEnded, domain.AmendConfirmed,
    domain.NewOrder, domain.CancelOrderRequest, domain.AmendOrder, domain.InstrumentRules,
    domain.CreateAsset, domain.CreateInstrument, domain.UpdateInstrumentRules,
    domain.HaltInstrument, domain.ResumeInstrument, domain.RegisterUser, domain.OpenAccount,
    domain.ChangeUserRoles,
    domain.AssetCreated, domain.InstrumentCreated, domain.InstrumentRulesUpdated,
    domain.InstrumentHalted, domain.InstrumentResumed, domain.UserRegistered,
    domain.UserRolesChanged,
    domain.AccountOpened, domain.ReferenceCommandRejected,
    *domain.ENGINE_EVENT_TYPES,
)  # fmt: skip
BINDINGS_MAX = 256


class Binding(NamedTuple):
    cls: type
    fields: tuple[str, ...]
    row_fields: tuple[tuple[int, str, type], ...]  # (index, name, row type): one nested row
    list_fields: tuple[tuple[int, str, type], ...]  # (index, name, row type): a tuple of rows


def binding_of(cls: type) -> Binding:
    fields: tuple[str, ...] = cls._fields  # type: ignore[attr-defined]
    notes = {f: str(getattr(t, "__forward_arg__", t)) for f, t in cls.__annotations__.items()}
    rows = tuple((i, f, ROW_TYPES[notes[f]]) for i, f in enumerate(fields) if notes[f] in ROW_TYPES)
    lists = tuple(
        (i, f, ROW_LIST_TYPES[notes[f]]) for i, f in enumerate(fields) if notes[f] in ROW_LIST_TYPES
    )
    return Binding(cls, fields, rows, lists)


BINDINGS: dict[str, Binding] = {cls.__name__: binding_of(cls) for cls in DOMAIN_TYPES}
assert len(BINDINGS) == len(DOMAIN_TYPES) <= BINDINGS_MAX, "two domain types share a name"


def to_record(obj: Any, binding: Binding) -> dict[str, Any]:
    """The Avro dict of a domain record, without envelope and hash."""
    record: dict[str, Any] = obj._asdict()
    for _, name, _ in binding.row_fields:
        record[name] = record[name]._asdict()
    for _, name, _ in binding.list_fields:
        record[name] = [row._asdict() for row in record[name]]
    return record


def _row(row_type: type, row: dict[str, Any]) -> Any:
    return row_type(*[row[name] for name in row_type._fields])  # type: ignore[attr-defined]


def from_record(record: dict[str, Any], binding: Binding) -> Any:
    """The domain record of a decoded Avro dict (extra fields, e.g. added later, ignored)."""
    values = [record[name] for name in binding.fields]
    for i, _, row_type in binding.row_fields:
        values[i] = _row(row_type, values[i])
    for i, _, row_type in binding.list_fields:
        values[i] = tuple(_row(row_type, row) for row in values[i])
    return binding.cls(*values)
