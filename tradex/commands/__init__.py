"""TradeX commands layer (see docs/design.md)."""
