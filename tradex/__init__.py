"""TradeX: an event-sourced CQRS trading ledger and exchange core."""

__version__ = "0.1.0"
