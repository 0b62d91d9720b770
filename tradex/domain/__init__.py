"""TradeX domain layer (see docs/design.md)."""
